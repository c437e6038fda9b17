"""A deployment's logs (every job, newest first) and waiting for a status."""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import event
from sqlalchemy.orm import Session

from deployments_api.models import Job

from .helpers import settle

LOG_FIELDS = {
    "job_id",
    "job_type",
    "status",
    "output_data",
    "error_message",
    "created_at",
    "completed_at",
}


# -- logs ----------------------------------------------------------------------------------


def logs(api, token, deployment_id, query=""):
    response = api.get(f"deployments/{deployment_id}/logs{query}", token)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def add_jobs(engine, deployment_id, stamps):
    """Insert jobs for the deployment: (id, created_at, completed_at) each."""
    with Session(engine) as session, session.begin():
        owner_job = session.query(Job).filter_by(deployment_id=uuid.UUID(deployment_id)).first()
        for job_id, created_at, completed_at in stamps:
            session.add(
                Job(
                    id=job_id,
                    user_id=owner_job.user_id,
                    job_type="stop" if completed_at else "run",
                    status="completed" if completed_at else "pending",
                    deployment_id=owner_job.deployment_id,
                    input_data=owner_job.input_data,
                    created_at=created_at,
                    pending_since=None if completed_at else created_at,
                    completed_at=completed_at,
                )
            )


def test_logs_hold_every_job_of_the_deployment_newest_first(api, owner):
    token, version_id, connection_id = owner
    deployment_id, _ = settle(api, token, version_id, connection_id, "running")
    settle(api, token, version_id, connection_id, "stopped")  # another deployment's jobs
    job_ids = [api.post(f"deployments/{deployment_id}/stop", token).get_json()["job_id"]]
    api.finish_job(
        job_ids[0], "failed", error_message="terminal busy", output_data={"log": "tried"}
    )
    job_ids.append(api.post(f"deployments/{deployment_id}/stop", token).get_json()["job_id"])
    api.finish_job(job_ids[1], output_data={"log": "stopped at 1.0850"})
    job_ids.append(api.post(f"deployments/{deployment_id}/run", token).get_json()["job_id"])

    entries = logs(api, token, deployment_id)

    assert all(set(entry) >= LOG_FIELDS for entry in entries)
    assert [(e["job_type"], e["status"]) for e in entries] == [
        ("run", "pending"),
        ("stop", "completed"),
        ("stop", "failed"),
        ("deploy", "completed"),
    ]
    assert [e["job_id"] for e in entries[:3]] == job_ids[::-1]
    run, stopped, failed, deploy = entries
    assert (stopped["output_data"], stopped["error_message"]) == (
        {"log": "stopped at 1.0850"},
        None,
    )
    assert (failed["output_data"], failed["error_message"]) == ({"log": "tried"}, "terminal busy")
    assert (run["completed_at"], run["output_data"]) == (None, None)
    for entry in (stopped, failed, deploy):
        assert datetime.fromisoformat(entry["completed_at"]) >= datetime.fromisoformat(
            entry["created_at"]
        )


def test_logs_order_by_completion_or_creation_then_creation_then_id(api, owner, engine):
    token, version_id, connection_id = owner
    deployment_id, _ = settle(api, token, version_id, connection_id, "running")
    base = datetime.now(UTC) - timedelta(hours=1)

    def at(minute):
        return base + timedelta(minutes=minute)

    def job_id(n):
        return uuid.UUID(int=n)

    add_jobs(
        engine,
        deployment_id,
        [
            (job_id(1), at(0), at(50)),  # sort key 50
            (job_id(2), at(40), None),  # sort key 40, created later than job 3
            (job_id(3), at(10), at(40)),  # sort key 40
            (job_id(4), at(20), None),  # sort key 20, same created_at: higher id first
            (job_id(5), at(20), None),
            (job_id(6), at(5), at(30)),  # sort key 30
        ],
    )
    deploy_job = logs(api, token, deployment_id)[0]  # finished just now: the newest
    assert deploy_job["job_type"] == "deploy"

    entries = logs(api, token, deployment_id)[1:]

    assert [entry["job_id"] for entry in entries] == [str(job_id(n)) for n in (1, 2, 3, 6, 5, 4)]


