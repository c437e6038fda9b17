"""Service routes and the one error shape: every failure is JSON with a stable `detail`."""

import pytest

from deployments_api import create_app
from deployments_api.api.common import current_uow

from .helpers import assert_error

SECRET = "s3cr3t-internal-state-that-must-not-leak"


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_answers_200_while_the_database_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


@pytest.mark.parametrize("path", ["/nope", "/api/v1/nope", "/api/v1/eas/not-a-uuid/versions"])
def test_unknown_route_is_not_found(api, path):
    user = api.user()
    before = api.row_counts()
    assert_error(api.post(path, user, {"name": "x"}), 404, "not_found")
    assert api.row_counts() == before


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/healthz"), ("PUT", "eas"), ("DELETE", "eas"), ("GET", "agent/jobs/claim")],
)
def test_wrong_method_is_method_not_allowed(api, method, path):
    user = api.user()
    before = api.row_counts()
    assert_error(api.request(method, path, user, json={"name": "x"}), 405, "method_not_allowed")
    assert api.row_counts() == before


@pytest.mark.parametrize(
    "raw_body",
    [
        b"{",
        b"{'name': 'single quotes'}",
        b'{"name": "Scalper",}',
        b'{"name": NaN}',
        b"\xff\xfe not utf-8",
        # valid JSON, but not the object a body must be
        b"[]",
        b'[{"name": "x"}]',
        b'"Scalper"',
        b"42",
        b"null",
    ],
)
def test_malformed_json_or_a_non_object_is_invalid_json(api, raw_body):
    user = api.user()
    before = api.row_counts()
    response = api.request(
        "POST", "eas", user, data=raw_body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid_json")
    assert api.row_counts() == before


def test_body_over_the_limit_is_payload_too_large(app, api):
    user = api.user()
    app.config["MAX_CONTENT_LENGTH"] = 64
    before = api.row_counts()
    assert_error(api.post("eas", user, {"name": "x" * 100}), 413, "payload_too_large")
    assert api.row_counts() == before
    # The same route still takes a body under the limit: the 413 was about the size.
    assert api.post("eas", user, {"name": "small"}).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": 42}, "name"),
        ({"name": "Scalper", "colour": "red"}, "colour"),
    ],
)
def test_schema_failure_is_validation_error_keyed_by_field(api, body, field):
    user = api.user()
    before = api.row_counts()
    error = assert_error(api.post("eas", user, body), 422, "validation_error")
    assert set(error["errors"]) == {field}
    assert error["errors"][field]
    assert all(isinstance(message, str) for message in error["errors"][field])
    assert api.row_counts() == before


@pytest.fixture
def app_with_a_bug(database_url):
    """A production-like app (TESTING off, so errors are handled, not raised in the test)."""
    buggy = create_app({"DATABASE_URL": database_url, "RATE_LIMIT_PER_MINUTE": 0})

    def write_then_crash():
        uow = current_uow()
        with uow:
            uow.users.add("half-written@example.com")
            raise RuntimeError(SECRET)

    buggy.add_url_rule("/boom", view_func=write_then_crash, methods=["POST"])
    yield buggy
    buggy.extensions["deployments_db"].engine.dispose()


def test_unexpected_error_is_internal_error_without_a_trace(api, app_with_a_bug):
    before = api.row_counts()
    response = app_with_a_bug.test_client().post("/boom", json={})
    assert_error(response, 500, "internal_error")
    text = response.get_data(as_text=True)
    for leak in (SECRET, "Traceback", "RuntimeError", "write_then_crash", ".py"):
        assert leak not in text
    # The half-done write of the failed request was rolled back.
    assert api.row_counts() == before
