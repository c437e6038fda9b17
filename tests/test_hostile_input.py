"""Hostile input writes nothing and answers from the contract's error table.

One table: each row sends one hostile request against a world of real rows and checks the
status, the `detail`, the field `errors` names, and that no table changed (row counts and
contents; an agent's `last_seen_at`, one of the contract's two deliberate exceptions, is
left out of the comparison).
"""

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from deployments_api.models import Agent, Base
from deployments_api.schemas.fields import INT64_MAX

from .helpers import new_id


@dataclass(frozen=True)
class Ref:
    """A placeholder for the id of a row the `world` fixture created."""

    name: str


@dataclass
class Row:
    method: str
    path: str
    status: int
    detail: str | None
    token: str | None = "user"  # "user", "agent" or None
    json: Any = None
    data: bytes | str | None = None
    headers: dict = field(default_factory=dict)
    query: str = ""
    error_field: str | None = None  # a key `errors` must have


EA = {"name": "Scalper"}
VERSION = {"version": "1.0"}
CONNECTION = {"name": "Demo", "server": "ICMarkets-Demo", "login": "5012345"}
DEPLOYMENT = {
    "ea_version_id": Ref("version_id"),
    "broker_connection_id": Ref("connection_id"),
    "symbol": "EURUSD",
    "timeframe": "H1",
}
TRADE = {
    "ticket": 1,
    "symbol": "EURUSD",
    "volume": 0.1,
    "profit": 1.5,
    "closed_at": "2026-01-01T10:00:00+00:00",
}
RESULT = {"status": "failed", "error_message": "broker offline", "attempt": 1}
HEARTBEAT = {"attempt": 1}
TRADES_PATH = "agent/deployments/{deployment_id}/trades"
RESULT_PATH = "agent/jobs/{held_job_id}/result"
CLAIM_PATH = "agent/jobs/claim"
IDEMPOTENCY = "Idempotency-Key"
HEARTBEAT_PATH = "agent/jobs/{held_job_id}/heartbeat"
ONE_MIB = 1024 * 1024


def with_(body: dict, **changes) -> dict:
    return {**body, **changes}


def trades(**changes) -> dict:
    return {"trades": [with_(TRADE, **changes)]}


def nested(depth: int) -> dict:
    value: Any = "bottom"
    for _ in range(depth - 1):
        value = {"k": value}
    return value


def invalid(method, path, body, error_field, token="user", **kwargs) -> Row:
    return Row(
        method, path, 422, "validation_error", token, body, error_field=error_field, **kwargs
    )


def post_ea(body, error_field) -> Row:
    return invalid("POST", "eas", body, error_field)


def post_connection(error_field, **changes) -> Row:
    return invalid("POST", "broker-connections", with_(CONNECTION, **changes), error_field)


def post_deployment(error_field, **changes) -> Row:
    return invalid("POST", "deployments", with_(DEPLOYMENT, **changes), error_field)


def post_trades(error_field, **changes) -> Row:
    return invalid("POST", TRADES_PATH, trades(**changes), error_field, token="agent")


def post_result(error_field, **changes) -> Row:
    return invalid("POST", RESULT_PATH, with_(RESULT, **changes), error_field, token="agent")


def post_agent(path, body, error_field) -> Row:
    return invalid("POST", path, body, error_field, token="agent")


def raw(path, data, status, detail, content_type="application/json", **kwargs) -> Row:
    """A body sent as the bytes given, with its Content-Type (None: no header)."""
    headers = {"Content-Type": content_type} if content_type else {}
    return Row("POST", path, status, detail, data=data, headers=headers, **kwargs)


def bad_query(path, query, error_field) -> Row:
    return Row("GET", path, 422, "validation_error", query=query, error_field=error_field)


def not_found(path, method="GET", token="user") -> Row:
    return Row(method, path, 404, "not_found", token)


def ignored_query(path, query) -> Row:
    return Row("GET", path, 200, None, query=query)


def bad_idempotency_key(path, key, body=None) -> Row:
    return Row(
        "POST",
        path,
        422,
        "validation_error",
        json=body,
        headers={IDEMPOTENCY: key},
        error_field=IDEMPOTENCY,
    )


WAIT = "deployments/{deployment_id}/wait"
LOGS = "deployments/{deployment_id}/logs"
TRADE_WITH_INFINITE_PROFIT = (
    '{"trades": [{"ticket": 1, "symbol": "EURUSD", "volume": 0.1, "profit": 1e400,'
    ' "closed_at": "2026-01-01T10:00:00+00:00"}]}'
)

