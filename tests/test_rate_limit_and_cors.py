"""429 rate_limited per token, and CORS for the browser dashboard."""

import pytest

from deployments_api import create_app


def test_a_token_past_its_budget_is_told_when_to_come_back(app, api):
    app.extensions["rate_limiter"].per_minute = 3
    token, other = api.user(), api.user()
    answers = [api.get("eas", token) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]

    before = api.row_counts()
    limited = api.post("eas", token, {"name": "One too many"})

    assert limited.status_code == 429
    assert limited.get_json()["detail"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert api.row_counts() == before
    # The budget is per token: another user is unaffected.
    assert api.get("eas", other).status_code == 200


def test_agents_are_limited_per_token_too(app, api):
    app.extensions["rate_limiter"].per_minute = 1
    agent = api.agent()
    assert api.claim(agent).status_code == 204
    limited = api.claim(agent)
    assert limited.status_code == 429
    assert limited.get_json()["detail"] == "rate_limited"


@pytest.fixture
def cors_app(database_url):
    cors_app = create_app(
        {"DATABASE_URL": database_url, "CORS_ORIGINS": ["https://dash.example.com"]}
    )
    yield cors_app
    cors_app.extensions["deployments_db"].engine.dispose()


def test_the_dashboard_origin_may_call_the_api_from_a_browser(cors_app):
    client = cors_app.test_client()
    preflight = client.options(
        "/api/v1/deployments",
        headers={
            "Origin": "https://dash.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type, Idempotency-Key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://dash.example.com"

    unauthenticated = client.get(
        "/api/v1/deployments", headers={"Origin": "https://dash.example.com"}
    )
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["Access-Control-Allow-Origin"] == "https://dash.example.com"
    assert "X-Pagination" in unauthenticated.headers["Access-Control-Expose-Headers"]


def test_other_origins_get_no_cors_headers(cors_app, app):
    for application in (cors_app, app):  # app: CORS_ORIGINS unset, the default
        response = application.test_client().get(
            "/healthz", headers={"Origin": "https://evil.example.com"}
        )
        assert response.status_code == 200
        assert "Access-Control-Allow-Origin" not in response.headers
