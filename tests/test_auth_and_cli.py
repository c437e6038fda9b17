"""Bearer tokens (kinds, storage, entropy) and the `flask` commands."""

import base64
import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select, text

from deployments_api.models import ApiToken, Base

from .helpers import assert_error, expire_lease

URLSAFE_BASE64 = re.compile(r"[A-Za-z0-9_-]+")


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invoke(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def last_line(result) -> str:
    return result.stdout.strip().splitlines()[-1]


# -- authentication -------------------------------------------------------------------


@pytest.mark.parametrize("route", [("GET", "eas"), ("POST", "agent/jobs/claim")])
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Token {token}",
        "Basic {token}",
        "{token}",
        "Bearer not-a-token-we-issued",
        "Bearer {token}x",
    ],
)
def test_missing_malformed_or_unknown_token_is_not_authenticated(api, route, authorization):
    # A real token of the route's own kind, so only the header's shape is wrong.
    valid = api.user() if route[1] == "eas" else api.agent()
    headers = {} if authorization is None else {"Authorization": authorization.format(token=valid)}
    before = api.row_counts()
    response = api.request(*route, headers=headers, json={})
    assert_error(response, 401, "not_authenticated")
    assert api.row_counts() == before


@pytest.mark.parametrize(
    ("token_kind", "method", "path"),
    [
        ("user", "POST", "agent/jobs/claim"),
        ("user", "POST", "agent/jobs/00000000-0000-0000-0000-000000000001/heartbeat"),
        ("agent", "GET", "eas"),
        ("agent", "POST", "eas"),
        ("agent", "GET", "agents"),
        ("agent", "GET", "jobs/00000000-0000-0000-0000-000000000001"),
    ],
)
def test_token_of_the_wrong_kind_is_forbidden(api, token_kind, method, path):
    token = api.user() if token_kind == "user" else api.agent()
    before = api.row_counts()
    assert_error(api.request(method, path, token, json={"name": "x"}), 403, "forbidden")
    assert api.row_counts() == before


# -- token storage --------------------------------------------------------------------


def stored_text(engine) -> str:
    """Everything the database holds, as text: every row of every table, and on SQLite
    the raw database and WAL files too (what a stolen disk or backup would show)."""
    parts = []
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if engine.dialect.name == "postgresql":
                rows = connection.execute(text(f"SELECT t::text FROM {table.name} AS t"))
            else:
                rows = connection.execute(table.select())
            parts.extend(str(tuple(row)) for row in rows)
    if engine.dialect.name == "sqlite":
        database_file = Path(engine.url.database)
        for path in (database_file, database_file.with_name(database_file.name + "-wal")):
            if path.exists():
                parts.append(read_in_another_process(path).decode("latin-1"))
    return "\n".join(parts)


def read_in_another_process(path: Path) -> bytes:
    """Read a live SQLite file without opening it in this process.

    Closing any descriptor of a file drops every POSIX lock this process holds on it,
    SQLite's included (its docs, "How To Corrupt Your Database Files", 2.2); another
    process using the database would then find it unlocked and reset the WAL index
    under our open connections ("disk I/O error").
    """
    return subprocess.run(["cat", str(path)], capture_output=True, check=True).stdout


def test_tokens_are_stored_only_as_their_sha256(app, api, engine):
    tokens = [api.user(), api.agent(), last_line(invoke(app, "create-user", "cli@example.com"))]
    tokens.append(last_line(invoke(app, "create-agent", "cli-agent")))
    everything = stored_text(engine)
    with engine.connect() as connection:
        hashes = set(connection.scalars(select(ApiToken.token_hash)))
    assert hashes == {sha256_hex(token) for token in tokens}
    for token in tokens:
        assert token not in everything
        # The scan does see what is stored: the hash is there, the token is not.
        assert sha256_hex(token) in everything


def test_tokens_carry_at_least_32_random_bytes(api):
    tokens = [api.user(), api.user(), api.agent(), api.agent()]
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        assert len(token) >= 43
        assert URLSAFE_BASE64.fullmatch(token)
        assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) >= 32


# -- command line ---------------------------------------------------------------------


def test_db_upgrade_is_idempotent(app, api):
    user = api.user()
    api.create_ea(user)
    before = api.row_counts()
    for _ in range(2):
        invoke(app, "db-upgrade")
    assert api.row_counts() == before
    assert api.get("eas", user).status_code == 200


def test_create_user_prints_a_working_token_and_reuses_the_user(app, api):
    first = last_line(invoke(app, "create-user", "trader@example.com"))
    ea = api.create_ea(first)
    second = last_line(invoke(app, "create-user", "trader@example.com"))
    assert second != first
    assert api.row_counts()["users"] == 1
    for token in (first, second):
        listed = api.get("eas", token)
        assert listed.status_code == 200
        assert [item["id"] for item in listed.get_json()] == [ea["id"]]


def test_create_agent_prints_a_token_that_claims_jobs(app, api):
    version = api.create_version(api.user())
    token = last_line(invoke(app, "create-agent", "mt5-box-1"))
    claimed = api.claim(token)
    assert claimed.status_code == 200
    assert claimed.get_json()["id"] == version["compile_job_id"]


def test_reap_jobs_applies_expiry_and_prints_json_counts(app, api, engine):
    user = api.user()
    version = api.create_version(user)
    api.claim_job(version["compile_job_id"])
    expire_lease(engine, version["compile_job_id"])
    counts = json.loads(last_line(invoke(app, "reap-jobs")))
    assert counts["leases_expired"] == 1
    assert all(isinstance(value, int) for value in counts.values())
    job = api.get(f"jobs/{version['compile_job_id']}", user).get_json()
    assert (job["status"], job["attempts"]) == ("pending", 1)