def test_logs_return_at_most_100_entries_and_honour_limit(api, owner, engine):
    token, version_id, connection_id = owner
    deployment_id, _ = settle(api, token, version_id, connection_id, "running")
    start = datetime.now(UTC) - timedelta(days=1)
    add_jobs(
        engine,
        deployment_id,
        [(uuid.uuid4(), start + timedelta(seconds=n), None) for n in range(110)],
    )

    everything = logs(api, token, deployment_id)
    assert len(everything) == 100
    assert len(logs(api, token, deployment_id, "?limit=100")) == 100
    assert logs(api, token, deployment_id, "?limit=5") == everything[:5]
    assert [e["job_id"] for e in logs(api, token, deployment_id, "?limit=1")] == [
        everything[0]["job_id"]
    ]


# -- wait ----------------------------------------------------------------------------------


def wait(api, token, deployment_id, query):
    started = time.monotonic()
    response = api.get(f"deployments/{deployment_id}/wait?{query}", token)
    return response, time.monotonic() - started


def test_wait_answers_at_once_when_already_there(api, owner):
    token, version_id, connection_id = owner
    for status in ("deploying", "running", "stopped", "error"):
        deployment_id, _ = settle(api, token, version_id, connection_id, status)
        response, took = wait(api, token, deployment_id, f"status={status}&timeout=30")
        assert response.status_code == 200, status
        assert (response.get_json()["id"], response.get_json()["status"]) == (deployment_id, status)
        assert took < 2, status


def test_wait_times_out_with_the_current_status(api, owner):
    token, version_id, connection_id = owner
    deployment_id, _ = settle(api, token, version_id, connection_id, "deploying")
    response, took = wait(api, token, deployment_id, "status=running&timeout=1")
    assert response.status_code == 408
    assert response.get_json()["detail"] == "wait_timeout"
    assert response.get_json()["status"] == "deploying"
    assert 1 <= took < 5


def test_wait_on_a_deployment_in_error_is_unreachable_at_once(api, owner):
    token, version_id, connection_id = owner
    deployment_id, _ = settle(api, token, version_id, connection_id, "error")
    for asked in ("running", "stopped", "starting", "deploying"):
        response, took = wait(api, token, deployment_id, f"status={asked}&timeout=30")
        assert response.status_code == 409, asked
        body = response.get_json()
        assert (body["detail"], body["status"]) == ("status_unreachable", "error")
        assert took < 2, asked


@pytest.mark.parametrize(
    ("outcome", "asked", "answer"),
    [("completed", "running", 200), ("failed", "running", 409), ("failed", "error", 200)],
)
def test_wait_answers_when_an_agent_result_arrives_during_the_wait(
    api, owner, engine, live_url, outcome, asked, answer
):
    token, version_id, connection_id = owner
    deployment_id, held_job = settle(api, token, version_id, connection_id, "deploying")
    test_thread = threading.get_ident()
    polled = threading.Event()

    def notice_poll(_conn, _cursor, statement, *_args):
        # The waiter (a server thread) has read the deployment at least once.
        if threading.get_ident() != test_thread and "ea_deployments" in statement:
            polled.set()

    event.listen(engine, "after_cursor_execute", notice_poll)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(
                requests.get,
                f"{live_url}/api/v1/deployments/{deployment_id}/wait",
                params={"status": asked, "timeout": 20},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert polled.wait(timeout=10)
            assert not waiting.done()
            extra = {"error_message": "no terminal"} if outcome == "failed" else {}
            assert api.report(held_job, outcome, **extra).status_code == 200
            response = waiting.result(timeout=30)
    finally:
        event.remove(engine, "after_cursor_execute", notice_poll)

    assert response.status_code == answer
    if answer == 200:
        assert response.json()["status"] == asked
    else:
        assert response.json() == {
            **response.json(),
            "detail": "status_unreachable",
            "status": "error",
        }
