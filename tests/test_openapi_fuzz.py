"""Fuzz every operation of the app's own /openapi.json with schemathesis, all checks on.

Runs in-process over WSGI with a real user token (user routes) and a real agent token
(agent routes). Seeded rows let generated ids hit real resources, so happy paths, the
state machine's refusals and the lease rules are exercised, not only 404s.
"""

import hashlib
import json
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from deployments_api import create_app
from deployments_api.services.accounts import create_user_token, hash_token
from deployments_api.unit_of_work import UnitOfWork

EXAMPLES_PER_OPERATION = 100
AGENT_PREFIX = "/api/v1/agent/"
IDEMPOTENCY_HEADER = "Idempotency-Key"

# schemathesis' fixture-based loader relies on pytest internals that pytest 9 removed, so
# the document is read at import from an app built from the same code (building it
# touches no database); every request goes to the test's own `app`, and
# test_the_fuzzed_document_is_the_one_the_app_serves checks that app serves this document.
DOCUMENT_APP = create_app({"DATABASE_URL": "sqlite://"})
schema = schemathesis.openapi.from_wsgi("/openapi.json", DOCUMENT_APP)
# Postgres cannot store NUL, so the service refuses it in every string with 422 (see
# test_hostile_input.py). The document states it with a pattern on each text field, but
# OpenAPI 3.0 has no way to say it of free-form objects' keys (`output_data`), so
# schemathesis' own switch for such APIs keeps NUL out of the strings it calls valid.
schema.config.generation.update(allow_x00=False)


# Tokens exist before the database does: schemathesis builds its coverage cases (and
# authenticates them) while collecting, so the seeding fixture registers these very
# tokens (as sha-256 hashes, like any other) for the user and agent it creates.
USER_TOKEN = secrets.token_urlsafe(32)
AGENT_TOKEN = secrets.token_urlsafe(32)


@schema.auth(refresh_interval=None)
class SeededTokens:
    """The agent token on agent routes, the user token elsewhere.

    As an auth provider (not a header the test forces) it stays out of the cases where
    schemathesis drops or breaks the Authorization header on purpose.
    """

    def get(self, case, context):
        return AGENT_TOKEN if case.path.startswith(AGENT_PREFIX) else USER_TOKEN

    def set(self, case, token, context):
        case.headers["Authorization"] = f"Bearer {token}"


@dataclass
class Seeded:
    """Ids of real rows, by the path parameter or body field that names them."""

    ids: dict[str, list[str]]
    deployment_status: dict[str, str]
    compile_job_ids: set[str]


def _register_tokens(app, api) -> str:
    """Give USER_TOKEN to a new user and AGENT_TOKEN to the agent that runs the seeded
    jobs (so its repeated reports replay); returns another token of that user."""
    uow = UnitOfWork(app.extensions["deployments_db"].session_factory())
    user_id, user_token = create_user_token(uow, "fuzz@example.com")
    with uow:
        agent_id = uow.tokens.find_by_hash(hash_token(api.default_agent)).agent_id
        uow.tokens.add(hash_token(USER_TOKEN), user_id=user_id)
        uow.tokens.add(hash_token(AGENT_TOKEN), agent_id=agent_id)
    return user_token


@pytest.fixture
def seeded(app, api) -> Seeded:
    user = _register_tokens(app, api)
    deployments = [api.deployment(user, status) for status in ("running", "stopped", "error")]
    held = api.create_version(user, version="held")
    api.claim_job(held["compile_job_id"])  # running, its lease held by the fuzzing agent
    pending = api.create_version(user, held["ea_id"], "pending")  # left for a claim
    jobs = [held["compile_job_id"], pending["compile_job_id"]]
    for deployment in deployments:
        logs = api.get(f"deployments/{deployment['id']}/logs", user).get_json()
        jobs.extend(entry["job_id"] for entry in logs)
    compiled_version = deployments[0]["ea_version_id"]
    return Seeded(
        ids={
            "ea_id": [held["ea_id"]],
            "version_id": [pending["id"], compiled_version],
            "deployment_id": [d["id"] for d in deployments],
            "job_id": jobs,
            # body fields of POST /deployments: a version that is not compiled is a
            # rule about another row (422 ea_not_compiled), so only a compiled one
            "ea_version_id": [compiled_version],
            "broker_connection_id": [d["broker_connection_id"] for d in deployments],
        },
        deployment_status={d["id"]: d["status"] for d in deployments},
        compile_job_ids=set(jobs[:2]),
    )


