"""Crashed agents: a soak of deployment jobs worked by 16 unreliable agents over gunicorn.

CI runs 2,000 jobs. The long run is the same test with more jobs:
    SOAK_JOBS=10000 TEST_DB=postgres TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \
        .venv/bin/python -m pytest tests/soak -s
"""

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import select, update

from deployments_api.models import DeploymentEvent, Job
from deployments_api.types import utcnow

from ..servers import gunicorn_server
from .driver import SoakRun, SoakSettings
from .harness import drain_output, server_trouble
from .invariants import FINISHED, assert_database_consistent, is_job_finish, is_requeue

pytestmark = pytest.mark.postgres_only

SETTINGS = SoakSettings.from_env()
WORKERS = 4


@pytest.fixture
def soak(api, database_url):
    """A user, a compiled version, broker connections and agents, and gunicorn serving
    the app with short leases; yields a soak ready to run."""
    user = api.user()
    seed = {
        "version_id": api.compiled_version(user)["id"],
        "connection_ids": [
            api.connection(user, name=f"soak-{i}")["id"] for i in range(SETTINGS.broker_connections)
        ],
    }
    agents = [api.agent(f"soak-agent-{i:02}") for i in range(SETTINGS.agents)]
    db = api.app.extensions["deployments_db"]
    env = SETTINGS.gunicorn_env()
    with gunicorn_server(database_url, workers=WORKERS, threads=4, env=env) as (url, process):
        output = drain_output(process)
        yield SoakRun(url, db.engine, db.session_factory, user, agents, seed, SETTINGS)
        assert not server_trouble(output, WORKERS), "\n".join(output)


def load_jobs_and_events(engine) -> tuple[dict, dict]:
    """Deployment jobs by id (as str), and each job's events."""
    with engine.connect() as connection:
        jobs = connection.execute(select(Job.__table__).where(Job.deployment_id.is_not(None)))
        jobs = {str(row["id"]): dict(row) for row in jobs.mappings()}
        events = connection.execute(
            select(DeploymentEvent.__table__).where(DeploymentEvent.job_id.is_not(None))
        )
        events_by_job = defaultdict(list)
        for row in events.mappings():
            events_by_job[str(row["job_id"])].append(dict(row))
    return jobs, events_by_job


def check_user_answers(run: SoakRun) -> None:
    wanted = {"POST": {201, 202}, "GET": {200}}
    wrong = [a.describe() for a in run.user_answers if a.status not in wanted[a.method]]
    assert wrong == []
    created = sum(1 for a in run.user_answers if a.status == 201)
    moved = sum(1 for a in run.user_answers if a.status == 202)
    assert (created, moved) == (SETTINGS.deployments, SETTINGS.moves)


def check_claims(run: SoakRun, jobs: dict) -> int:
    """Every claim was recorded, and no job was ever held by two agents at once.

    Returns the most agents that held one job at the same moment (must be 1).
    """
    assert [a.describe() for a in run.unexpected] == []
    claims_by_job = defaultdict(list)
    for claim in run.claims:
        claims_by_job[claim.job_id].append(claim)
    assert set(claims_by_job) == set(jobs), "a job nobody claimed, or a claim of an unknown job"
    most_holders = 0
    for job_id, claims in claims_by_job.items():
        claims.sort(key=lambda c: c.attempt)
        job = jobs[job_id]
        assert [c.attempt for c in claims] == list(range(1, job["attempts"] + 1)), job_id
        assert claims[-1].claimed_at == job["started_at"], job_id
        for held, taken_over in pairwise(claims):
            # The next claim may only start once the previous holder's lease has run out.
            assert taken_over.claimed_at >= held.lease_expires_at, (job_id, held, taken_over)
        most_holders = max(most_holders, max_overlap(claims))
    return most_holders


def max_overlap(claims) -> int:
    """The most claims of one job whose leases were live at the same instant."""
    moments = sorted(
        [(c.claimed_at, 1) for c in claims] + [(c.lease_expires_at, -1) for c in claims],
        key=lambda moment: (moment[0], moment[1]),
    )
    live = most = 0
    for _, change in moments:
        live += change
        most = max(most, live)
    return most


