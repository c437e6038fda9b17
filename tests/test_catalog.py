"""EAs, versions (each with its compile job), broker connections and GET /jobs/{id}."""

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import inspect

from .helpers import ApiClient, assert_error, new_id


def assert_utc_timestamp(value: str) -> None:
    """ISO 8601 with an explicit UTC offset (`+00:00` or `Z`), never a naive time."""
    assert value.endswith(("+00:00", "Z")), value
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0)


def assert_uuid(value: str) -> None:
    assert str(uuid.UUID(value)) == value


def assert_refused(api, method, path, token, body, status, detail, field=None):
    """The request fails with `detail` (naming `field` if given) and writes nothing."""
    before = api.row_counts()
    error = assert_error(api.request(method, path, token, json=body), status, detail)
    if field is not None:
        assert field in error["errors"], error
    assert api.row_counts() == before
    return error


# -- EAs ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["A", "x" * 100, "Grid Scalper Ü 2"])
def test_create_ea(api, name):
    created = api.post("eas", api.user(), {"name": name})
    assert created.status_code == 201
    body = created.get_json()
    assert set(body) >= {"id", "name", "created_at"}
    assert body["name"] == name
    assert_uuid(body["id"])
    assert_utc_timestamp(body["created_at"])


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 101}, {"name": None}])
def test_create_ea_refuses_a_bad_name(api, body):
    assert_refused(api, "POST", "eas", api.user(), body, 422, "validation_error", "name")


@pytest.mark.parametrize(
    ("path", "create"),
    [("eas", ApiClient.create_ea), ("broker-connections", ApiClient.connection)],
    ids=["eas", "broker-connections"],
)
def test_a_list_shows_only_mine(api, path, create):
    mine, theirs = api.user(), api.user()
    created = {create(api, mine, name)["id"] for name in ("One", "Two")}
    create(api, theirs, "Not yours")
    listed = api.get(path, mine)
    assert listed.status_code == 200
    assert {item["id"] for item in listed.get_json()} == created
    for item in listed.get_json():
        assert_utc_timestamp(item["created_at"])


# -- versions and their compile jobs --------------------------------------------------


@pytest.mark.parametrize(
    ("version", "source"),
    [("1", None), ("v" * 50, "sources/scalper/1.0.mq5"), ("2.0.1-beta", None)],
)
def test_create_version_queues_its_compile_job_in_the_same_request(api, version, source):
    user = api.user()
    ea = api.create_ea(user)
    before = api.row_counts()
    body = (
        {"version": version}
        if source is None
        else {"version": version, "source_storage_path": source}
    )
    response = api.post(f"eas/{ea['id']}/versions", user, body)
    assert response.status_code == 201
    created = response.get_json()
    assert set(created) >= {"id", "ea_id", "version", "status", "compile_job_id", "created_at"}
    assert (created["ea_id"], created["version"], created["status"]) == (
        ea["id"],
        version,
        "pending",
    )
    assert_uuid(created["id"])
    assert_utc_timestamp(created["created_at"])
    after = api.row_counts()
    assert after["ea_versions"] == before["ea_versions"] + 1
    assert after["jobs"] == before["jobs"] + 1

    job = api.get(f"jobs/{created['compile_job_id']}", user)
    assert job.status_code == 200
    job = job.get_json()
    assert (job["job_type"], job["status"], job["attempts"]) == ("compile", "pending", 0)
    assert job["input_data"] == {"ea_version_id": created["id"], "source_storage_path": source}


@pytest.mark.parametrize(
    "body",
    [{}, {"version": ""}, {"version": "v" * 51}, {"version": 1}, {"version": "1", "notes": "x"}],
)
def test_create_version_refuses_a_bad_body(api, body):
    user = api.user()
    ea = api.create_ea(user)
    field = "notes" if "notes" in body else "version"
    assert_refused(
        api, "POST", f"eas/{ea['id']}/versions", user, body, 422, "validation_error", field
    )


def test_a_version_string_an_ea_already_has_is_version_exists(api):
    user = api.user()
    ea = api.create_ea(user)
    api.create_version(user, ea["id"], "1.0")
    assert_refused(
        api, "POST", f"eas/{ea['id']}/versions", user, {"version": "1.0"}, 409, "version_exists"
    )
    # The same string on another EA is a different version.
    api.create_version(user, api.create_ea(user, "Other")["id"], "1.0")


@pytest.mark.parametrize("owner", ["another user", "nobody"])
def test_versions_of_an_ea_that_is_not_mine_are_not_found(api, owner):
    ea_id = api.create_ea(api.user())["id"] if owner == "another user" else new_id()
    assert_refused(
        api, "POST", f"eas/{ea_id}/versions", api.user(), {"version": "1.0"}, 404, "not_found"
    )


