"""Secrets: bearer tokens never reach a log or an answer; no broker password exists anywhere.

(That tokens are stored only as their sha-256, with >= 32 random bytes, and that a 500
carries no trace of its cause, is in test_auth_and_cli.py and test_health_and_errors.py.)
"""

import json
import logging
import re
import secrets
import uuid

import pytest
import requests
from sqlalchemy import inspect

from deployments_api.models import Base
from deployments_api.services import catalog

from .servers import gunicorn_server

SECRET_NAME = re.compile(r"passw|passwd|pwd|secret", re.IGNORECASE)
BUG_MESSAGE = "internal state that must stay inside"


@pytest.fixture
def tokens(api):
    """A valid token of each kind, and one that was never issued."""
    return {
        "user": api.user(),
        "agent": api.agent(),
        "unknown": secrets.token_urlsafe(32),
    }


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# Requests that cover every way a token meets the service: accepted, refused as unknown,
# malformed, of the wrong kind, and riding along on a request that fails (404, 405, 413,
# 422) or crashes (500, see `a_bug`).
def exchanges(tokens) -> list[tuple[str, str, str, dict, dict | bytes | None]]:
    user, agent, unknown = tokens["user"], tokens["agent"], tokens["unknown"]
    return [
        ("200 user", "GET", "/api/v1/eas", bearer(user), None),
        ("204 agent", "POST", "/api/v1/agent/jobs/claim", bearer(agent), {}),
        ("401 unknown", "GET", "/api/v1/eas", bearer(unknown), None),
        ("401 malformed", "GET", "/api/v1/eas", {"Authorization": f"Token {user}"}, None),
        ("401 unknown agent", "POST", "/api/v1/agent/jobs/claim", bearer(unknown), {}),
        ("403 agent on user", "GET", "/api/v1/deployments", bearer(agent), None),
        ("403 user on agent", "POST", "/api/v1/agent/jobs/claim", bearer(user), {}),
        ("404", "GET", f"/api/v1/deployments/{uuid.uuid4()}", bearer(user), None),
        ("405", "DELETE", "/api/v1/eas", bearer(user), None),
        ("413", "POST", "/api/v1/eas", bearer(user), b"x" * (1024 * 1024 + 1)),
        ("422", "POST", "/api/v1/eas", bearer(user), {"name": ""}),
        ("500", "GET", "/api/v1/broker-connections", bearer(user), None),
    ]


@pytest.fixture
def a_bug(monkeypatch):
    """GET /broker-connections crashes with an unexpected exception (a 500)."""

    def crash(*_args, **_kwargs):
        raise RuntimeError(BUG_MESSAGE)

    monkeypatch.setattr(catalog, "list_broker_connections", crash)


def request_kwargs(headers: dict, body) -> dict:
    """Keyword arguments both Flask's test client and `requests` understand."""
    if isinstance(body, bytes):
        return {"headers": {**headers, "Content-Type": "application/json"}, "data": body}
    return {"headers": headers, "json": body}


def assert_no_token_in(text: str, tokens: dict) -> None:
    for kind, token in tokens.items():
        assert token not in text, f"the {kind} token leaked"


def test_answers_never_echo_the_token(client, tokens, a_bug):
    for name, method, path, headers, body in exchanges(tokens):
        response = client.open(path, method=method, **request_kwargs(headers, body))
        assert str(response.status_code) == name.split()[0], name
        everything = response.get_data(as_text=True) + json.dumps(list(response.headers))
        assert_no_token_in(everything, tokens)
        if response.status_code == 500:
            assert response.get_json() == {
                "detail": "internal_error",
                "message": "an unexpected error occurred",
            }


