"""Object-level authorization, route by route, from the app's own URL map.

Every route the app serves must be in one of the tables below (test_every_route_is_in_the_
matrix walks app.url_map and fails on a route the matrix cannot exercise), so a new route
cannot ship without its authorization being tested:
- every API route: no token, a garbage or malformed token -> 401 not_authenticated;
- user routes with an agent token, agent routes with a user token -> 403 forbidden;
- every user route that takes an id: another user's id -> 404 not_found, like an unknown id,
  while the owner's same request succeeds;
always with nothing written.
"""

import secrets
from dataclasses import dataclass, field

import pytest

from .test_hostile_input import database_state


@dataclass(frozen=True)
class Call:
    """How to exercise a route: the path (ids from the `world` fixture) and a valid body."""

    path: str
    json: dict | None = None
    owner_status: int = 200  # what the owner gets for the same request
    query: str = ""
    takes_id: bool = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "takes_id", "{" in self.path)

    def url(self, ids: dict) -> str:
        path = self.path.format(**ids)
        return f"{path}?{self.query}" if self.query else path


TRADE = {
    "ticket": 7,
    "symbol": "EURUSD",
    "volume": 0.1,
    "profit": 1.5,
    "closed_at": "2026-01-01T10:00:00+00:00",
}
DEPLOYMENT = {"symbol": "EURUSD", "timeframe": "H1", "magic_number": 4242}

USER_ROUTES = {
    ("GET", "/api/v1/eas"): Call("eas"),
    ("POST", "/api/v1/eas"): Call("eas", {"name": "Grid"}, 201),
    ("POST", "/api/v1/eas/<uuid:ea_id>/versions"): Call(
        "eas/{ea_id}/versions", {"version": "9.9"}, 201
    ),
    ("GET", "/api/v1/ea-versions/<uuid:version_id>"): Call("ea-versions/{version_id}"),
    ("GET", "/api/v1/broker-connections"): Call("broker-connections"),
    ("POST", "/api/v1/broker-connections"): Call(
        "broker-connections", {"name": "Live", "server": "ICMarkets-Live", "login": "1"}, 201
    ),
    ("GET", "/api/v1/deployments"): Call("deployments"),
    ("POST", "/api/v1/deployments"): Call(
        "deployments",
        {"ea_version_id": "{version_id}", "broker_connection_id": "{connection_id}", **DEPLOYMENT},
        201,
    ),
    ("GET", "/api/v1/deployments/<uuid:deployment_id>"): Call("deployments/{running_id}"),
    ("POST", "/api/v1/deployments/<uuid:deployment_id>/run"): Call(
        "deployments/{stopped_id}/run", owner_status=202
    ),
    ("POST", "/api/v1/deployments/<uuid:deployment_id>/stop"): Call(
        "deployments/{running_id}/stop", owner_status=202
    ),
    ("GET", "/api/v1/deployments/<uuid:deployment_id>/wait"): Call(
        "deployments/{running_id}/wait", query="status=running&timeout=1"
    ),
    ("GET", "/api/v1/deployments/<uuid:deployment_id>/events"): Call(
        "deployments/{running_id}/events"
    ),
    ("GET", "/api/v1/deployments/<uuid:deployment_id>/logs"): Call("deployments/{running_id}/logs"),
    ("GET", "/api/v1/jobs/<uuid:job_id>"): Call("jobs/{job_id}"),
    ("GET", "/api/v1/agents"): Call("agents"),
}
AGENT_ROUTES = {
    ("POST", "/api/v1/agent/jobs/claim"): Call("agent/jobs/claim", {}),
    ("POST", "/api/v1/agent/jobs/<uuid:job_id>/heartbeat"): Call(
        "agent/jobs/{held_job_id}/heartbeat", {"attempt": 1}
    ),
    ("POST", "/api/v1/agent/jobs/<uuid:job_id>/result"): Call(
        "agent/jobs/{held_job_id}/result", {"status": "failed", "error_message": "x", "attempt": 1}
    ),
    ("POST", "/api/v1/agent/deployments/<uuid:deployment_id>/trades"): Call(
        "agent/deployments/{running_id}/trades", {"trades": [TRADE]}
    ),
}
# No auth by design (contract: service routes); each answers a request with no token.
PUBLIC_ROUTES = {
    ("GET", "/healthz"): Call("/healthz"),
    ("GET", "/readyz"): Call("/readyz"),
    ("GET", "/openapi.json"): Call("/openapi.json"),
    ("GET", "/docs"): Call("/docs"),
    ("GET", "/docs/assets/<path:filename>"): Call("/docs/assets/swagger-ui.css"),
    ("GET", "/static/<path:filename>"): Call("/static/nothing.txt", owner_status=404),
}
API_ROUTES = {**USER_ROUTES, **AGENT_ROUTES}
ROUTES_WITH_IDS = {route: call for route, call in USER_ROUTES.items() if call.takes_id}

