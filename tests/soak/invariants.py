"""What must hold of every deployment history and of the database as a whole, however
requests, agents, crashes and outages interleaved.

The contract's state machine is written out here on its own, not imported from the app,
so a wrong transition table in the app cannot vouch for itself.
"""

from collections import Counter, defaultdict

from sqlalchemy import select

from deployments_api.models import Deployment, DeploymentEvent, Job

from ..helpers import CONTRACT_DIAGRAM

# The status a deployment shows while a job of each type is queued or being worked on.
IN_FLIGHT_STATUS = {"deploy": "deploying", "run": "starting", "stop": "stopping"}
FINISHED = ("completed", "failed")


def result_trigger(job_type: str, job_status: str) -> str:
    return f"{job_type}_{'succeeded' if job_status == 'completed' else 'failed'}"


def is_requeue(event) -> bool:
    """A lease ran out and the job went back to pending: the status does not move."""
    return event["kind"] == "lease_expired" and event["trigger"] is None


def is_job_finish(event) -> bool:
    """The one event a finished job's effect writes (an agent's result or the reaper's)."""
    return event["kind"] in ("job_result", "lease_expired") and event["trigger"] is not None


def replay_history(events) -> str:
    """Walk one deployment's events, oldest first, and return the status they end in.

    Fails unless the history starts with `created`, every move is a contract move from
    the status of that moment, every refusal names the status of that moment, and a
    requeue leaves the status alone.
    """
    assert events, "a deployment without history"
    first, *rest = events
    assert (first["kind"], first["to_status"]) == ("created", "deploying"), first
    status = "deploying"
    for event in rest:
        where = f"event {event} after status {status}"
        if event["kind"] == "refused" or is_requeue(event):
            assert event["from_status"] == status, where
            assert event["kind"] == "refused" or event["to_status"] == status, where
            continue
        assert event["kind"] in ("transition", "job_result", "lease_expired"), where
        assert event["from_status"] == status, where
        assert CONTRACT_DIAGRAM.get((status, event["trigger"])) == event["to_status"], where
        status = event["to_status"]
    return status


def _rows(connection, model, *order_by):
    return [dict(row) for row in connection.execute(select(model).order_by(*order_by)).mappings()]


def load_state(engine) -> tuple[list[dict], dict, dict]:
    """(deployments, jobs by deployment id oldest first, events by deployment id by seq)."""
    with engine.connect() as connection:
        deployments = _rows(connection, Deployment.__table__, Deployment.created_at)
        jobs = _rows(connection, Job.__table__, Job.created_at, Job.id)
        events = _rows(
            connection,
            DeploymentEvent.__table__,
            DeploymentEvent.deployment_id,
            DeploymentEvent.seq,
        )
    jobs_by_deployment = defaultdict(list)
    for job in jobs:
        if job["deployment_id"] is not None:
            jobs_by_deployment[job["deployment_id"]].append(job)
    events_by_deployment = defaultdict(list)
    for event in events:
        events_by_deployment[event["deployment_id"]].append(event)
    return deployments, jobs_by_deployment, events_by_deployment


def expected_status(latest_job: dict) -> str:
    """Where a deployment must stand, given its latest job (only one is ever in flight)."""
    if latest_job["status"] not in FINISHED:
        return IN_FLIGHT_STATUS[latest_job["job_type"]]
    return CONTRACT_DIAGRAM[
        (
            IN_FLIGHT_STATUS[latest_job["job_type"]],
            result_trigger(latest_job["job_type"], latest_job["status"]),
        )
    ]


def assert_deployment_consistent(deployment: dict, jobs: list[dict], events: list[dict]) -> None:
    """Nothing half-applied: each job has the events its writes belong with, and the
    deployment's status is what its jobs' results say."""
    where = f"deployment {deployment['id']}"
    assert [job["job_type"] for job in jobs[:1]] == ["deploy"], f"{where}: no deploy job first"
    assert [job["job_type"] for job in jobs[1:]].count("deploy") == 0, f"{where}: two deploy jobs"
    assert events[0]["job_id"] == jobs[0]["id"], f"{where}: created event without its deploy job"
    moved_by_api = Counter(e["job_id"] for e in events if e["kind"] == "transition")
    assert moved_by_api == Counter(job["id"] for job in jobs[1:]), (
        f"{where}: a move without its job"
    )
    finishes = Counter(e["job_id"] for e in events if is_job_finish(e))
    for job in jobs:
        expected = 1 if job["status"] in FINISHED else 0
        assert finishes[job["id"]] == expected, (
            f"{where}: job {job['id']} is {job['status']} "
            f"but its result was applied {finishes[job['id']]} times"
        )
    for event in events:
        if is_job_finish(event):
            job = next(j for j in jobs if j["id"] == event["job_id"])
            assert event["trigger"] == result_trigger(job["job_type"], job["status"]), where
    assert not [e for e in events if e["kind"] == "refused" and e["source"] != "api"], (
        f"{where}: a job result was refused, so a job finished without its effect"
    )
    final = replay_history(events)
    assert deployment["status"] == final, f"{where}: status {deployment['status']}, history {final}"
    assert deployment["status"] == expected_status(jobs[-1]), f"{where}: status vs latest job"
    latest = jobs[-1]
    if latest["status"] == "failed":
        assert deployment["last_error"] == latest["error_message"], where
    elif latest["status"] == "completed":
        assert deployment["last_error"] is None, where


def assert_database_consistent(engine) -> dict:
    """Every deployment in the database passes `assert_deployment_consistent`."""
    deployments, jobs_by_deployment, events_by_deployment = load_state(engine)
    for deployment in deployments:
        assert_deployment_consistent(
            deployment,
            jobs_by_deployment.get(deployment["id"], []),
            events_by_deployment.get(deployment["id"], []),
        )
    return {
        "deployments": len(deployments),
        "jobs": sum(len(jobs) for jobs in jobs_by_deployment.values()),
        "events": sum(len(events) for events in events_by_deployment.values()),
    }
