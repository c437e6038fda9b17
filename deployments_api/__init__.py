"""Deployments API: the control plane for MetaTrader 5 Expert Advisor deployments."""

from pathlib import Path

from flask import Flask, send_from_directory

from .api import register_api
from .api.auth import RateLimiter
from .api.error_handlers import register_error_handlers
from .api.request_guards import check_json_body
from .config import INSTANCE_DIR, config_from_env
from .db import Database, close_request_session

API_SETTINGS = {
    "API_TITLE": "Deployments API",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": "/docs/assets/",
}


def _swagger_assets_dir() -> Path:
    import swagger_ui_bundle  # served from the installed package: /docs needs no internet

    return Path(swagger_ui_bundle.swagger_ui_path)


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(INSTANCE_DIR))
    app.json.sort_keys = False
    app.config.update(config_from_env())
    app.config.update(API_SETTINGS)
    if config:
        app.config.update(config)

    app.extensions["deployments_db"] = Database.from_url(
        app.config["DATABASE_URL"],
        connect_timeout=app.config["DATABASE_CONNECT_TIMEOUT"],
        statement_timeout_ms=app.config["DATABASE_STATEMENT_TIMEOUT_MS"],
    )
    app.extensions["rate_limiter"] = RateLimiter(app.config["RATE_LIMIT_PER_MINUTE"])
    app.teardown_appcontext(close_request_session)
    app.before_request(check_json_body)

    register_api(app)
    register_error_handlers(app)

    @app.get("/docs/assets/<path:filename>")
    def swagger_assets(filename):
        return send_from_directory(_swagger_assets_dir(), filename)

    if app.config["CORS_ORIGINS"]:
        from flask_cors import CORS

        CORS(
            app,
            origins=app.config["CORS_ORIGINS"],
            expose_headers=["X-Pagination", "Retry-After", "Idempotent-Replayed"],
        )

    from .cli import register_commands

    register_commands(app)
    return app