# Authorization headers that must all answer 401 not_authenticated.
NOT_AUTHENTICATED = {
    "no header": None,
    "unknown token": f"Bearer {secrets.token_urlsafe(32)}",
    "garbage token": "Bearer !!not a token!!",
    "empty bearer": "Bearer ",
    "basic scheme": "Basic dXNlcjpwYXNz",
    "token without a scheme": secrets.token_urlsafe(32),
    "oversized token": f"Bearer {'a' * 600}",
}


def route_id(route) -> str:
    method, rule = route
    return f"{method} {rule}"


@pytest.fixture
def world(api):
    """Two users' rows and both kinds of token; `ids` are all the owner's."""
    owner = api.user()
    running = api.deployment(owner, "running")
    stopped = api.deployment(owner, "stopped", version_id=running["ea_version_id"])
    held = api.create_version(owner, running["ea_id"], "2.0")
    claimed = api.claim_job(held["compile_job_id"])  # its lease held by the default agent
    assert claimed["attempt"] == 1
    logs = api.get(f"deployments/{running['id']}/logs", owner).get_json()
    return {
        "owner": owner,
        "other": api.user(),
        "agent": api.default_agent,
        "ids": {
            "ea_id": running["ea_id"],
            "version_id": running["ea_version_id"],
            "connection_id": running["broker_connection_id"],
            "running_id": running["id"],
            "stopped_id": stopped["id"],
            "job_id": logs[0]["job_id"],
            "held_job_id": held["compile_job_id"],
        },
    }


def fill(value, ids):
    """`value` with every "{name}" in its strings replaced by the world's id."""
    if isinstance(value, str):
        return value.format_map(ids)
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, ids) for item in value]
    return value


def send(api, world, route, call: Call, token=None, headers=None):
    ids = world["ids"]
    method = route[0]
    return api.request(method, call.url(ids), token, json=fill(call.json, ids), headers=headers)


def assert_refused(api, world, route, call, status, detail, token=None, headers=None):
    before = database_state(api)
    response = send(api, world, route, call, token, headers)
    answer = (response.status_code, response.get_json()["detail"])
    assert answer == (status, detail), (headers, response.get_json())
    assert database_state(api) == before


def test_every_route_is_in_the_matrix(app):
    served = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    known = {**API_ROUTES, **PUBLIC_ROUTES}
    assert served - known.keys() == set(), "add these routes to the authorization matrix"
    assert known.keys() - served == set(), "the matrix lists routes the app does not serve"


@pytest.mark.parametrize("route", PUBLIC_ROUTES, ids=route_id)
def test_service_routes_answer_without_a_token(api, world, route):
    call = PUBLIC_ROUTES[route]
    assert send(api, world, route, call).status_code == call.owner_status


@pytest.mark.parametrize("route", API_ROUTES, ids=route_id)
def test_without_a_valid_token_every_api_route_is_401(api, world, route):
    for authorization in NOT_AUTHENTICATED.values():
        headers = {"Authorization": authorization} if authorization is not None else {}
        assert_refused(
            api, world, route, API_ROUTES[route], 401, "not_authenticated", headers=headers
        )


@pytest.mark.parametrize("route", USER_ROUTES, ids=route_id)
def test_an_agent_token_on_a_user_route_is_403(api, world, route):
    assert_refused(api, world, route, USER_ROUTES[route], 403, "forbidden", world["agent"])


@pytest.mark.parametrize("route", AGENT_ROUTES, ids=route_id)
def test_a_user_token_on_an_agent_route_is_403(api, world, route):
    assert_refused(api, world, route, AGENT_ROUTES[route], 403, "forbidden", world["owner"])


@pytest.mark.parametrize("route", ROUTES_WITH_IDS, ids=route_id)
def test_another_users_id_is_not_found_and_the_owners_is(api, world, route):
    call = ROUTES_WITH_IDS[route]
    assert_refused(api, world, route, call, 404, "not_found", world["other"])
    assert send(api, world, route, call, world["owner"]).status_code == call.owner_status


@pytest.mark.parametrize(
    ("field_name", "owners_row", "detail"),
    [
        ("ea_version_id", "version_id", "ea_version_not_found"),
        ("broker_connection_id", "connection_id", "broker_connection_not_found"),
    ],
)
def test_deploying_another_users_version_or_connection_is_not_found(
    api, world, field_name, owners_row, detail
):
    other = world["other"]
    body = {
        "ea_version_id": api.compiled_version(other)["id"],
        "broker_connection_id": api.connection(other)["id"],
        **DEPLOYMENT,
        field_name: world["ids"][owners_row],
    }
    route = ("POST", "/api/v1/deployments")
    assert_refused(api, world, route, Call("deployments", body), 404, detail, other)


@pytest.mark.parametrize("path", ["eas", "broker-connections", "deployments"])
def test_lists_show_only_the_callers_own_rows(api, world, path):
    assert api.get(path, world["owner"]).get_json() != []
    assert api.get(path, world["other"]).get_json() == []