def test_logs_at_debug_never_carry_a_token(live_url, tokens, a_bug, caplog):
    """Real HTTP through werkzeug's server, every logger at DEBUG (SQL statements too)."""
    # Every logger, not only the root: SQLAlchemy sets its own to WARNING on import.
    for name in [None, *logging.root.manager.loggerDict]:
        caplog.set_level(logging.DEBUG, logger=name)
    for name, method, path, headers, body in exchanges(tokens):
        response = requests.request(method, live_url + path, **request_kwargs(headers, body))
        assert str(response.status_code) == name.split()[0], name
    records = "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text} {record.__dict__!r}"
        for record in caplog.records
    )
    assert_no_token_in(caplog.text + records, tokens)
    # The scan saw what it had to: each request's line, the SQL that looked the token
    # up, and the 500's logged traceback.
    assert "GET /api/v1/eas" in caplog.text
    assert "api_tokens" in caplog.text
    assert BUG_MESSAGE in caplog.text


# Root and SQLAlchemy (which sets its own logger to WARNING on import) at DEBUG.
LOGGING_AT_DEBUG = """
[loggers]
keys = root, sqlalchemy
[logger_sqlalchemy]
level = DEBUG
handlers =
qualname = sqlalchemy
[handlers]
keys = stderr
[formatters]
keys = plain
[logger_root]
level = DEBUG
handlers = stderr
[handler_stderr]
class = StreamHandler
level = DEBUG
formatter = plain
args = (sys.stderr,)
[formatter_plain]
format = %(name)s %(levelname)s %(message)s
"""


def test_gunicorn_output_at_debug_never_carries_a_token(database_url, tokens, tmp_path):
    """`gunicorn wsgi:app` with every logger (its own, access log, app, SQL) at DEBUG."""
    config = tmp_path / "logging.ini"
    config.write_text(LOGGING_AT_DEBUG)
    gunicorn_args = f"--log-config {config} --access-logfile -"
    env = {"GUNICORN_CMD_ARGS": gunicorn_args}
    # The 500 needs a patched process; the other exchanges reach gunicorn as they are.
    sent = [exchange for exchange in exchanges(tokens) if exchange[0] != "500"]
    with gunicorn_server(database_url, workers=1, threads=2, env=env) as (base_url, process):
        # A connection each: a 413 leaves its unread body on a kept-alive connection.
        for name, method, path, headers, body in sent:
            response = requests.request(method, base_url + path, **request_kwargs(headers, body))
            assert str(response.status_code) == name.split()[0], name
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert_no_token_in(output, tokens)
    assert "GET /api/v1/eas" in output  # the access log was on
    assert "api_tokens" in output  # and so were the app's SQL logs


def _column_names(engine) -> list[str]:
    inspector = inspect(engine)
    return [
        f"{table}.{column['name']}"
        for table in inspector.get_table_names()
        for column in inspector.get_columns(table)
    ]


def _property_names(document) -> list[str]:
    """Every property, parameter and header name anywhere in an OpenAPI document."""
    names = []
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            names.extend(node.get("properties", {}))
            if "name" in node and "in" in node:
                names.append(node["name"])
            names.extend(node.get("headers", {}))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


def test_no_password_column_in_the_models_or_the_migrated_database(engine):
    model_columns = [f"{t.name}.{c.name}" for t in Base.metadata.sorted_tables for c in t.columns]
    database_columns = _column_names(engine)
    assert "broker_connections.login" in database_columns  # the scan sees the real tables
    assert [name for name in model_columns + database_columns if SECRET_NAME.search(name)] == []
    # Tokens live only as their hash: no column could hold a raw one.
    assert {c.split(".")[1] for c in database_columns if c.startswith("api_tokens.")} == {
        "id",
        "token_hash",
        "kind",
        "user_id",
        "agent_id",
        "created_at",
    }


def test_no_password_field_in_the_openapi_document(client):
    document = client.get("/openapi.json").get_json()
    names = _property_names(document)
    assert "login" in names and "server" in names  # the walk reaches broker connections
    assert [name for name in names if SECRET_NAME.search(name)] == []
    schema_names = list(document["components"]["schemas"])
    assert [name for name in schema_names if SECRET_NAME.search(name)] == []
