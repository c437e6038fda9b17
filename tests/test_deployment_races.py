"""Real concurrent HTTP against the served app: racing moves and creates.

Runs on both backends: on Postgres the row lock (`SELECT ... FOR UPDATE`) decides the
winner; on SQLite `BEGIN IMMEDIATE` makes the racers queue for the write lock instead
of failing with "database is locked".
"""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
import requests
from sqlalchemy import func, select

from deployments_api.models import Job

from .helpers import CONTRACT_DIAGRAM

RACERS = 16


def race(calls) -> list[requests.Response]:
    """Send every call at once: each thread waits at a barrier, then makes its request."""
    start = threading.Barrier(len(calls))

    def go(call):
        start.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(go, calls))


def post(live_url, path, token, json=None):
    return partial(
        requests.post,
        f"{live_url}/api/v1/{path}",
        json=json,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def count_jobs(engine, deployment_id, job_type) -> int:
    with engine.connect() as connection:
        return connection.scalar(
            select(func.count()).where(
                Job.deployment_id == uuid.UUID(deployment_id), Job.job_type == job_type
            )
        )


def history(api, token, deployment_id) -> list[dict]:
    response = api.get(f"deployments/{deployment_id}/events?page_size=1000", token)
    assert response.status_code == 200
    return response.get_json()[::-1]


def assert_legal_path(events) -> list[str]:
    """Every status change in the history is a move of the diagram, each from where the last
    one ended, starting with the create. Returns the statuses walked through."""
    created, *rest = events
    assert (created["kind"], created["to_status"]) == ("created", "deploying")
    path = ["deploying"]
    for event in rest:
        if event["kind"] == "refused" or event["to_status"] == event["from_status"]:
            continue
        assert event["from_status"] == path[-1], event
        assert (
            CONTRACT_DIAGRAM.get((event["from_status"], event["trigger"])) == event["to_status"]
        ), event
        path.append(event["to_status"])
    return path


@pytest.mark.parametrize(
    ("status", "trigger", "moved_to"),
    [("running", "stop", "stopping"), ("stopped", "run", "starting")],
)
def test_of_racing_moves_exactly_one_wins_and_queues_one_job(
    api, engine, live_url, status, trigger, moved_to
):
    token = api.user()
    deployment_id = api.deployment(token, status)["id"]
    jobs_before = count_jobs(engine, deployment_id, trigger)

    responses = race([post(live_url, f"deployments/{deployment_id}/{trigger}", token)] * RACERS)

    codes = sorted(r.status_code for r in responses)
    assert codes == [202] + [409] * (RACERS - 1)
    (winner,) = [r.json() for r in responses if r.status_code == 202]
    assert winner["status"] == moved_to
    for loser in (r.json() for r in responses if r.status_code == 409):
        # Losers waited for the winner's row lock and saw the status it left.
        assert (loser["detail"], loser["status"]) == ("invalid_transition", moved_to)
    assert count_jobs(engine, deployment_id, trigger) == jobs_before + 1
    assert api.get(f"jobs/{winner['job_id']}", token).get_json()["job_type"] == trigger
    events = history(api, token, deployment_id)
    kinds = [e["kind"] for e in events]
    assert kinds.count("refused") == RACERS - 1
    assert assert_legal_path(events)[-1] == moved_to


def test_concurrent_creates_without_magic_numbers_get_distinct_smallest_ones(api, live_url):
    token = api.user()
    version_id = api.compiled_version(token)["id"]
    connection_id = api.connection(token)["id"]
    for taken in (2, 5):
        assert api.deploy(token, version_id, connection_id, magic_number=taken).status_code == 201
    body = {
        "ea_version_id": version_id,
        "broker_connection_id": connection_id,
        "symbol": "EURUSD",
        "timeframe": "M5",
    }

    responses = race([post(live_url, "deployments", token, body)] * RACERS)

    assert [r.status_code for r in responses] == [201] * RACERS, [r.json() for r in responses]
    magic_numbers = [
        api.get(f"deployments/{r.json()['deployment_id']}", token).get_json()["magic_number"]
        for r in responses
    ]
    expected = sorted(set(range(1, RACERS + 3)) - {2, 5})
    assert sorted(magic_numbers) == expected


ROUNDS = 6
# The job the agent is finishing, its result, and the user's move racing it.
RESULT_VERSUS_MOVE = [
    ("starting", "completed", "stop"),  # the stop is legal only once the run result landed
    ("stopping", "completed", "run"),
    ("stopping", "failed", "stop"),
]


@pytest.mark.parametrize(("held", "outcome", "trigger"), RESULT_VERSUS_MOVE)
def test_an_agent_result_racing_a_user_move_never_fails_and_leaves_a_legal_history(
    api, live_url, held, outcome, trigger
):
    token = api.user()
    in_flight = []
    for _ in range(ROUNDS):
        deployment_id = api.deployment(token, held)["id"]
        logs = api.get(f"deployments/{deployment_id}/logs", token).get_json()
        (pending,) = [entry for entry in logs if entry["status"] == "pending"]
        in_flight.append((deployment_id, api.claim_job(pending["job_id"])))
    trigger_for = {"completed": "succeeded", "failed": "failed"}
    after_result = CONTRACT_DIAGRAM[(held, f"{in_flight[0][1]['job_type']}_{trigger_for[outcome]}")]
    after_move = CONTRACT_DIAGRAM[(after_result, trigger)]

    calls = []
    for deployment_id, job in in_flight:
        report = {"status": outcome, "attempt": job["attempt"]}
        if outcome == "failed":
            report["error_message"] = "the terminal said no"
        calls.append(post(live_url, f"agent/jobs/{job['id']}/result", api.default_agent, report))
        calls.append(post(live_url, f"deployments/{deployment_id}/{trigger}", token))
    responses = race(calls)

    assert all(r.status_code != 500 for r in responses)
    for index, (deployment_id, _job) in enumerate(in_flight):
        result, move = responses[2 * index], responses[2 * index + 1]
        assert result.status_code == 200, result.json()
        assert move.status_code in (202, 409), move.json()
        final = api.get(f"deployments/{deployment_id}", token).get_json()["status"]
        path = assert_legal_path(history(api, token, deployment_id))
        if move.status_code == 202:
            # The result landed first, then the move.
            assert (final, path[-2:]) == (after_move, [after_result, after_move])
        else:
            # The move came first and was refused; the result still took effect.
            assert (move.json()["detail"], move.json()["status"]) == ("invalid_transition", held)
            assert (final, path[-2:]) == (after_result, [held, after_result])
