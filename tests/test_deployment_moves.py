"""run/stop, the effects of deploy/run/stop results, stale results, the reaper, and history."""

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from deployments_api.models import Job
from deployments_api.types import utcnow

from .helpers import expire_lease, new_id, set_job

# Which move each status allows (the contract's diagram): status -> (trigger, new status).
LEGAL_MOVES = {"running": ("stop", "stopping"), "stopped": ("run", "starting")}
STATUSES = ("deploying", "running", "stopping", "stopped", "starting", "error")
ILLEGAL_MOVES = [
    (status, trigger)
    for status in STATUSES
    for trigger in ("run", "stop")
    if LEGAL_MOVES.get(status, (None,))[0] != trigger
]
EVENT_FIELDS = {"id", "at", "kind", "from_status", "to_status", "trigger", "source", "job_id"}
EVENT_FIELDS |= {"message"}
LONG_AGO = timedelta(days=1)


# -- helpers -------------------------------------------------------------------------------


def shown(api, token, deployment_id) -> dict:
    response = api.get(f"deployments/{deployment_id}", token)
    assert response.status_code == 200
    return response.get_json()


def events(api, token, deployment_id) -> list[dict]:
    response = api.get(f"deployments/{deployment_id}/events?page_size=1000", token)
    assert response.status_code == 200
    return response.get_json()


def jobs_of(engine, deployment_id) -> list[Job]:
    with Session(engine) as session:
        query = select(Job).where(Job.deployment_id == uuid.UUID(deployment_id))
        return list(session.scalars(query.order_by(Job.created_at)))


def pending_job_id(engine, deployment_id) -> str:
    (job,) = [job for job in jobs_of(engine, deployment_id) if job.status == "pending"]
    return str(job.id)


def move(api, token, deployment_id, trigger):
    return api.post(f"deployments/{deployment_id}/{trigger}", token)


def moved_job_id(api, token, deployment_id, trigger) -> str:
    response = move(api, token, deployment_id, trigger)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["job_id"]


def insert_job(engine, deployment_id, job_type) -> str:
    """A second job for the deployment, as an old or duplicate job would look."""
    (deploy_job, *_) = jobs_of(engine, deployment_id)
    job = Job(
        id=uuid.uuid4(),
        user_id=deploy_job.user_id,
        job_type=job_type,
        deployment_id=deploy_job.deployment_id,
        input_data=deploy_job.input_data,
    )
    with Session(engine, expire_on_commit=False) as session, session.begin():
        session.add(job)
    return str(job.id)