def check_reports(run: SoakRun, jobs: dict) -> None:
    """Each job was finished by at most one report, sent in time, and says what it said;
    every refused report came after its lease had passed; a repeat changed nothing."""
    finished_by = defaultdict(list)
    for claim in run.claims:
        if claim.accepted:
            finished_by[claim.job_id].append(claim)
        for answer in claim.answers:
            assert answer.status in (200, 409), answer.describe()
            if answer.status == 409:
                assert answer.detail == "lease_lost", answer.describe()
                assert answer.received_at >= claim.lease_expires_at, (claim, answer)
        if claim.fate == "late":
            assert [a.status for a in claim.answers] in ([], [409]), claim
        if claim.fate == "double":
            first, again = claim.answers
            assert (again.status, again.body) == (first.status, first.body), claim
    for job_id, job in jobs.items():
        assert job["status"] in FINISHED, job
        winners = finished_by.get(job_id, [])
        assert len(winners) <= 1, f"job {job_id} was finished by {len(winners)} reports"
        if not winners:
            # No agent finished it: the last lease ran out on the last attempt.
            assert (job["status"], job["error_message"]) == ("failed", "lease_expired"), job
            assert job["attempts"] == SETTINGS.max_attempts, job
            continue
        (winner,) = winners
        assert winner.attempt == job["attempts"], job
        assert job["completed_at"] <= winner.lease_expires_at, (job, winner)
        assert job["status"] == winner.report["status"], job
        assert job["output_data"] == winner.report.get("output_data"), job
        assert job["error_message"] == winner.report.get("error_message"), job


def check_lease_expiry(run: SoakRun, jobs: dict, events_by_job: dict) -> None:
    """Each claim that did not finish its job came back through lease expiry exactly once:
    requeued for the next attempt, or failed for good on the last one."""
    lost = Counter(c.job_id for c in run.claims if not c.accepted)
    for job_id, job in jobs.items():
        events = events_by_job[job_id]
        requeues = sum(1 for e in events if is_requeue(e))
        finishes = [e for e in events if is_job_finish(e)]
        assert len(finishes) == 1, f"job {job_id} finished {len(finishes)} times"
        expired_for_good = finishes[0]["kind"] == "lease_expired"
        assert requeues + expired_for_good == lost[job_id], (job_id, requeues, lost[job_id])
        assert requeues == job["attempts"] - 1, job_id


def figures(run: SoakRun, jobs: dict, events_by_job: dict, most_holders: int, seconds) -> dict:
    fates = Counter(c.fate for c in run.claims)
    events = [e for job_events in events_by_job.values() for e in job_events]
    return {
        "jobs": len(jobs),
        "deployments": SETTINGS.deployments,
        "agents": SETTINGS.agents,
        "claims": len(run.claims),
        "agents_killed": fates["die"],
        "late_reports": fates["late"],
        "double_reports": fates["double"],
        "lease_expiries": sum(1 for e in events if e["kind"] == "lease_expired"),
        "failed_for_good_on_expiry": Counter(j["error_message"] for j in jobs.values())[
            "lease_expired"
        ],
        "jobs_completed": Counter(j["status"] for j in jobs.values())["completed"],
        "jobs_failed": Counter(j["status"] for j in jobs.values())["failed"],
        "most_agents_holding_one_job": most_holders,
        "expiries_applied_by_reap": run.reaped["leases_expired"],
        "seconds": seconds,
    }


@pytest.mark.slow
def test_every_job_finishes_exactly_once_whatever_the_agents_do(soak, engine):
    run, timing = soak, soak.run()
    jobs, events_by_job = load_jobs_and_events(engine)
    assert len(jobs) == SETTINGS.jobs

    check_user_answers(run)
    most_holders = check_claims(run, jobs)
    assert most_holders == 1
    check_reports(run, jobs)
    check_lease_expiry(run, jobs, events_by_job)
    # Statuses match their jobs' results, histories are legal, nothing half-applied.
    assert_database_consistent(engine)

    # The soak must really have exercised every kind of misbehaviour.
    fates = Counter(c.fate for c in run.claims)
    assert min(fates[fate] for fate in ("die", "double", "late")) > 0, fates
    print("soak figures:", figures(run, jobs, events_by_job, most_holders, timing["seconds"]))


def test_a_requeued_job_is_not_handed_out_before_its_requeue(api, engine):
    """A claim whose clock reads earlier than the expiry that sent a job back (another
    transaction committed it meanwhile) leaves that job for the next claim, so a new
    lease never starts before the previous holder's lease ended."""
    user = api.user()
    job_id = api.deploy(user).get_json()["job_id"]
    api.claim_job(job_id)
    requeue = update(Job).where(Job.id == job_id)
    with engine.begin() as connection:
        # As the expiry leaves it, but stamped after any clock a claim can read now.
        connection.execute(
            requeue.values(status="pending", claimed_by=None, lease_expires_at=None,
                           pending_since=utcnow() + timedelta(hours=1))
        )  # fmt: skip
    before = api.row_counts()
    assert api.claim().status_code == 204
    assert api.row_counts() == before

    back_at = utcnow() - timedelta(seconds=1)
    with engine.begin() as connection:
        connection.execute(requeue.values(pending_since=back_at))
    claimed = api.claim_job(job_id)
    assert claimed["attempt"] == 2
    assert datetime.fromisoformat(claimed["lease_expires_at"]) >= back_at + timedelta(seconds=60)
