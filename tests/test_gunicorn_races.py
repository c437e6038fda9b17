"""Racing moves through real gunicorn workers on real Postgres.

`gunicorn wsgi:app` runs with 4 workers x 4 threads (and, for one test, twice, on two
ports) against the session's test database; requests are real HTTP from real threads.
The row lock on the deployment is the only thing that may decide a race.
"""

import random
import time
from collections import Counter

import pytest

from .servers import gunicorn_server
from .soak.harness import (
    Answer,
    Http,
    QueueWorker,
    drain_output,
    run_together,
    server_trouble,
)
from .soak.invariants import (
    IN_FLIGHT_STATUS,
    assert_database_consistent,
    replay_history,
)

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]

RACERS = 64
WORKERS = 4
THREADS = 4
# The status a move starts from.
MOVE_FROM = {"stop": "running", "run": "stopped"}
IN_FLIGHT = set(IN_FLIGHT_STATUS.values())


@pytest.fixture(scope="module")
def server(database_url):
    """One gunicorn for the module, with its output drained and checked at the end."""
    with gunicorn_server(database_url, workers=WORKERS, threads=THREADS) as (base_url, process):
        output = drain_output(process)
        yield base_url
        assert not server_trouble(output, WORKERS), "\n".join(output)


@pytest.fixture
def second_server(database_url):
    with gunicorn_server(database_url, workers=WORKERS, threads=THREADS) as (base_url, process):
        output = drain_output(process)
        yield base_url
        assert not server_trouble(output, WORKERS), "\n".join(output)


def history(base_url: str, user: str, deployment_id: str) -> list[dict]:
    """The deployment's events over HTTP, oldest first."""
    answer = Http(base_url, user).get(
        f"deployments/{deployment_id}/events", params={"page_size": 1000}
    )
    assert answer.status == 200, answer.describe()
    return list(reversed(answer.body))


def race_move(base_urls: list[str], user: str, deployment_id: str, move: str) -> list[Answer]:
    """RACERS identical moves, released together, spread over the given servers."""
    path = f"deployments/{deployment_id}/{move}"
    clients = [Http(base_urls[i % len(base_urls)], user) for i in range(RACERS)]
    return run_together([lambda client=client: client.post(path) for client in clients])


def assert_one_winner(api, base_url, user, deployment_id, move, answers) -> str:
    """Exactly one 202 with one job; every other racer got 409 naming the moved status.

    Returns the winner's job id.
    """
    assert [a.error for a in answers if a.status is None] == []
    assert Counter(a.status for a in answers) == {202: 1, 409: RACERS - 1}
    (winner,) = [a for a in answers if a.status == 202]
    moved_to = IN_FLIGHT_STATUS[move]
    assert winner.body["status"] == moved_to
    refusals = [a.body for a in answers if a.status == 409]
    assert {(r["detail"], r["status"]) for r in refusals} == {("invalid_transition", moved_to)}

    events = history(base_url, user, deployment_id)
    replay_history(events)
    moves = [e for e in events if e["kind"] == "transition" and e["trigger"] == move]
    assert [e["job_id"] for e in moves[-1:]] == [winner.body["job_id"]]
    refused = [e for e in events if e["kind"] == "refused" and e["trigger"] == move]
    assert len(refused) >= RACERS - 1
    assert {e["from_status"] for e in refused[-(RACERS - 1) :]} == {moved_to}

    logs = api.get(f"deployments/{deployment_id}/logs", user).get_json()
    assert [entry["job_id"] for entry in logs if entry["job_type"] == move][:1] == [
        winner.body["job_id"]
    ]
    return winner.body["job_id"]


def settle(api, user: str, deployment_id: str, timeout: float = 30) -> None:
    """Wait while the agents finish the deployment's last job."""
    deadline = time.monotonic() + timeout
    while api.get(f"deployments/{deployment_id}", user).get_json()["status"] in IN_FLIGHT:
        assert time.monotonic() < deadline, "the agents did not finish the last job"
        time.sleep(0.05)


