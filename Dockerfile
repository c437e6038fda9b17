FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY deployments_api ./deployments_api
COPY wsgi.py setup.cfg README.md ./
RUN useradd --create-home --uid 10001 api && mkdir -p instance && chown api instance
USER api
EXPOSE 8000
CMD ["sh", "-c", "flask --app wsgi db-upgrade && exec gunicorn --bind 0.0.0.0:8000 --workers 4 --worker-class gthread --threads 8 --access-logfile - wsgi:app"]
