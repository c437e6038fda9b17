"""Pieces every resource module shares."""

from flask import current_app, g
from flask_smorest import Blueprint

from ..db import request_session
from ..schemas.common import ErrorSchema
from ..services.jobs import QueueSettings
from ..unit_of_work import UnitOfWork
from .request_guards import CheckedBodyParser

BEARER_AUTH = [{"bearerAuth": []}]


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = CheckedBodyParser()


def current_uow() -> UnitOfWork:
    if "uow" not in g:
        g.uow = UnitOfWork(request_session())
    return g.uow


def queue_settings() -> QueueSettings:
    return QueueSettings.from_config(current_app.config)


def error_responses(blp: Blueprint, *codes: int):
    """Document the error answers a route can give, all in the one error shape."""

    def decorate(view):
        for code in codes:
            view = blp.alt_response(code, schema=ErrorSchema, description=ERROR_DESCRIPTIONS[code])(
                view
            )
        return view

    return decorate


ERROR_DESCRIPTIONS = {
    400: "invalid_json",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found (or another user's resource)",
    408: "wait_timeout",
    409: "conflict (see detail)",
    413: "payload_too_large",
    422: "validation_error (or a domain rule, see detail)",
    429: "rate_limited",
    503: "database_unavailable",
}
