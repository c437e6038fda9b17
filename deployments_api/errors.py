"""Domain exceptions and the one JSON error shape every non-2xx answer uses.

`{"detail": <stable snake_case code>, "message"?: str, "errors"?: {field: [msg]}, ...extra}`
"""

from http import HTTPStatus

from flask import jsonify


class ApiError(Exception):
    """An error with a contract code. Subclasses fix `status` and `detail`."""

    status = 500
    detail = "internal_error"
    # True when the writes made before the error must stand (see InvalidTransition).
    keeps_writes = False

    def __init__(self, message=None, *, errors=None, headers=None, **extra):
        super().__init__(message or self.detail)
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    def to_response(self):
        return error_response(
            self.status,
            self.detail,
            message=self.message,
            errors=self.errors,
            headers=self.headers,
            **self.extra,
        )


def _error(name: str, status: int, detail: str, **attrs) -> type[ApiError]:
    return type(name, (ApiError,), {"status": status, "detail": detail, **attrs})


InvalidJSON = _error("InvalidJSON", 400, "invalid_json")
NotAuthenticated = _error("NotAuthenticated", 401, "not_authenticated")
Forbidden = _error("Forbidden", 403, "forbidden")
NotFound = _error("NotFound", 404, "not_found")
EAVersionNotFound = _error("EAVersionNotFound", 404, "ea_version_not_found")
BrokerConnectionNotFound = _error("BrokerConnectionNotFound", 404, "broker_connection_not_found")
WaitTimeout = _error("WaitTimeout", 408, "wait_timeout")
# A refused move is recorded in the deployment's events even though the answer is 409.
InvalidTransition = _error("InvalidTransition", 409, "invalid_transition", keeps_writes=True)
MagicNumberInUse = _error("MagicNumberInUse", 409, "magic_number_in_use")
VersionExists = _error("VersionExists", 409, "version_exists")
LeaseLost = _error("LeaseLost", 409, "lease_lost")
StatusUnreachable = _error("StatusUnreachable", 409, "status_unreachable")
IdempotencyKeyInFlight = _error("IdempotencyKeyInFlight", 409, "idempotency_key_in_flight")
IdempotencyKeyReused = _error("IdempotencyKeyReused", 422, "idempotency_key_reused")
EANotCompiled = _error("EANotCompiled", 422, "ea_not_compiled")
ValidationFailed = _error("ValidationFailed", 422, "validation_error")
PayloadTooLarge = _error("PayloadTooLarge", 413, "payload_too_large")
RateLimited = _error("RateLimited", 429, "rate_limited")
DatabaseUnavailable = _error("DatabaseUnavailable", 503, "database_unavailable")

# Werkzeug / flask-smorest HTTP errors mapped onto the contract's codes.
HTTP_STATUS_DETAILS = {
    400: "invalid_json",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "wait_timeout",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "database_unavailable",
}


def detail_for_status(status: int) -> str:
    if status in HTTP_STATUS_DETAILS:
        return HTTP_STATUS_DETAILS[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def error_response(http_status, detail, *, message=None, errors=None, headers=None, **extra):
    body = {"detail": detail}
    if message:
        body["message"] = message
    if errors:
        body["errors"] = errors
    body.update(extra)
    response = jsonify(body)
    response.status_code = http_status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_errors(messages, prefix="") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into `{"field.sub.0": [msg, ...]}`."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_errors(value, name))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_body"] = list(messages)
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            flat.update(flatten_errors(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "_body"] = [str(messages)]
    return flat
