"""The agent job queue: claim, heartbeat, result, lease expiry and the reaper."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from deployments_api.models import Agent, EAVersion, Job
from deployments_api.services.jobs import QueueSettings, reap
from deployments_api.types import utcnow
from deployments_api.unit_of_work import UnitOfWork

from .helpers import assert_error

ARTIFACT = {"artifact_storage_path": "artifacts/scalper-1.0.ex5"}
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def row(engine, model, row_id) -> dict:
    with engine.connect() as connection:
        query = select(model.__table__).where(model.id == uuid.UUID(str(row_id)))
        return dict(connection.execute(query).mappings().one())


def set_job(engine, job_id, **values) -> None:
    with engine.begin() as connection:
        connection.execute(update(Job).where(Job.id == uuid.UUID(str(job_id))).values(**values))


def expire_lease(engine, job_id) -> None:
    set_job(engine, job_id, lease_expires_at=utcnow() - timedelta(seconds=1))


def compile_jobs(api, user, count) -> list[dict]:
    """`count` new versions of one EA, each with its pending compile job, oldest first."""
    ea_id = api.create_ea(user)["id"]
    return [api.create_version(user, ea_id, f"1.{n}") for n in range(count)]


def heartbeat(api, job, agent=None, attempt=None):
    body = {"attempt": job["attempt"] if attempt is None else attempt}
    return api.post(f"agent/jobs/{job['id']}/heartbeat", agent or api.default_agent, body)


def agents_by_name(api, user) -> dict[str, dict]:
    response = api.get("agents", user)
    assert response.status_code == 200
    return {agent["name"]: agent for agent in response.get_json()}


# -- claim ----------------------------------------------------------------------------


def test_claim_hands_out_the_oldest_pending_job_first(api, engine):
    versions = compile_jobs(api, api.user(), 4)
    # Make creation order and age disagree: the last one created is the oldest.
    for age, version in enumerate(versions):
        set_job(engine, version["compile_job_id"], created_at=utcnow() - timedelta(minutes=age))
    for version in reversed(versions):
        before = utcnow()
        response = api.claim()
        assert response.status_code == 200
        claimed = response.get_json()
        assert set(claimed) >= {"id", "job_type", "input_data", "attempt", "lease_expires_at"}
        assert claimed["id"] == version["compile_job_id"]
        assert claimed["job_type"] == "compile"
        assert claimed["attempt"] == 1
        assert claimed["input_data"] == {
            "ea_version_id": version["id"],
            "source_storage_path": None,
        }
        lease = parse_time(claimed["lease_expires_at"])
        assert before + timedelta(seconds=60) <= lease <= utcnow() + timedelta(seconds=60)
    assert api.claim().status_code == 204


def test_claim_answers_204_when_nothing_is_pending(api):
    assert api.claim().status_code == 204
    [version] = compile_jobs(api, api.user(), 1)
    api.finish_job(version["compile_job_id"], output_data=ARTIFACT)
    [running] = compile_jobs(api, api.user(), 1)
    api.claim_job(running["compile_job_id"])
    before = api.row_counts()
    response = api.claim()
    assert response.status_code == 204
    assert response.get_data() == b""
    assert api.row_counts() == before


def test_claim_takes_only_the_job_types_asked_for(api, engine):
    user = api.user()
    compiled = api.compiled_version(user)
    [pending_compile] = compile_jobs(api, user, 1)
    assert api.claim(job_types=["deploy"]).status_code == 204
    deploy_job_id = api.deploy(user, version_id=compiled["id"]).get_json()["job_id"]

    # The compile job is older, but only deploy jobs were asked for.
    claimed = api.claim(job_types=["deploy", "run"])
    assert claimed.status_code == 200
    assert (claimed.get_json()["id"], claimed.get_json()["job_type"]) == (deploy_job_id, "deploy")
    assert row(engine, Job, pending_compile["compile_job_id"])["status"] == "pending"
    assert api.claim(job_types=["compile"]).get_json()["id"] == pending_compile["compile_job_id"]


@pytest.mark.parametrize("job_types", [["bake"], [], "compile", [1]])
def test_claim_refuses_unknown_job_types(api, engine, job_types):
    [version] = compile_jobs(api, api.user(), 1)
    agent = api.agent()
    before = api.row_counts()
    error = assert_error(
        api.post("agent/jobs/claim", agent, {"job_types": job_types}), 422, "validation_error"
    )
    assert any(field.startswith("job_types") for field in error["errors"])
    assert api.row_counts() == before
    assert row(engine, Job, version["compile_job_id"])["status"] == "pending"


def test_a_claimed_job_is_running_and_started(api):
    user = api.user()
    [version] = compile_jobs(api, user, 1)
    before = utcnow()
    api.claim_job(version["compile_job_id"])
    job = api.get(f"jobs/{version['compile_job_id']}", user).get_json()
    assert (job["status"], job["attempts"], job["completed_at"]) == ("running", 1, None)
    assert before <= parse_time(job["started_at"]) <= utcnow()


# -- heartbeat ------------------------------------------------------------------------


@pytest.mark.parametrize("send_attempt", [True, False], ids=["with attempt", "attempt omitted"])
def test_heartbeat_renews_the_lease(app, api, engine, send_attempt):
    [version] = compile_jobs(api, api.user(), 1)
    claimed = api.claim_job(version["compile_job_id"])
    app.config["JOB_LEASE_SECONDS"] = 120
    before = utcnow()
    body = {"attempt": claimed["attempt"]} if send_attempt else {}
    response = api.post(f"agent/jobs/{claimed['id']}/heartbeat", api.default_agent, body)
    assert response.status_code == 200
    renewed = parse_time(response.get_json()["lease_expires_at"])
    assert renewed > parse_time(claimed["lease_expires_at"])
    assert renewed >= before + timedelta(seconds=120)
    assert row(engine, Job, claimed["id"])["lease_expires_at"] == renewed


# -- lease_lost -----------------------------------------------------------------------


def held_by_another_agent(api, engine, claimed):
    return api.agent(), claimed["attempt"]


def with_a_wrong_attempt(api, engine, claimed):
    return api.default_agent, claimed["attempt"] + 1


def after_the_lease_passed(api, engine, claimed):
    expire_lease(engine, claimed["id"])
    # Nobody applied the expiry yet: the job still looks running, and the lease is lost anyway.
    assert row(engine, Job, claimed["id"])["status"] == "running"
    return api.default_agent, claimed["attempt"]


def once_the_job_finished(api, engine, claimed):
    assert api.report(claimed, "completed", output_data=ARTIFACT).status_code == 200
    return api.default_agent, claimed["attempt"]


LOST_LEASES = [held_by_another_agent, with_a_wrong_attempt, after_the_lease_passed]


def send_heartbeat(api, job_id, agent, attempt):
    return api.post(f"agent/jobs/{job_id}/heartbeat", agent, {"attempt": attempt})


def send_failure(api, job_id, agent, attempt):
    body = {"status": "failed", "error_message": "terminal crashed", "attempt": attempt}
    return api.post(f"agent/jobs/{job_id}/result", agent, body)


@pytest.mark.parametrize("send", [send_heartbeat, send_failure])
@pytest.mark.parametrize("lose_lease", [*LOST_LEASES, once_the_job_finished])
def test_an_agent_without_the_lease_gets_lease_lost(api, engine, send, lose_lease):
    [version] = compile_jobs(api, api.user(), 1)
    claimed = api.claim_job(version["compile_job_id"])
    agent, attempt = lose_lease(api, engine, claimed)
    job_before, version_before = (
        row(engine, Job, claimed["id"]),
        row(engine, EAVersion, version["id"]),
    )
    counts_before = api.row_counts()
    assert_error(send(api, claimed["id"], agent, attempt), 409, "lease_lost")
    assert row(engine, Job, claimed["id"]) == job_before
    assert row(engine, EAVersion, version["id"]) == version_before
    assert api.row_counts() == counts_before


@pytest.mark.parametrize("send", [send_heartbeat, send_failure])
def test_reports_on_an_unknown_job_are_not_found(api, send):
    agent = api.agent()
    before = api.row_counts()
    assert_error(send(api, str(uuid.uuid4()), agent, 1), 404, "not_found")
    assert api.row_counts() == before


# -- result ---------------------------------------------------------------------------


COMPILER_ERROR = "scalper.mq5(12): ';' expected"


@pytest.mark.parametrize(
    ("status", "fields", "version_status", "artifact", "error_message"),
    [
        (
            "completed",
            {"output_data": ARTIFACT},
            "compiled",
            ARTIFACT["artifact_storage_path"],
            None,
        ),
        ("failed", {"error_message": COMPILER_ERROR}, "failed", None, COMPILER_ERROR),
    ],
)
def test_a_compile_result_decides_the_version(
    api, status, fields, version_status, artifact, error_message
):
    user = api.user()
    [version] = compile_jobs(api, user, 1)
    claimed = api.claim_job(version["compile_job_id"])
    before = utcnow()
    response = api.report(claimed, status, **fields)
    assert response.status_code == 200
    job = response.get_json()
    assert (job["id"], job["status"], job["error_message"]) == (
        claimed["id"],
        status,
        error_message,
    )
    assert job["output_data"] == fields.get("output_data")
    assert before <= parse_time(job["completed_at"]) <= utcnow()
    shown = api.get(f"ea-versions/{version['id']}", user).get_json()
    assert (shown["status"], shown["artifact_storage_path"]) == (version_status, artifact)
    assert shown["error_message"] == error_message


@pytest.mark.parametrize("output_data", [None, {}, {"artifact_storage_path": ""}, {"log": "built"}])
def test_a_completed_compile_needs_an_artifact_path(api, engine, output_data):
    [version] = compile_jobs(api, api.user(), 1)
    claimed = api.claim_job(version["compile_job_id"])
    job_before, version_before = (
        row(engine, Job, claimed["id"]),
        row(engine, EAVersion, version["id"]),
    )
    fields = {} if output_data is None else {"output_data": output_data}
    error = assert_error(api.report(claimed, "completed", **fields), 422, "validation_error")
    assert "output_data.artifact_storage_path" in error["errors"]
    assert row(engine, Job, claimed["id"]) == job_before
    assert row(engine, EAVersion, version["id"]) == version_before
    # The agent still holds the job and can send a proper result.
    assert api.report(claimed, "completed", output_data=ARTIFACT).status_code == 200


@pytest.mark.parametrize(
    ("status", "fields"),
    [("completed", {"output_data": ARTIFACT}), ("failed", {"error_message": "no compiler"})],
)
def test_the_same_report_sent_again_answers_200_and_changes_nothing(api, engine, status, fields):
    [version] = compile_jobs(api, api.user(), 1)
    claimed = api.claim_job(version["compile_job_id"])
    first = api.report(claimed, status, **fields)
    assert first.status_code == 200
    job_before, version_before = (
        row(engine, Job, claimed["id"]),
        row(engine, EAVersion, version["id"]),
    )
    counts_before = api.row_counts()
    again = api.report(claimed, status, **fields)
    assert again.status_code == 200
    assert again.get_json() == first.get_json()
    assert row(engine, Job, claimed["id"]) == job_before
    assert row(engine, EAVersion, version["id"]) == version_before
    assert api.row_counts() == counts_before


@pytest.mark.parametrize(
    ("status", "fields", "by_another_agent"),
    [
        ("failed", {"error_message": "changed my mind"}, False),
        ("completed", {"output_data": {"artifact_storage_path": "artifacts/other.ex5"}}, False),
        ("completed", {"output_data": ARTIFACT, "error_message": "extra"}, False),
        ("completed", {"output_data": ARTIFACT}, True),
    ],
)
def test_any_other_report_on_a_finished_job_is_lease_lost(
    api, engine, status, fields, by_another_agent
):
    [version] = compile_jobs(api, api.user(), 1)
    claimed = api.claim_job(version["compile_job_id"])
    assert api.report(claimed, "completed", output_data=ARTIFACT).status_code == 200
    job_before, version_before = (
        row(engine, Job, claimed["id"]),
        row(engine, EAVersion, version["id"]),
    )
    agent = api.agent() if by_another_agent else None
    assert_error(api.report(claimed, status, agent, **fields), 409, "lease_lost")
    assert row(engine, Job, claimed["id"]) == job_before
    assert row(engine, EAVersion, version["id"]) == version_before


# -- lease expiry ---------------------------------------------------------------------


def test_an_expired_lease_sends_the_job_back_to_pending_on_the_next_claim(api, engine):
    user = api.user()
    [version] = compile_jobs(api, user, 1)
    job_id = version["compile_job_id"]
    api.claim_job(job_id)
    expire_lease(engine, job_id)
    other = api.agent()
    # A claim for other job types finds nothing, but still applies the expiry.
    assert api.claim(other, job_types=["deploy"]).status_code == 204
    job = row(engine, Job, job_id)
    assert (job["status"], job["attempts"], job["claimed_by"]) == ("pending", 1, None)
    assert job["lease_expires_at"] is None

    reclaimed = api.claim_job(job_id, other)
    assert reclaimed["attempt"] == 2
    assert api.get(f"jobs/{job_id}", user).get_json()["attempts"] == 2
    assert api.report(reclaimed, "completed", other, output_data=ARTIFACT).status_code == 200


def test_a_job_whose_lease_expires_max_attempts_times_fails(app, api, engine):
    user = api.user()
    [version] = compile_jobs(api, user, 1)
    job_id = version["compile_job_id"]
    for attempt in range(1, app.config["JOB_MAX_ATTEMPTS"] + 1):
        assert api.claim_job(job_id)["attempt"] == attempt
        expire_lease(engine, job_id)
    assert api.claim().status_code == 204
    job = api.get(f"jobs/{job_id}", user).get_json()
    assert (job["status"], job["error_message"], job["attempts"]) == (
        "failed",
        "lease_expired",
        app.config["JOB_MAX_ATTEMPTS"],
    )
    assert job["completed_at"] is not None
    shown = api.get(f"ea-versions/{version['id']}", user).get_json()
    assert (shown["status"], shown["error_message"]) == ("failed", "lease_expired")


def test_reap_applies_lease_expiry_and_the_pending_timeout(app, api, engine):
    user = api.user()
    expired, out_of_attempts, forgotten, fresh = compile_jobs(api, user, 4)
    for version in (expired, out_of_attempts):
        api.claim_job(version["compile_job_id"])
    for version in (expired, out_of_attempts):
        expire_lease(engine, version["compile_job_id"])
    set_job(engine, out_of_attempts["compile_job_id"], attempts=app.config["JOB_MAX_ATTEMPTS"])
    timeout = app.config["JOB_PENDING_TIMEOUT"]
    set_job(
        engine,
        forgotten["compile_job_id"],
        pending_since=utcnow() - timedelta(seconds=timeout + 1),
    )

    uow = UnitOfWork(app.extensions["deployments_db"].session_factory())
    counts = reap(uow, QueueSettings.from_config(app.config))
    assert (counts["leases_expired"], counts["unclaimed_failed"]) == (2, 1)

    def job_and_version(version):
        job = api.get(f"jobs/{version['compile_job_id']}", user).get_json()
        shown = api.get(f"ea-versions/{version['id']}", user).get_json()
        return job["status"], job["error_message"], shown["status"], shown["error_message"]

    assert job_and_version(expired) == ("pending", None, "pending", None)
    assert job_and_version(out_of_attempts) == (
        "failed",
        "lease_expired",
        "failed",
        "lease_expired",
    )
    assert job_and_version(forgotten) == ("failed", "no_agent", "failed", "no_agent")
    assert job_and_version(fresh) == ("pending", None, "pending", None)
    # Nothing left to do: a second run finds nothing.
    again = reap(uow, QueueSettings.from_config(app.config))
    assert (again["leases_expired"], again["unclaimed_failed"]) == (0, 0)


def test_a_job_sent_back_by_expiry_times_out_from_then(app, api, engine):
    user = api.user()
    [version] = compile_jobs(api, user, 1)
    job_id = version["compile_job_id"]
    api.claim_job(job_id)
    expire_lease(engine, job_id)
    app.config["JOB_PENDING_TIMEOUT"] = 0
    uow = UnitOfWork(app.extensions["deployments_db"].session_factory())
    counts = reap(uow, QueueSettings.from_config(app.config))
    assert (counts["leases_expired"], counts["unclaimed_failed"]) == (1, 1)
    job = api.get(f"jobs/{job_id}", user).get_json()
    assert (job["status"], job["error_message"]) == ("failed", "no_agent")


# -- agents ---------------------------------------------------------------------------


def test_an_agents_last_seen_at_moves_on_every_request_even_a_refused_one(api, engine):
    user = api.user()
    agent = api.agent("watched")
    assert agents_by_name(api, user)["watched"]["last_seen_at"] is None
    [version] = compile_jobs(api, user, 1)
    held = {}

    def claim():
        response = api.claim(agent)
        held.update(response.get_json())
        return response

    steps = [
        (claim, 200),
        (lambda: heartbeat(api, held, agent), 200),
        (lambda: heartbeat(api, held, agent, attempt=held["attempt"] + 1), 409),
        (lambda: api.report(held, "completed", agent, output_data=ARTIFACT), 200),
        (lambda: api.report(held, "failed", agent, error_message="late"), 409),
        (lambda: api.claim(agent), 204),
    ]
    for step, expected_status in steps:
        with engine.begin() as connection:
            connection.execute(update(Agent).values(last_seen_at=LONG_AGO))
        before = utcnow()
        assert step().status_code == expected_status
        seen = agents_by_name(api, user)["watched"]["last_seen_at"]
        assert before <= parse_time(seen) <= utcnow()
    assert held["id"] == version["compile_job_id"]


def test_agents_list_shows_jobs_in_flight(api):
    user = api.user()
    busy, other = api.agent("busy"), api.agent("other")
    api.agent("idle")  # never asks for work
    first, second, third = (v["compile_job_id"] for v in compile_jobs(api, user, 3))
    claimed_first = api.claim_job(first, busy)
    api.claim_job(second, busy)
    api.claim_job(third, other)

    def in_flight():
        return {name: agent["jobs_in_flight"] for name, agent in agents_by_name(api, user).items()}

    assert in_flight() == {"busy": 2, "idle": 0, "other": 1}
    assert api.report(claimed_first, "completed", busy, output_data=ARTIFACT).status_code == 200
    assert in_flight() == {"busy": 1, "idle": 0, "other": 1}
    agent = agents_by_name(api, user)["busy"]
    assert str(uuid.UUID(agent["id"])) == agent["id"]
    assert agent["last_seen_at"].endswith(("+00:00", "Z"))


def test_an_agent_without_the_lease_gets_lease_lost_before_any_body_check(api, engine):
    [version] = compile_jobs(api, api.user(), 1)
    claimed = api.claim_job(version["compile_job_id"])
    job_before = row(engine, Job, claimed["id"])

    intruder = api.report(claimed, "completed", agent_token=api.agent())  # no artifact path

    assert_error(intruder, 409, "lease_lost")
    assert row(engine, Job, claimed["id"]) == job_before