def _is_uuid(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _seeded_id(name: str, value, case, seeded: Seeded):
    """A real row's id for about half of the generated (valid) ids, else the value as is.

    The choice depends only on the generated id, so runs stay deterministic. For /wait
    the deployment is one already in the asked status (or in `error`), so the long poll
    answers at once instead of sleeping through its timeout.
    """
    candidates = seeded.ids.get(name)
    if not candidates or not _is_uuid(value) or int(value[0], 16) < 8:
        return value
    if case.path.endswith("/wait"):
        wanted = case.query.get("status")
        candidates = [
            i for i, status in seeded.deployment_status.items() if status in (wanted, "error")
        ]
    return candidates[int(value[1], 16) % len(candidates)]


def _point_at_seeded_rows(case, seeded: Seeded) -> None:
    for name, value in case.path_parameters.items():
        case.path_parameters[name] = _seeded_id(name, value, case, seeded)
    if isinstance(case.body, dict):
        for name, value in case.body.items():
            case.body[name] = _seeded_id(name, value, case, seeded)


def _keep_idempotency_keys_apart(case) -> None:
    """Give each distinct (method, path, body) its own key; a repeat still reuses it.

    The generator draws few distinct keys, so two different bodies often share one and
    rightly get `422 idempotency_key_reused` (a rule about an earlier request, not about
    this one's shape). A digest of the request keeps keys apart and still printable.
    """
    key = case.headers.get(IDEMPOTENCY_HEADER)
    if not isinstance(key, str) or not 1 <= len(key) <= 255 or not key.isprintable():
        return  # an invalid key must stay as generated: it is the negative case under test
    request = json.dumps([case.method, case.formatted_path, case.body], sort_keys=True, default=str)
    digest = hashlib.sha256(request.encode()).hexdigest()[:16]
    case.headers[IDEMPOTENCY_HEADER] = f"{key[:238]}-{digest}"


def _complete_compile_results(case, seeded: Seeded) -> None:
    """A completed compile result needs `output_data.artifact_storage_path` (contract: else
    422), a rule on the job's type that the body's schema cannot state; supply it."""
    body = case.body
    if (
        case.path.endswith("/result")
        and case.path_parameters.get("job_id") in seeded.compile_job_ids
        and isinstance(body, dict)
        and body.get("status") == "completed"
        and isinstance(body.get("output_data") or {}, dict)
    ):
        body["output_data"] = {**(body.get("output_data") or {}), "artifact_storage_path": "a.ex5"}


REQUESTS_PER_OPERATION: Counter[str] = Counter()


def _takes_no_input(operation) -> bool:
    """No parameters, no body and no credentials: nothing for hypothesis to vary."""
    definition = operation.definition.raw
    return not (
        definition.get("parameters") or definition.get("requestBody") or definition.get("security")
    )


@pytest.fixture(scope="module")
def fuzz_figures(request):
    """After the module: print how much was fuzzed, and hold every operation that takes
    input to EXAMPLES_PER_OPERATION requests at least."""
    yield REQUESTS_PER_OPERATION
    if not REQUESTS_PER_OPERATION:
        return
    plugins = request.config.pluginmanager
    total = sum(REQUESTS_PER_OPERATION.values())
    with plugins.get_plugin("capturemanager").global_and_fixture_disabled():
        plugins.get_plugin("terminalreporter").write_line(
            f"\nfuzzed {len(REQUESTS_PER_OPERATION)} operations with {total} requests "
            f"(fewest {min(REQUESTS_PER_OPERATION.values())}, most "
            f"{max(REQUESTS_PER_OPERATION.values())})"
        )
    operations = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    short = {
        label: count
        for label, count in REQUESTS_PER_OPERATION.items()
        if count < EXAMPLES_PER_OPERATION and not _takes_no_input(operations[label])
    }
    assert not short, f"operations fuzzed fewer than {EXAMPLES_PER_OPERATION} times: {short}"


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_every_operation_conforms_to_its_document(case, app, seeded, fuzz_figures):
    fuzz_figures[case.operation.label] += 1
    _point_at_seeded_rows(case, seeded)
    _keep_idempotency_keys_apart(case)
    _complete_compile_results(case, seeded)
    case.call_and_validate(app=app)


def test_the_fuzzed_document_is_the_one_the_app_serves(client):
    assert client.get("/openapi.json").get_json() == schema.raw_schema