def test_get_version(api):
    user = api.user()
    ea = api.create_ea(user, "Grid")
    created = api.create_version(user, ea["id"], "3.1")
    response = api.get(f"ea-versions/{created['id']}", user)
    assert response.status_code == 200
    shown = response.get_json()
    assert {key: shown[key] for key in ("id", "ea_id", "ea_name", "version", "status")} == {
        "id": created["id"],
        "ea_id": ea["id"],
        "ea_name": "Grid",
        "version": "3.1",
        "status": "pending",
    }
    assert shown["artifact_storage_path"] is None
    assert shown["error_message"] is None
    assert shown["created_at"] == created["created_at"]
    assert_utc_timestamp(shown["created_at"])


@pytest.mark.parametrize("owner", ["another user", "nobody"])
def test_a_version_that_is_not_mine_is_not_found(api, owner):
    version_id = api.create_version(api.user())["id"] if owner == "another user" else new_id()
    assert_refused(api, "GET", f"ea-versions/{version_id}", api.user(), None, 404, "not_found")


# -- broker connections ---------------------------------------------------------------

CONNECTION = {"name": "ICMarkets demo", "server": "ICMarkets-Demo", "login": "5012345"}


@pytest.mark.parametrize(
    "fields",
    [{}, {"name": "n" * 100, "server": "s" * 100, "login": "1" * 64}, {"login": "7"}],
)
def test_create_broker_connection(api, fields):
    body = {**CONNECTION, **fields}
    response = api.post("broker-connections", api.user(), body)
    assert response.status_code == 201
    created = response.get_json()
    assert {key: created[key] for key in body} == body
    assert_uuid(created["id"])
    assert_utc_timestamp(created["created_at"])
    assert "password" not in created


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", "n" * 101),
        ("server", ""),
        ("server", "s" * 101),
        ("login", ""),
        ("login", "1" * 65),
        ("login", 5012345),
        ("name", None),
    ],
)
def test_create_broker_connection_refuses_bad_fields(api, field, value):
    body = {**CONNECTION, field: value}
    assert_refused(
        api, "POST", "broker-connections", api.user(), body, 422, "validation_error", field
    )


@pytest.mark.parametrize("missing", sorted(CONNECTION))
def test_create_broker_connection_needs_every_field(api, missing):
    body = {key: value for key, value in CONNECTION.items() if key != missing}
    assert_refused(
        api, "POST", "broker-connections", api.user(), body, 422, "validation_error", missing
    )


def test_a_broker_password_is_refused_and_has_nowhere_to_go(api, engine):
    body = {**CONNECTION, "password": "hunter2"}
    assert_refused(
        api, "POST", "broker-connections", api.user(), body, 422, "validation_error", "password"
    )
    columns = [column["name"] for column in inspect(engine).get_columns("broker_connections")]
    assert {"name", "server", "login"} <= set(columns)
    assert not [column for column in columns if "pass" in column.lower()]


# -- jobs -----------------------------------------------------------------------------


def test_get_my_job(api):
    user = api.user()
    version = api.create_version(user)
    response = api.get(f"jobs/{version['compile_job_id']}", user)
    assert response.status_code == 200
    job = response.get_json()
    assert set(job) >= {
        "id",
        "job_type",
        "status",
        "input_data",
        "output_data",
        "error_message",
        "attempts",
        "created_at",
        "started_at",
        "completed_at",
    }
    assert job["id"] == version["compile_job_id"]
    assert (job["output_data"], job["error_message"]) == (None, None)
    assert (job["started_at"], job["completed_at"]) == (None, None)
    assert_utc_timestamp(job["created_at"])

    api.finish_job(job["id"], output_data={"artifact_storage_path": "artifacts/x.ex5"})
    finished = api.get(f"jobs/{job['id']}", user).get_json()
    assert finished["status"] == "completed"
    assert finished["output_data"] == {"artifact_storage_path": "artifacts/x.ex5"}
    for key in ("created_at", "started_at", "completed_at"):
        assert_utc_timestamp(finished[key])


@pytest.mark.parametrize("owner", ["another user", "nobody"])
def test_a_job_that_is_not_mine_is_not_found(api, owner):
    job_id = (
        api.create_version(api.user())["compile_job_id"] if owner == "another user" else new_id()
    )
    assert_refused(api, "GET", f"jobs/{job_id}", api.user(), None, 404, "not_found")
