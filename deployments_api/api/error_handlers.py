"""Handlers for what is not an HTTPException: domain errors, database outages, bugs."""

import logging

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from ..errors import ApiError, DatabaseUnavailable, error_response

log = logging.getLogger(__name__)

DATABASE_DOWN = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)


def _api_error(error: ApiError):
    return error.to_response()


def _database_down(error: Exception):
    # The engine pings connections before use (pool_pre_ping), so once the database
    # is back the next request gets a fresh connection: no restart needed.
    log.warning("database unavailable: %s", type(error).__name__)
    return DatabaseUnavailable("the database cannot be reached; try again shortly").to_response()


def _unexpected(error: Exception):
    log.exception("unhandled error")
    return error_response(500, "internal_error", message="an unexpected error occurred")


def register_error_handlers(app) -> None:
    app.register_error_handler(ApiError, _api_error)
    for exc_type in DATABASE_DOWN:
        app.register_error_handler(exc_type, _database_down)
    app.register_error_handler(Exception, _unexpected)
