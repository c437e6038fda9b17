"""Entry point for `gunicorn wsgi:app` and `flask --app wsgi ...`."""

from deployments_api import create_app

app = create_app()
