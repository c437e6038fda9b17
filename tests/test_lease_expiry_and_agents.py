"""Lease expiry (on claim and by the reaper), the pending timeout, and the agents list."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from deployments_api.models import Agent, Job
from deployments_api.services.jobs import QueueSettings, reap
from deployments_api.types import utcnow
from deployments_api.unit_of_work import UnitOfWork

from .helpers import (
    ARTIFACT,
    compile_jobs,
    expire_lease,
    heartbeat,
    parse_time,
    row,
    set_job,
)

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def agents_by_name(api, user) -> dict[str, dict]:
    response = api.get("agents", user)
    assert response.status_code == 200
    return {agent["name"]: agent for agent in response.get_json()}


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