def reap(app) -> dict:
    result = app.test_cli_runner().invoke(args=["reap-jobs"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def status_path(event_list) -> list[str]:
    """The statuses the history walks through, oldest first (changes only)."""
    changes = [e for e in reversed(event_list) if e["to_status"] not in (None, e["from_status"])]
    path = [change["to_status"] for change in changes]
    # Each change starts where the previous one ended: no status was skipped or repeated.
    assert [change["from_status"] for change in changes] == [None, *path[:-1]]
    return path


# -- run and stop --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "trigger", "moved_to"),
    [(status, trigger, moved_to) for status, (trigger, moved_to) in LEGAL_MOVES.items()],
)
def test_a_legal_move_answers_202_and_queues_exactly_one_job(
    api, engine, status, trigger, moved_to
):
    token = api.user()
    deployment = api.deployment(token, status)
    jobs_before = len(jobs_of(engine, deployment["id"]))

    response = move(api, token, deployment["id"], trigger)

    assert response.status_code == 202, response.get_json()
    answer = response.get_json()
    assert answer["status"] == moved_to
    assert shown(api, token, deployment["id"])["status"] == moved_to
    jobs = jobs_of(engine, deployment["id"])
    assert len(jobs) == jobs_before + 1
    (new_job,) = [job for job in jobs if job.status == "pending"]
    assert (str(new_job.id), new_job.job_type) == (answer["job_id"], trigger)
    newest = events(api, token, deployment["id"])[0]
    assert (newest["kind"], newest["source"], newest["trigger"]) == ("transition", "api", trigger)
    assert (newest["from_status"], newest["to_status"]) == (status, moved_to)
    assert newest["job_id"] == answer["job_id"]


def test_run_and_stop_jobs_carry_the_deploy_job_input(api, engine):
    token = api.user()
    deployment = api.deployment(token, "stopped", symbol="US30.cash", magic_number=12)
    run_job_id = moved_job_id(api, token, deployment["id"], "run")
    api.finish_job(run_job_id)
    stop_job_id = moved_job_id(api, token, deployment["id"], "stop")

    deploy_input, *others = [job.input_data for job in jobs_of(engine, deployment["id"])]
    assert set(deploy_input) == {
        "deployment_id",
        "artifact_storage_path",
        "symbol",
        "timeframe",
        "magic_number",
        "broker_connection_id",
    }
    assert deploy_input["symbol"] == "US30.cash"
    assert len(others) == 3  # the helper's stop, then our run and stop
    assert all(job_input == deploy_input for job_input in others)
    for job_id in (run_job_id, stop_job_id):
        assert api.get(f"jobs/{job_id}", token).get_json()["input_data"] == deploy_input


@pytest.mark.parametrize(("status", "trigger"), ILLEGAL_MOVES)
def test_an_illegal_move_is_refused_recorded_and_queues_nothing(api, status, trigger):
    token = api.user()
    deployment = api.deployment(token, status)
    before = api.row_counts()

    response = move(api, token, deployment["id"], trigger)

    assert response.status_code == 409
    body = response.get_json()
    assert (body["detail"], body["status"]) == ("invalid_transition", status)
    after = api.row_counts()
    # The one deliberate write: the refusal in the deployment's history.
    assert after == {**before, "deployment_events": before["deployment_events"] + 1}
    assert shown(api, token, deployment["id"])["status"] == status
    refused = events(api, token, deployment["id"])[0]
    assert (refused["kind"], refused["trigger"], refused["source"]) == ("refused", trigger, "api")
    assert refused["from_status"] == status


@pytest.mark.parametrize("trigger", ["run", "stop"])
def test_moving_an_unknown_or_foreign_deployment_is_not_found(api, trigger):
    owner = api.user()
    deployment = api.deployment(owner, "running" if trigger == "stop" else "stopped")
    stranger = api.user()
    before = api.row_counts()
    for token, deployment_id in ((owner, new_id()), (stranger, deployment["id"])):
        response = move(api, token, deployment_id, trigger)
        assert (response.status_code, response.get_json()["detail"]) == (404, "not_found")
    assert api.row_counts() == before


# -- effects of agent results --------------------------------------------------------------

EFFECTS = [
    # job, outcome, status while the job runs, status after, last_error set
    ("deploy", "completed", "deploying", "running", False),
    ("deploy", "failed", "deploying", "error", True),
    ("run", "completed", "starting", "running", False),
    ("run", "failed", "starting", "stopped", True),
    ("stop", "completed", "stopping", "stopped", False),
    ("stop", "failed", "stopping", "running", True),
]


@pytest.mark.parametrize(("job_type", "outcome", "during", "after", "sets_error"), EFFECTS)
def test_each_result_moves_the_deployment_as_the_effects_table_says(
    api, engine, job_type, outcome, during, after, sets_error
):
    token = api.user()
    deployment = api.deployment(token, during)
    job_id = pending_job_id(engine, deployment["id"])
    message = f"{job_type} went wrong" if sets_error else None
    extra = {"error_message": message} if sets_error else {}

    finished = api.finish_job(job_id, outcome, **extra)

    assert (finished["status"], finished["job_type"]) == (outcome, job_type)
    now = shown(api, token, deployment["id"])
    assert now["status"] == after
    assert now["last_error"] == message
    newest = events(api, token, deployment["id"])[0]
    trigger = f"{job_type}_{'succeeded' if outcome == 'completed' else 'failed'}"
    assert (newest["kind"], newest["source"], newest["trigger"]) == ("job_result", "agent", trigger)
    assert (newest["from_status"], newest["to_status"]) == (during, after)
    assert newest["job_id"] == job_id


def test_last_error_is_cleared_when_a_later_job_completes(api):
    token = api.user()
    deployment_id = api.deployment(token, "running")["id"]
    steps = [
        ("stop", "failed", "running", "terminal busy"),
        ("stop", "completed", "stopped", None),
        ("run", "failed", "stopped", "symbol disabled"),
        ("run", "completed", "running", None),
    ]
    for trigger, outcome, status, error in steps:
        job_id = moved_job_id(api, token, deployment_id, trigger)
        api.finish_job(job_id, outcome, **({"error_message": error} if error else {}))
        now = shown(api, token, deployment_id)
        assert (now["status"], now["last_error"]) == (status, error)


STALE_RESULTS = [
    # the deployment's status when an old or duplicate job reports, that job, its outcome
    ("running", "deploy", "failed"),
    ("running", "deploy", "completed"),
    ("stopped", "stop", "completed"),
    ("stopped", "stop", "failed"),
    ("running", "run", "failed"),
    ("running", "stop", "completed"),
    ("error", "deploy", "completed"),
    ("starting", "stop", "failed"),
]


@pytest.mark.parametrize(("status", "job_type", "outcome"), STALE_RESULTS)
def test_a_stale_result_is_recorded_on_the_job_and_leaves_the_deployment_alone(
    api, engine, status, job_type, outcome
):
    token = api.user()
    deployment = api.deployment(token, status)
    # Claim a job of the type that no longer applies (another pending one may exist).
    stale_job_id = insert_job(engine, deployment["id"], job_type)
    claimed = api.claim(job_types=[job_type]).get_json()
    assert claimed["id"] == stale_job_id

    report = api.report(claimed, outcome, error_message="late news")

    assert report.status_code == 200, report.get_json()
    job = api.get(f"jobs/{stale_job_id}", token).get_json()
    assert (job["status"], job["error_message"]) == (outcome, "late news")
    now = shown(api, token, deployment["id"])
    assert (now["status"], now["last_error"]) == (status, deployment["last_error"])
    assert now["updated_at"] == deployment["updated_at"]
    newest = events(api, token, deployment["id"])[0]
    assert (newest["kind"], newest["source"], newest["job_id"]) == (
        "refused",
        "agent",
        claimed["id"],
    )
    # The same report again is still a plain 200 and changes nothing.
    assert api.report(claimed, outcome, error_message="late news").status_code == 200
    assert events(api, token, deployment["id"])[0]["id"] == newest["id"]


def test_a_stop_result_after_the_deployment_moved_on_is_not_applied(api, engine):
    """Two stop jobs for one stop (say, a duplicate queued by an operator): the second result
    arrives once the first has already stopped and the user started the EA again."""
    token = api.user()
    deployment_id = api.deployment(token, "stopping")["id"]
    first_stop = pending_job_id(engine, deployment_id)
    duplicate_stop = insert_job(engine, deployment_id, "stop")
    api.finish_job(first_stop)
    duplicate = api.claim_job(duplicate_stop)
    api.finish_job(moved_job_id(api, token, deployment_id, "run"))
    assert shown(api, token, deployment_id)["status"] == "running"

    response = api.report(duplicate, "completed")

    assert response.status_code == 200
    assert shown(api, token, deployment_id)["status"] == "running"
    assert status_path(events(api, token, deployment_id)) == [
        "deploying", "running", "stopping", "stopped", "starting", "running",
    ]  # fmt: skip


# -- the reaper ----------------------------------------------------------------------------

LEASE_OUTCOMES = [("deploying", "error"), ("stopping", "running"), ("starting", "stopped")]


@pytest.mark.parametrize("applied_by", ["claim", "reap"])
@pytest.mark.parametrize(("during", "after"), LEASE_OUTCOMES)
def test_a_lease_lost_on_the_last_attempt_fails_the_job_and_moves_the_deployment(
    app, api, engine, during, after, applied_by
):
    token = api.user()
    deployment_id = api.deployment(token, during)["id"]
    job_id = pending_job_id(engine, deployment_id)
    max_attempts = app.config["JOB_MAX_ATTEMPTS"]
    for attempt in range(1, max_attempts + 1):
        claimed = api.claim_job(job_id)
        assert claimed["attempt"] == attempt
        expire_lease(engine, job_id)
        # Until the attempts run out, the job only goes back to pending.
        assert shown(api, token, deployment_id)["status"] == during

    if applied_by == "claim":
        assert api.claim().status_code == 204
    else:
        assert reap(app)["leases_expired"] == 1

    job = api.get(f"jobs/{job_id}", token).get_json()
    assert (job["status"], job["error_message"]) == ("failed", "lease_expired")
    now = shown(api, token, deployment_id)
    assert (now["status"], now["last_error"]) == (after, "lease_expired")
    history = events(api, token, deployment_id)
    assert (history[0]["kind"], history[0]["source"]) == ("lease_expired", "reaper")
    assert (history[0]["from_status"], history[0]["to_status"]) == (during, after)
    requeues = [e for e in history if e["kind"] == "lease_expired" and e["to_status"] == during]
    assert len(requeues) == max_attempts - 1
    assert api.report(claimed, "completed").get_json()["detail"] == "lease_lost"


@pytest.mark.parametrize(("during", "after"), LEASE_OUTCOMES)
def test_a_job_nobody_claims_in_time_fails_with_no_agent(app, api, engine, during, after):
    token = api.user()
    deployment = api.deployment(token, during)
    deployment_id = deployment["id"]
    job_id = pending_job_id(engine, deployment_id)
    fresh = api.deploy(token, deployment["ea_version_id"], deployment["broker_connection_id"])
    too_old = utcnow() - timedelta(seconds=app.config["JOB_PENDING_TIMEOUT"] + 1)
    set_job(engine, job_id, pending_since=too_old, created_at=too_old)
    assert reap(app)["unclaimed_failed"] == 1

    job = api.get(f"jobs/{job_id}", token).get_json()
    assert (job["status"], job["error_message"]) == ("failed", "no_agent")
    now = shown(api, token, deployment_id)
    assert (now["status"], now["last_error"]) == (after, "no_agent")
    newest = events(api, token, deployment_id)[0]
    assert (newest["kind"], newest["source"]) == ("job_result", "reaper")
    assert (newest["from_status"], newest["to_status"]) == (during, after)
    # A job still inside the timeout is left waiting.
    assert shown(api, token, fresh.get_json()["deployment_id"])["status"] == "deploying"
    assert reap(app)["unclaimed_failed"] == 0


# -- history -------------------------------------------------------------------------------


def test_every_status_change_appears_once_newest_first_and_paginated(api, engine):
    token = api.user()
    deployment_id = api.deployment(token, "running")["id"]
    api.finish_job(moved_job_id(api, token, deployment_id, "stop"), "failed", error_message="busy")
    assert move(api, token, deployment_id, "run").status_code == 409
    api.finish_job(moved_job_id(api, token, deployment_id, "stop"))
    api.finish_job(moved_job_id(api, token, deployment_id, "run"))

    history = events(api, token, deployment_id)

    assert [
        (e["kind"], e["from_status"], e["to_status"], e["trigger"], e["source"]) for e in history
    ] == [
        ("job_result", "starting", "running", "run_succeeded", "agent"),
        ("transition", "stopped", "starting", "run", "api"),
        ("job_result", "stopping", "stopped", "stop_succeeded", "agent"),
        ("transition", "running", "stopping", "stop", "api"),
        ("refused", "running", None, "run", "api"),
        ("job_result", "stopping", "running", "stop_failed", "agent"),
        ("transition", "running", "stopping", "stop", "api"),
        ("job_result", "deploying", "running", "deploy_succeeded", "agent"),
        ("created", None, "deploying", None, "api"),
    ]
    assert all(set(e) >= EVENT_FIELDS for e in history)
    assert [e["at"] for e in history] == sorted((e["at"] for e in history), reverse=True)
    job_ids = {str(job.id) for job in jobs_of(engine, deployment_id)}
    assert {e["job_id"] for e in history if e["kind"] != "refused"} == job_ids
    assert len({e["id"] for e in history}) == len(history)

    pages = []
    for page in (1, 2, 3, 4):
        response = api.get(f"deployments/{deployment_id}/events?page={page}&page_size=3", token)
        assert response.status_code == 200
        pagination = json.loads(response.headers["X-Pagination"])
        assert (pagination["total"], pagination["total_pages"]) == (9, 3)
        pages.append(response.get_json())
    assert [len(page) for page in pages] == [3, 3, 3, 0]
    assert [e["id"] for page in pages for e in page] == [e["id"] for e in history]


def test_another_users_history_is_not_found(api):
    deployment = api.deployment(api.user(), "deploying")
    for token, deployment_id in ((api.user(), deployment["id"]), (api.user(), new_id())):
        response = api.get(f"deployments/{deployment_id}/events", token)
        assert (response.status_code, response.get_json()["detail"]) == (404, "not_found")
