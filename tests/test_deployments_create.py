"""POST /deployments: validation in the issue's order, magic numbers, what gets written."""

from dataclasses import dataclass
from datetime import datetime

import pytest

from .helpers import new_id

INT64_MAX = 2**63 - 1
TIMEFRAMES = (
    *("M1", "M2", "M3", "M4", "M5", "M6", "M10", "M12", "M15", "M20", "M30"),
    *("H1", "H2", "H3", "H4", "H6", "H8", "H12", "D1", "W1", "MN1"),
)
DEPLOYMENT_FIELDS = {
    "id",
    "status",
    "ea_id",
    "ea_name",
    "ea_version_id",
    "version",
    "broker_connection_id",
    "symbol",
    "timeframe",
    "magic_number",
    "trade_count",
    "pnl_today",
    "last_error",
    "created_at",
    "updated_at",
}
OMIT = object()


@dataclass
class World:
    """One user's catalog plus a second user's, for the lookups POST /deployments makes."""

    token: str
    version_id: str
    connection_id: str
    other_connection_id: str
    failed_version_id: str
    pending_version_id: str
    foreign_version_id: str
    foreign_connection_id: str


def finish(api, job_id, job_type, status="completed", **fields):
    """Claim `job_id` (by type, since other jobs may be pending first) and report on it."""
    claimed = api.claim(job_types=[job_type])
    assert claimed.status_code == 200
    job = claimed.get_json()
    assert job["id"] == job_id
    reported = api.report(job, status, **fields)
    assert reported.status_code == 200, reported.get_json()


@pytest.fixture
def world(api):
    token = api.user()
    version = api.compiled_version(token)
    failed = api.create_version(token, version["ea_id"], "0.9-broken")
    finish(api, failed["compile_job_id"], "compile", "failed", error_message="syntax error")
    stranger = api.user()
    foreign_version = api.compiled_version(stranger)
    foreign_connection = api.connection(stranger)
    pending = api.create_version(token, version["ea_id"], "2.0-compiling")
    return World(
        token=token,
        version_id=version["id"],
        connection_id=api.connection(token)["id"],
        other_connection_id=api.connection(token, "Pepperstone live")["id"],
        failed_version_id=failed["id"],
        pending_version_id=pending["id"],
        foreign_version_id=foreign_version["id"],
        foreign_connection_id=foreign_connection["id"],
    )


def body_for(world: World, **fields) -> dict:
    body = {
        "ea_version_id": world.version_id,
        "broker_connection_id": world.connection_id,
        "symbol": "EURUSD",
        "timeframe": "H1",
        **fields,
    }
    return {name: value for name, value in body.items() if value is not OMIT}


def create(api, world: World, **fields):
    return api.post("deployments", world.token, body_for(world, **fields))


def created_id(response) -> str:
    assert response.status_code == 201, response.get_json()
    return response.get_json()["deployment_id"]


def magic_of(api, world: World, deployment_id: str) -> int:
    return api.get(f"deployments/{deployment_id}", world.token).get_json()["magic_number"]


def assert_refused_without_writes(api, world, fields, status, detail):
    before = api.row_counts()
    response = create(api, world, **fields)
    assert response.status_code == status, (fields, response.get_json())
    assert response.get_json()["detail"] == detail, fields
    assert api.row_counts() == before, fields
    return response.get_json()


# -- body validation ---------------------------------------------------------------------


VALID_VALUES = {
    "symbol": [
        "EURUSD",
        "XAUUSD.m",
        "US30.cash",
        "#AAPL",
        "BTC-USD",
        "EUR+",
        "EUR_USD",
        "A",
        "X" * 32,
    ],
    "timeframe": list(TIMEFRAMES),
    "magic_number": [1, 2, 123456789, INT64_MAX],
}
INVALID_VALUES = {
    "symbol": [
        "",
        "X" * 33,
        "EURUSD\n",
        "EUR USD",
        "EUR/USD",
        "EURUSD$",
        123,
        None,
        ["EURUSD"],
        OMIT,
    ],
    "timeframe": ["m1", "H5", "MN", "", "H1 ", 60, None, OMIT],
    "magic_number": [0, -1, INT64_MAX + 1, 1.5, "7", True, False],
    "ea_version_id": ["not-a-uuid", None, 42, OMIT],
    "broker_connection_id": ["", None, OMIT],
}