OVERSIZED_EA = json.dumps({"name": "x" * ONE_MIB})
OVERSIZED_TRADES = json.dumps(trades(symbol="E" * ONE_MIB))

ROWS = {
    # -- NUL characters anywhere: Postgres cannot store them ------------------------------
    "nul in an EA name": post_ea({"name": "Scal\x00per"}, "name"),
    "nul in a version": invalid("POST", "eas/{ea_id}/versions", {"version": "1\x00"}, "version"),
    "nul in a broker server": post_connection("server", server="a\x00b"),
    "nul in a symbol": post_deployment("symbol", symbol="EUR\x00USD"),
    "nul in an error message": post_result("error_message", error_message="\x00"),
    "nul in an output_data key": post_result("output_data", output_data={"lo\x00g": 1}),
    "nul deep in output_data": post_result(
        "output_data.log.0.line", output_data={"log": [{"line": "a\x00"}]}
    ),
    "nul in an unknown field's name": post_ea({"name": "x", "\x00": 1}, "_body"),
    "lone surrogate in a name": raw(
        "eas", '{"name": "\\ud800"}', 422, "validation_error", error_field="name"
    ),
    "nul in ?tz=": bad_query("deployments", "tz=UTC%00", "tz"),
    "nul in ?status=": bad_query("deployments", "status=running%00", "status"),
    # -- strings past their limits --------------------------------------------------------
    "EA name of 101 chars": post_ea({"name": "x" * 101}, "name"),
    "EA name of 100k chars": post_ea({"name": "x" * 100_000}, "name"),
    "empty EA name": post_ea({"name": ""}, "name"),
    "version of 51 chars": invalid(
        "POST", "eas/{ea_id}/versions", {"version": "v" * 51}, "version"
    ),
    "login of 65 chars": post_connection("login", login="1" * 65),
    "symbol of 33 chars": post_deployment("symbol", symbol="E" * 33),
    "symbol with a space": post_deployment("symbol", symbol="EUR USD"),
    "symbol with a trailing newline": post_deployment("symbol", symbol="EURUSD\n"),
    "unknown timeframe": post_deployment("timeframe", timeframe="H5"),
    "error message of 10001 chars": post_result("error_message", error_message="e" * 10_001),
    "trade symbol of 33 chars": post_trades("trades.0.symbol", symbol="E" * 33),
    # -- integers past int64, zero and negative magic numbers, wrong number types ---------
    "magic number 2**63": post_deployment("magic_number", magic_number=INT64_MAX + 1),
    "magic number 10**100": post_deployment("magic_number", magic_number=10**100),
    "magic number 0": post_deployment("magic_number", magic_number=0),
    "magic number -1": post_deployment("magic_number", magic_number=-1),
    "magic number -2**63": post_deployment("magic_number", magic_number=-(2**63)),
    "magic number 1.0": post_deployment("magic_number", magic_number=1.0),
    "magic number 1.5": post_deployment("magic_number", magic_number=1.5),
    "magic number as a string": post_deployment("magic_number", magic_number="7"),
    "magic number as a boolean": post_deployment("magic_number", magic_number=True),
    "ticket 2**63": post_trades("trades.0.ticket", ticket=INT64_MAX + 1),
    "ticket 0": post_trades("trades.0.ticket", ticket=0),
    "ticket 1.0": post_trades("trades.0.ticket", ticket=1.0),
    "volume 0": post_trades("trades.0.volume", volume=0),
    "volume -0.1": post_trades("trades.0.volume", volume=-0.1),
    "volume as a string": post_trades("trades.0.volume", volume="0.1"),
    "profit past the money limit": post_trades("trades.0.profit", profit=10**9 + 1),
    "profit 1e400 (infinity)": raw(
        TRADES_PATH,
        TRADE_WITH_INFINITE_PROFIT,
        422,
        "validation_error",
        token="agent",
        error_field="trades.0.profit",
    ),
    "closed_at without an offset": post_trades("trades.0.closed_at", closed_at="2026-01-01T10:00"),
    "no trades": post_agent(TRADES_PATH, {"trades": []}, "trades"),
    "1001 trades": post_agent(TRADES_PATH, {"trades": [TRADE] * 1001}, "trades"),
    "attempt 2**31": post_agent(HEARTBEAT_PATH, {"attempt": 2**31}, "attempt"),
    "attempt 0": post_agent(HEARTBEAT_PATH, {"attempt": 0}, "attempt"),
    "attempt 1.0": post_agent(HEARTBEAT_PATH, {"attempt": 1.0}, "attempt"),
    "result status unknown": post_result("status", status="done"),
    "claim of an unknown job type": post_agent(
        CLAIM_PATH, {"job_types": ["backtest"]}, "job_types"
    ),
    # -- deeply nested JSON ---------------------------------------------------------------
    "output_data 40 levels deep": post_result("output_data", output_data=nested(40)),
    "a body 100000 levels deep": raw(
        "eas", "[" * 100_000 + "]" * 100_000, 422, "validation_error", error_field="_body"
    ),
    # -- not JSON, or not an object -------------------------------------------------------
    "body that is not JSON": raw("eas", "{name: x}", 400, "invalid_json"),
    "body that is a JSON array": Row("POST", "eas", 400, "invalid_json", json=[EA]),
    "body that is a JSON string": Row("POST", "eas", 400, "invalid_json", json="Scalper"),
    "NaN literal": raw(
        TRADES_PATH, '{"trades": [{"profit": NaN}]}', 400, "invalid_json", token="agent"
    ),
    "trades that are an object": post_agent(TRADES_PATH, {"trades": {"0": TRADE}}, "trades"),
    "missing required field": post_ea({}, "name"),
    "no body where one is required": Row(
        "POST", "eas", 422, "validation_error", error_field="name"
    ),
    # -- wrong content types --------------------------------------------------------------
    "JSON sent as text/plain": raw(
        "eas", '{"name": "x"}', 422, "validation_error", "text/plain", error_field="Content-Type"
    ),
    "a form instead of JSON": raw(
        "eas",
        "name=x",
        422,
        "validation_error",
        "application/x-www-form-urlencoded",
        error_field="Content-Type",
    ),
    "JSON without a content type": raw(
        "eas", '{"name": "x"}', 422, "validation_error", None, error_field="Content-Type"
    ),
    "JSON sent as multipart": raw(
        CLAIM_PATH,
        "{}",
        422,
        "validation_error",
        "multipart/form-data; boundary=x",
        token="agent",
        error_field="Content-Type",
    ),
    # -- bodies over the limit (1 MiB by default) -----------------------------------------
    "body over 1 MiB": raw("eas", OVERSIZED_EA, 413, "payload_too_large"),
    "agent body over 1 MiB": raw(
        TRADES_PATH, OVERSIZED_TRADES, 413, "payload_too_large", token="agent"
    ),
    # -- unknown fields (decided: rejected, marshmallow's RAISE) ---------------------------
    "unknown EA field": post_ea({"name": "x", "owner": "someone"}, "owner"),
    "a broker password": post_connection("password", password="hunter2"),
    "deployment with a typo'd magic": post_deployment("magic", magic=7),
    "unknown trade field": post_trades("trades.0.comment", comment="x"),
    "unknown result field": post_result("progress", progress=50),
    "unknown claim field": post_agent(CLAIM_PATH, {"types": ["compile"]}, "types"),
    # -- unknown query parameters are ignored (decided) ------------------------------------
    "unknown query on the list": ignored_query("deployments", "owner=other&debug=1"),
    "unknown query on the logs": ignored_query(LOGS, "x=%00"),
    # -- malformed ids in paths ------------------------------------------------------------
    "deployment id that is not a uuid": not_found("deployments/not-a-uuid"),
    "deployment id with a bad digit": not_found("deployments/00000000-0000-0000-0000-00000000000g"),
    "deployment id that is a number": not_found("deployments/12345"),
    "deployment id that is NUL": not_found("deployments/%00"),
    "deployment id with a traversal": not_found("deployments/..%2F..%2Fetc%2Fpasswd"),
    "run on a malformed id": not_found("deployments/xyz/run", "POST"),
    "version id that is not a uuid": not_found("ea-versions/1.0"),
    "ea id that is not a uuid": not_found("eas/scalper/versions", "POST"),
    "job id that is SQL": not_found("jobs/' OR 1=1 --"),
    "agent result on a malformed id": not_found("agent/jobs/nope/result", "POST", "agent"),
    "agent trades on a malformed id": not_found("agent/deployments/1/trades", "POST", "agent"),
    "unknown deployment": not_found(f"deployments/{new_id()}"),
    # -- bad query values ------------------------------------------------------------------
    "?status= not a status": bad_query("deployments", "status=bogus", "status"),
    "?status= empty": bad_query("deployments", "status=", "status"),
    "?status= in upper case": bad_query("deployments", "status=RUNNING", "status"),
    "/wait without ?status=": bad_query(WAIT, "", "status"),
    "/wait ?status= not a status": bad_query(WAIT, "status=done", "status"),
    "/wait ?timeout=0": bad_query(WAIT, "status=running&timeout=0", "timeout"),
    "/wait ?timeout=61": bad_query(WAIT, "status=running&timeout=61", "timeout"),
    "/wait ?timeout=1.5": bad_query(WAIT, "status=running&timeout=1.5", "timeout"),
    "?tz= unknown zone": bad_query("deployments", "tz=Mars/Olympus", "tz"),
    "?tz= a path": bad_query("deployments", "tz=../../../etc/passwd", "tz"),
    "?tz= empty": bad_query("deployments", "tz=", "tz"),
    "?tz= on one deployment": bad_query("deployments/{deployment_id}", "tz=Nowhere", "tz"),
    "?limit=0": bad_query(LOGS, "limit=0", "limit"),
    "?limit=101": bad_query(LOGS, "limit=101", "limit"),
    "?limit=-1": bad_query(LOGS, "limit=-1", "limit"),
    "?limit=abc": bad_query(LOGS, "limit=abc", "limit"),
    "?limit=2**64": bad_query(LOGS, f"limit={2**64}", "limit"),
    "?page_size=0": bad_query("deployments", "page_size=0", "page_size"),
    "?page_size=1001": bad_query("deployments", "page_size=1001", "page_size"),
    "?page_size=ten": bad_query("deployments", "page_size=ten", "page_size"),
    "?page_size=1.5": bad_query("deployments", "page_size=1.5", "page_size"),
    "?page=0": bad_query("deployments", "page=0", "page"),
    "?page=-1": bad_query("deployments/{deployment_id}/events", "page=-1", "page"),
    # -- a malformed Idempotency-Key header ------------------------------------------------
    "Idempotency-Key of 256 chars": bad_idempotency_key("eas", "k" * 256, EA),
    "Idempotency-Key with DEL": bad_idempotency_key("eas", "key\x7f", EA),
    "Idempotency-Key not ASCII": bad_idempotency_key("deployments/{deployment_id}/stop", "clé"),
}


