"""The queue under real concurrency on Postgres: no job is ever handed out twice."""

import threading
import uuid
from collections import Counter

import pytest
from sqlalchemy import event, select

from deployments_api.models import EAVersion, Job
from deployments_api.services import catalog
from deployments_api.services.accounts import create_agent_token, create_user_token
from deployments_api.services.jobs import QueueSettings, claim_job
from deployments_api.unit_of_work import UnitOfWork

from .helpers import expire_lease, row

pytestmark = pytest.mark.postgres_only

CLAIMERS = 8
JOBS = 240


def new_uow(app) -> UnitOfWork:
    """A unit of work on its own session, hence its own pooled connection."""
    return UnitOfWork(app.extensions["deployments_db"].session_factory())


def test_concurrent_claimers_get_every_job_exactly_once(app, engine):
    user_id, _ = create_user_token(new_uow(app), "queue@example.com")
    ea = catalog.create_ea(new_uow(app), user_id, "Scalper")
    for n in range(JOBS):
        catalog.create_version(new_uow(app), user_id, ea.id, f"1.{n}", None)
    agent_ids = [create_agent_token(new_uow(app), f"agent-{n}")[0] for n in range(CLAIMERS)]
    settings = QueueSettings.from_config(app.config)
    claimed_by_agent: dict[uuid.UUID, list[uuid.UUID]] = {agent_id: [] for agent_id in agent_ids}
    failures = []
    start = threading.Barrier(CLAIMERS)

    def claim_until_empty(agent_id):
        uow = new_uow(app)
        try:
            start.wait()
            while (job := claim_job(uow, agent_id, None, settings)) is not None:
                claimed_by_agent[agent_id].append(job.id)
        except Exception as error:  # a thread's failure must fail the test, not vanish
            failures.append(error)
        finally:
            uow.session.close()

    threads = [threading.Thread(target=claim_until_empty, args=(a,)) for a in agent_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not [thread for thread in threads if thread.is_alive()]
    assert failures == []

    handed_out = Counter(job_id for jobs in claimed_by_agent.values() for job_id in jobs)
    assert [job_id for job_id, times in handed_out.items() if times > 1] == []
    assert len(handed_out) == JOBS
    with engine.connect() as connection:
        rows = connection.execute(select(Job.id, Job.status, Job.attempts, Job.claimed_by)).all()
    assert {job_id for job_id, *_ in rows} == set(handed_out)
    assert Counter((status, attempts) for _, status, attempts, _ in rows) == {("running", 1): JOBS}
    holder = {job_id: agent_id for agent_id, jobs in claimed_by_agent.items() for job_id in jobs}
    assert {job_id: claimed_by for job_id, _, _, claimed_by in rows} == holder


def test_a_late_result_after_the_job_was_reclaimed_is_lease_lost(api, engine):
    user = api.user()
    version = api.create_version(user)
    job_id = version["compile_job_id"]
    slow, fast = api.agent("slow"), api.agent("fast")
    first_claim = api.claim_job(job_id, slow)
    expire_lease(engine, job_id)
    second_claim = api.claim_job(job_id, fast)
    assert second_claim["attempt"] == first_claim["attempt"] + 1

    job_before, version_before = row(engine, Job, job_id), row(engine, EAVersion, version["id"])
    counts_before = api.row_counts()
    late = api.report(first_claim, "completed", slow, output_data={"artifact_storage_path": "a"})
    assert late.status_code == 409
    assert late.get_json()["detail"] == "lease_lost"
    assert row(engine, Job, job_id) == job_before
    assert row(engine, EAVersion, version["id"]) == version_before
    assert api.row_counts() == counts_before

    # The agent that holds the job now still finishes it.
    on_time = api.report(second_claim, "failed", fast, error_message="compiler crashed")
    assert on_time.status_code == 200
    assert api.get(f"ea-versions/{version['id']}", user).get_json()["status"] == "failed"


def test_the_claim_is_one_update_using_for_update_skip_locked(api, engine):
    version = api.create_version(api.user())
    agent = api.agent()
    statements = []

    def capture(_conn, _cursor, statement, _parameters, _context, _executemany):
        statements.append(" ".join(statement.split()).upper())

    event.listen(engine, "before_cursor_execute", capture)
    try:
        claimed = api.claim_job(version["compile_job_id"], agent)
    finally:
        event.remove(engine, "before_cursor_execute", capture)

    assert claimed["attempt"] == 1
    writes_to_jobs = [s for s in statements if s.startswith(("UPDATE JOBS", "WITH"))]
    assert len(writes_to_jobs) == 1, statements
    [claim] = writes_to_jobs
    assert "UPDATE JOBS SET" in claim
    assert "FOR UPDATE SKIP LOCKED" in claim
    assert "RETURNING" in claim
    assert "LIMIT" in claim