@pytest.mark.parametrize("field", list(VALID_VALUES))
def test_every_allowed_value_is_accepted_and_stored(api, world, field):
    # One loop per field (not one test per value) keeps this file fast on Postgres.
    for value in VALID_VALUES[field]:
        deployment_id = created_id(create(api, world, **{field: value}))
        stored = api.get(f"deployments/{deployment_id}", world.token).get_json()[field]
        assert stored == value, field


@pytest.mark.parametrize("field", list(INVALID_VALUES))
def test_an_invalid_field_is_a_validation_error_naming_it(api, world, field):
    for value in INVALID_VALUES[field]:
        body = assert_refused_without_writes(api, world, {field: value}, 422, "validation_error")
        assert field in body["errors"], (field, value, body["errors"])


@pytest.mark.parametrize("raw", [b"[]", b"not json", b'"EURUSD"'])
def test_a_body_that_is_not_a_json_object_is_refused(api, world, raw):
    before = api.row_counts()
    response = api.request(
        "POST",
        "deployments",
        world.token,
        data=raw,
        headers={"Content-Type": "application/json"},
    )
    assert (response.status_code, response.get_json()["detail"]) == (400, "invalid_json")
    assert api.row_counts() == before


# -- lookups and their order ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "connection", "extra", "status", "detail"),
    [
        ("unknown", "mine", {}, 404, "ea_version_not_found"),
        ("foreign", "mine", {}, 404, "ea_version_not_found"),
        ("compiled", "unknown", {}, 404, "broker_connection_not_found"),
        ("compiled", "foreign", {}, 404, "broker_connection_not_found"),
        ("pending", "mine", {}, 422, "ea_not_compiled"),
        ("failed", "mine", {}, 422, "ea_not_compiled"),
        ("compiled", "mine", {"magic_number": 77}, 409, "magic_number_in_use"),
        # Two problems at once: the earlier check in the issue's order answers.
        ("unknown", "unknown", {"symbol": "EUR USD"}, 422, "validation_error"),
        ("unknown", "unknown", {}, 404, "ea_version_not_found"),
        ("foreign", "foreign", {}, 404, "ea_version_not_found"),
        ("pending", "unknown", {}, 404, "broker_connection_not_found"),
        ("failed", "foreign", {}, 404, "broker_connection_not_found"),
        ("pending", "mine", {"magic_number": 77}, 422, "ea_not_compiled"),
    ],
)
def test_lookups_answer_in_the_issue_order_and_write_nothing(
    api, world, version, connection, extra, status, detail
):
    created_id(create(api, world, magic_number=77))
    versions = {
        "compiled": world.version_id,
        "unknown": new_id(),
        "foreign": world.foreign_version_id,
        "pending": world.pending_version_id,
        "failed": world.failed_version_id,
    }
    connections = {
        "mine": world.connection_id,
        "unknown": new_id(),
        "foreign": world.foreign_connection_id,
    }
    fields = {
        "ea_version_id": versions[version],
        "broker_connection_id": connections[connection],
        **extra,
    }
    assert_refused_without_writes(api, world, fields, status, detail)


def test_a_failed_compile_is_not_deployable_but_its_sibling_is(api, world):
    assert_refused_without_writes(
        api, world, {"ea_version_id": world.failed_version_id}, 422, "ea_not_compiled"
    )
    created_id(create(api, world))


# -- magic numbers -------------------------------------------------------------------------


def test_the_same_magic_number_is_free_on_another_connection(api, world):
    created_id(create(api, world, magic_number=42))
    other = created_id(
        create(api, world, magic_number=42, broker_connection_id=world.other_connection_id)
    )
    assert magic_of(api, world, other) == 42


@pytest.mark.parametrize(
    "holder_status", ["deploying", "running", "stopping", "stopped", "starting"]
)
def test_every_live_status_holds_its_magic_number(api, holder_status):
    token = api.user()
    holder = api.deployment(token, holder_status, magic_number=9)
    before = api.row_counts()
    response = api.deploy(
        token, holder["ea_version_id"], holder["broker_connection_id"], magic_number=9
    )
    assert (response.status_code, response.get_json()["detail"]) == (409, "magic_number_in_use")
    assert api.row_counts() == before


def test_a_deployment_in_error_frees_its_magic_number(api, world):
    response = create(api, world, magic_number=42)
    holder = created_id(response)
    assert_refused_without_writes(api, world, {"magic_number": 42}, 409, "magic_number_in_use")
    finish(api, response.get_json()["job_id"], "deploy", "failed", error_message="no terminal")
    assert api.get(f"deployments/{holder}", world.token).get_json()["status"] == "error"

    again = created_id(create(api, world, magic_number=42))
    assert magic_of(api, world, again) == 42