@pytest.mark.parametrize("move", ["stop", "run"])
def test_racing_moves_on_one_deployment_have_exactly_one_winner(api, server, move):
    user = api.user()
    deployment = api.deployment(user, MOVE_FROM[move])
    before = api.row_counts()

    answers = race_move([server], user, deployment["id"], move)

    job_id = assert_one_winner(api, server, user, deployment["id"], move, answers)
    after = api.row_counts()
    assert after["jobs"] - before["jobs"] == 1
    # One transition for the winner, one refusal recorded for each loser.
    assert after["deployment_events"] - before["deployment_events"] == RACERS
    job = api.get(f"jobs/{job_id}", user).get_json()
    assert (job["job_type"], job["status"]) == (move, "pending")
    assert_database_consistent(api.app.extensions["deployments_db"].engine)


def test_two_gunicorn_instances_on_one_database_still_have_one_winner(api, server, second_server):
    user = api.user()
    deployment = api.deployment(user, "running")
    for move in ("stop", "run", "stop"):
        answers = race_move([server, second_server], user, deployment["id"], move)
        job_id = assert_one_winner(api, server, user, deployment["id"], move, answers)
        api.finish_job(job_id)
    shown = api.get(f"deployments/{deployment['id']}", user).get_json()
    assert shown["status"] == "stopped"
    jobs = [e["job_type"] for e in api.get(f"deployments/{deployment['id']}/logs", user).get_json()]
    assert sorted(jobs) == ["deploy", "run", "stop", "stop"]
    assert_database_consistent(api.app.extensions["deployments_db"].engine)


def test_racing_runs_and_stops_leave_a_legal_history(api, server):
    """Runs and stops race while agents finish jobs, so the deployment keeps moving and
    several moves win; whatever the interleaving, the history is a path of the machine."""
    user = api.user()
    deployment = api.deployment(user, "running")
    deployment_id = deployment["id"]
    agents = [QueueWorker(server, api.agent(), fail_rate=0.25, seed=seed) for seed in range(2)]
    for agent in agents:
        agent.start()
    # Each racer fires at its own moment in a 2 s window: with agents finishing jobs
    # meanwhile, requests meet the deployment in every status it passes through.
    rng = random.Random(7)
    moves = ["run", "stop"] * (RACERS // 2)
    delays = [rng.uniform(0, 2.0) for _ in moves]

    def fire(move, delay):
        time.sleep(delay)
        return Http(server, user).post(f"deployments/{deployment_id}/{move}")

    answers = run_together(
        [lambda m=m, d=d: fire(m, d) for m, d in zip(moves, delays, strict=True)]
    )
    settle(api, user, deployment_id)
    agent_answers = [answer for agent in agents for answer in agent.stop()]

    assert [a.describe() for a in answers + agent_answers if a.status in (None, 500, 503)] == []
    won = [a for a in answers if a.status == 202]
    refused = [a for a in answers if a.status == 409]
    assert len(won) + len(refused) == RACERS
    assert {a.detail for a in refused} == {"invalid_transition"}
    assert len(won) >= 2, "the agents never moved the deployment between racers"

    events = history(server, user, deployment_id)
    final = replay_history(events)
    transitions = [e for e in events if e["kind"] == "transition"]
    assert sorted(e["job_id"] for e in transitions) == sorted(a.body["job_id"] for a in won)
    assert Counter((e["trigger"], e["to_status"]) for e in transitions) == Counter(
        (a.path.rsplit("/", 1)[1], a.body["status"]) for a in won
    )
    refusals = [e for e in events if e["kind"] == "refused"]
    assert Counter((e["trigger"], e["from_status"]) for e in refusals) == Counter(
        (a.path.rsplit("/", 1)[1], a.body["status"]) for a in refused
    )
    shown = api.get(f"deployments/{deployment_id}", user).get_json()
    assert shown["status"] == final
    assert_database_consistent(api.app.extensions["deployments_db"].engine)
    print("mixed race figures:", {"racers": RACERS, "won": len(won), "refused": len(refused),
                                  "events": len(events), "final_status": final})  # fmt: skip
