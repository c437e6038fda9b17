"""The `Idempotency-Key` header on user POST routes."""

from functools import wraps

from flask import g, make_response, request

from ..errors import ValidationFailed
from ..services.idempotency import request_fingerprint, run_once
from .auth import principal
from .common import current_uow

HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "description": "Retry-safe key (1-255 printable ASCII characters), kept at least 24 h.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}


def _valid_key(key: str) -> bool:
    return 1 <= len(key) <= 255 and all(" " <= ch <= "~" for ch in key)


def idempotent(view):
    """Replay the first 2xx answer for a repeated key instead of running the view again."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not _valid_key(key):
            raise ValidationFailed(errors={HEADER: ["1-255 printable ASCII characters"]})
        first_response = None

        def execute():
            nonlocal first_response
            first_response = make_response(view(*args, **kwargs))
            return first_response.status_code, first_response.get_data(as_text=True)

        fingerprint = request_fingerprint(request.method, request.path, g.get("json_body"))
        outcome = run_once(current_uow(), principal().id, key, fingerprint, execute)
        if not outcome.replayed:
            return first_response
        response = make_response(outcome.body, outcome.status)
        response.mimetype = "application/json"
        response.headers["Idempotent-Replayed"] = "true"
        return response

    return wrapper
