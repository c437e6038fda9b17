"""Checks every JSON body passes before any schema sees it.

Parsing here (once) lets us answer the contract's codes for what marshmallow cannot
express: invalid or non-object JSON (400), a wrong Content-Type, nesting too deep,
and strings the database would refuse (NUL bytes, lone surrogates) — all 422.
"""

import json
import math

from flask import current_app, g, request
from webargs import core
from webargs.flaskparser import FlaskParser

from ..errors import InvalidJSON, PayloadTooLarge, ValidationFailed

MAX_JSON_DEPTH = 32
DRAIN_LIMIT = 16 * 1024 * 1024
BODY_METHODS = ("POST", "PUT", "PATCH")
_TOO_DEEP = f"nested deeper than {MAX_JSON_DEPTH} levels"


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _first_problem(body) -> tuple[str, str] | None:
    """(path, message) of the first value no column could store, walking iteratively."""
    stack = [(body, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return path or "_body", _TOO_DEEP
        if isinstance(value, dict):
            for key, item in value.items():
                problem = _bad_string(key)
                if problem:
                    return (path or "_body"), f"key {problem}"
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(value, list):
            stack.extend(
                (item, f"{path}.{i}" if path else str(i), depth + 1) for i, item in enumerate(value)
            )
        elif isinstance(value, str):
            problem = _bad_string(value)
            if problem:
                return path or "_body", problem
        elif isinstance(value, float) and not math.isfinite(value):
            return path or "_body", "number out of range"
    return None


def _bad_string(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (lone surrogate)"
    return None


def _refuse_oversized_body() -> None:
    """413 for a declared length past the limit, after reading the unread body away.

    gunicorn keeps the connection alive after our answer but drains only 64 KiB of a
    body the app did not read, so the client's next request on that connection would
    be read from the middle of this body. Up to DRAIN_LIMIT we read it ourselves.
    """
    length = request.content_length
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if length is None or limit is None or length <= limit:
        return
    if length <= DRAIN_LIMIT:
        stream = request.environ["wsgi.input"]
        remaining = length
        while remaining > 0:
            chunk = stream.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)
    raise PayloadTooLarge(f"the body is over {limit} bytes")


def check_json_body() -> None:
    """before_request: parse the body once and keep it in `g.json_body`."""
    g.json_body = None
    if request.method not in BODY_METHODS:
        return
    _refuse_oversized_body()
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH (chunked bodies)
    if not raw.strip():
        return
    if not request.is_json:
        raise ValidationFailed(
            "send the body as application/json",
            errors={"Content-Type": ["must be application/json"]},
        )
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError as exc:  # far deeper than MAX_JSON_DEPTH: the same answer
        raise ValidationFailed(errors={"_body": [_TOO_DEEP]}) from exc
    except ValueError as exc:
        raise InvalidJSON("the body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise InvalidJSON("the body must be a JSON object")
    problem = _first_problem(body)
    if problem:
        field, message = problem
        raise ValidationFailed(errors={field: [message]})
    g.json_body = body


class CheckedBodyParser(FlaskParser):
    """webargs parser that reads the body `check_json_body` already parsed."""

    def _raw_load_json(self, req):
        body = g.get("json_body")
        return core.missing if body is None else body