@pytest.fixture
def world(api):
    """Real rows every hostile request is aimed at, and the tokens to send."""
    user = api.user()
    running = api.deployment(user, "running")
    held = api.create_version(user, running["ea_id"], "2.0")
    claimed = api.claim_job(held["compile_job_id"])  # its lease held by the default agent
    assert claimed["attempt"] == RESULT["attempt"] == HEARTBEAT["attempt"]
    return {
        "tokens": {"user": user, "agent": api.default_agent, None: None},
        "ids": {
            "ea_id": running["ea_id"],
            "version_id": running["ea_version_id"],
            "connection_id": running["broker_connection_id"],
            "deployment_id": running["id"],
            "held_job_id": held["compile_job_id"],
        },
    }


def resolve(value, ids):
    if isinstance(value, Ref):
        return ids[value.name]
    if isinstance(value, dict):
        return {key: resolve(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, ids) for item in value]
    return value


def database_state(api) -> dict:
    """Every table's rows (with counts), minus agents' last_seen_at: it moves on any
    authenticated agent request, error or not (a deliberate exception)."""
    engine = api.app.extensions["deployments_db"].engine
    state = {"counts": api.row_counts()}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if c is not Agent.__table__.c.last_seen_at]
            rows = connection.execute(select(*columns).order_by(*table.primary_key.columns))
            state[table.name] = [tuple(row) for row in rows]
    return state


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_hostile_input_is_refused_and_writes_nothing(api, world, row):
    path = row.path.format(**world["ids"])
    if row.query:
        path = f"{path}?{row.query}"
    before = database_state(api)
    response = api.request(
        row.method,
        path,
        world["tokens"][row.token],
        json=resolve(row.json, world["ids"]),
        data=row.data,
        headers=row.headers,
    )
    body = response.get_json()
    assert response.status_code == row.status, body
    if row.detail is not None:
        assert body["detail"] == row.detail, body
    if row.error_field is not None:
        errors = body.get("errors", {})
        assert any(k == row.error_field or k.startswith(f"{row.error_field}.") for k in errors), (
            body
        )
    assert database_state(api) == before