def test_an_omitted_magic_number_takes_the_smallest_free_one(api, world):
    assert magic_of(api, world, created_id(create(api, world))) == 1
    for taken in (2, 4):
        created_id(create(api, world, magic_number=taken))
    # Numbers held on another connection do not count here.
    created_id(create(api, world, magic_number=3, broker_connection_id=world.other_connection_id))

    assert magic_of(api, world, created_id(create(api, world))) == 3
    assert magic_of(api, world, created_id(create(api, world, magic_number=None))) == 5


def test_an_omitted_magic_number_reuses_one_freed_by_an_error(api, world):
    first = create(api, world)
    created_id(create(api, world))
    finish(api, first.get_json()["job_id"], "deploy", "failed", error_message="no terminal")
    assert magic_of(api, world, created_id(create(api, world))) == 1


def test_an_omitted_magic_number_starts_at_one_on_each_connection(api, world):
    created_id(create(api, world, magic_number=1))
    other = created_id(create(api, world, broker_connection_id=world.other_connection_id))
    assert magic_of(api, world, other) == 1


# -- what a successful create writes -------------------------------------------------------


def test_create_answers_ids_and_writes_a_deploying_deployment_with_its_job(api, world):
    before = api.row_counts()
    response = create(api, world, symbol="XAUUSD.m", timeframe="M15", magic_number=777)
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert {"deployment_id", "job_id"} <= set(answer)
    after = api.row_counts()
    assert after["ea_deployments"] == before["ea_deployments"] + 1
    assert after["jobs"] == before["jobs"] + 1

    shown = api.get(f"deployments/{answer['deployment_id']}", world.token)
    assert shown.status_code == 200
    deployment = shown.get_json()
    assert set(deployment) >= DEPLOYMENT_FIELDS
    assert deployment["id"] == answer["deployment_id"]
    assert deployment["status"] == "deploying"
    assert deployment["ea_version_id"] == world.version_id
    assert deployment["ea_name"] == "Scalper"
    assert deployment["version"] == "1.0"
    assert deployment["broker_connection_id"] == world.connection_id
    assert (deployment["symbol"], deployment["timeframe"]) == ("XAUUSD.m", "M15")
    assert deployment["magic_number"] == 777
    assert (deployment["trade_count"], deployment["pnl_today"]) == (0, 0)
    assert deployment["last_error"] is None
    for stamp in ("created_at", "updated_at"):
        assert datetime.fromisoformat(deployment[stamp]).utcoffset() is not None
    version = api.get(f"ea-versions/{world.version_id}", world.token).get_json()
    assert deployment["ea_id"] == version["ea_id"]


def test_the_deploy_job_carries_exactly_the_contract_input(api, world):
    answer = create(api, world, symbol="US30.cash", timeframe="D1", magic_number=31).get_json()
    version = api.get(f"ea-versions/{world.version_id}", world.token).get_json()
    expected_input = {
        "deployment_id": answer["deployment_id"],
        "artifact_storage_path": version["artifact_storage_path"],
        "symbol": "US30.cash",
        "timeframe": "D1",
        "magic_number": 31,
        "broker_connection_id": world.connection_id,
    }
    assert version["artifact_storage_path"]

    job = api.get(f"jobs/{answer['job_id']}", world.token).get_json()
    assert (job["job_type"], job["status"]) == ("deploy", "pending")
    assert job["input_data"] == expected_input

    claimed = api.claim(job_types=["deploy"]).get_json()
    assert claimed["id"] == answer["job_id"]
    assert claimed["input_data"] == expected_input


def test_the_deploy_job_carries_an_assigned_magic_number(api, world):
    created_id(create(api, world, magic_number=1))
    answer = create(api, world).get_json()
    job = api.get(f"jobs/{answer['job_id']}", world.token).get_json()
    assert job["input_data"]["magic_number"] == 2


def test_another_user_cannot_see_the_created_deployment_or_its_job(api, world):
    answer = create(api, world).get_json()
    stranger = api.user()
    for path in (f"deployments/{answer['deployment_id']}", f"jobs/{answer['job_id']}"):
        response = api.get(path, stranger)
        assert (response.status_code, response.get_json()["detail"]) == (404, "not_found")
