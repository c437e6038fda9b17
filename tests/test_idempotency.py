"""Idempotency-Key: a retry replays the first answer and writes nothing twice."""

import threading
from datetime import timedelta

import pytest
import requests
from sqlalchemy import text, update

from deployments_api.models import IdempotencyKey
from deployments_api.repositories.idempotency import _advisory_lock_id
from deployments_api.services.accounts import hash_token
from deployments_api.services.jobs import QueueSettings, reap
from deployments_api.types import utcnow
from deployments_api.unit_of_work import UnitOfWork


def keyed(key):
    return {"Idempotency-Key": key}


def test_a_retry_replays_the_first_answer_and_creates_nothing_more(api):
    user = api.user()
    first = api.post("eas", user, {"name": "Grid"}, headers=keyed("create-grid-1"))
    before = api.row_counts()
    again = api.post("eas", user, {"name": "Grid"}, headers=keyed("create-grid-1"))

    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert api.row_counts() == before
    assert len(api.get("eas", user).get_json()) == 1


def test_the_body_is_compared_by_content_not_by_formatting(api):
    user = api.user()
    first = api.post("eas", user, {"name": "Grid"}, headers=keyed("k"))
    spaced = api.request(
        "POST",
        "eas",
        user,
        data='{  "name" :  "Grid"  }',
        headers={**keyed("k"), "Content-Type": "application/json"},
    )
    assert spaced.status_code == 201
    assert spaced.get_json() == first.get_json()
    assert spaced.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize(
    "method, path_for, body",
    [
        ("POST", lambda ea: "eas", {"name": "Other name"}),
        ("POST", lambda ea: f"eas/{ea}/versions", {"version": "1.0"}),
    ],
    ids=["different-body", "different-path"],
)
def test_the_same_key_on_a_different_request_is_refused(api, method, path_for, body):
    user = api.user()
    ea = api.post("eas", user, {"name": "Grid"}, headers=keyed("shared")).get_json()
    before = api.row_counts()

    reused = api.request(method, path_for(ea["id"]), user, json=body, headers=keyed("shared"))

    assert reused.status_code == 422
    assert reused.get_json()["detail"] == "idempotency_key_reused"
    assert api.row_counts() == before


def test_keys_belong_to_one_user(api):
    alice, bob = api.user(), api.user()
    mine = api.post("eas", alice, {"name": "Grid"}, headers=keyed("same-key"))
    theirs = api.post("eas", bob, {"name": "Grid"}, headers=keyed("same-key"))

    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.get_json()["id"] != mine.get_json()["id"]


@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, "caf\u00e9", "tab\tinside", "del\x7f"],
    ids=["empty", "too-long", "non-ascii", "control-char", "delete-char"],
)
def test_a_malformed_key_is_a_validation_error(api, key):
    user = api.user()
    before = api.row_counts()
    response = api.post("eas", user, {"name": "Grid"}, headers=keyed(key))

    assert response.status_code == 422
    body = response.get_json()
    assert body["detail"] == "validation_error"
    assert "Idempotency-Key" in body["errors"]
    assert api.row_counts() == before


def test_the_longest_allowed_key_works(api):
    user = api.user()
    key = "~" * 255
    first = api.post("eas", user, {"name": "Grid"}, headers=keyed(key))
    again = api.post("eas", user, {"name": "Grid"}, headers=keyed(key))
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"


def test_an_error_is_not_stored_so_the_retry_runs_again(api):
    user = api.user()
    version = api.create_version(user)  # still pending: not deployable yet
    connection = api.connection(user)
    body = {
        "ea_version_id": version["id"],
        "broker_connection_id": connection["id"],
        "symbol": "EURUSD",
        "timeframe": "M15",
    }
    refused = api.post("deployments", user, body, headers=keyed("deploy-1"))
    assert refused.status_code == 422
    assert refused.get_json()["detail"] == "ea_not_compiled"
    assert api.row_counts()["idempotency_keys"] == 0

    api.finish_job(version["compile_job_id"], output_data={"artifact_storage_path": "a.ex5"})
    created = api.post("deployments", user, body, headers=keyed("deploy-1"))
    replayed = api.post("deployments", user, body, headers=keyed("deploy-1"))

    assert created.status_code == 201
    assert "Idempotent-Replayed" not in created.headers
    assert replayed.get_json() == created.get_json()
    assert api.row_counts()["ea_deployments"] == 1


def test_a_replayed_stop_returns_the_same_job_and_queues_no_other(api):
    user = api.user()
    deployment = api.deployment(user, "running")
    path = f"deployments/{deployment['id']}/stop"

    first = api.post(path, user, headers=keyed("stop-1"))
    again = api.post(path, user, headers=keyed("stop-1"))
    unkeyed = api.post(path, user)

    assert first.status_code == again.status_code == 202
    assert again.get_json() == first.get_json() == {"status": "stopping", "job_id": ANY_JOB}
    assert unkeyed.status_code == 409
    logs = api.get(f"deployments/{deployment['id']}/logs", user).get_json()
    assert [entry["job_type"] for entry in logs].count("stop") == 1


class _AnyString:
    def __eq__(self, other):
        return isinstance(other, str) and len(other) == 36


ANY_JOB = _AnyString()


def test_a_refused_move_is_not_stored_and_the_retry_runs_once_legal(api):
    user = api.user()
    deployment = api.deployment(user, "running")
    run_path = f"deployments/{deployment['id']}/run"

    refused = api.post(run_path, user, headers=keyed("run-1"))
    assert refused.status_code == 409
    assert refused.get_json() == {
        "detail": "invalid_transition",
        "message": "cannot run from running",
        "status": "running",
    }
    assert api.row_counts()["idempotency_keys"] == 0

    stop_job = api.post(f"deployments/{deployment['id']}/stop", user).get_json()["job_id"]
    api.finish_job(stop_job)
    started = api.post(run_path, user, headers=keyed("run-1"))
    assert started.status_code == 202
    assert started.get_json()["status"] == "starting"


def test_reap_purges_keys_past_their_lifetime_and_keeps_fresh_ones(app, api, engine):
    user = api.user()
    api.post("eas", user, {"name": "Old"}, headers=keyed("old"))
    api.post("eas", user, {"name": "New"}, headers=keyed("new"))
    with engine.begin() as connection:
        connection.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(created_at=utcnow() - timedelta(hours=25))
        )

    uow = UnitOfWork(app.extensions["deployments_db"].session_factory())
    counts = reap(uow, QueueSettings(), idempotency_ttl_hours=24)

    assert counts["idempotency_keys_purged"] == 1
    again = api.post("eas", user, {"name": "Old"}, headers=keyed("old"))
    assert "Idempotent-Replayed" not in again.headers  # the key was forgotten: it ran again
    kept = api.post("eas", user, {"name": "New"}, headers=keyed("new"))
    assert kept.headers["Idempotent-Replayed"] == "true"


@pytest.mark.postgres_only
def test_a_request_arriving_while_the_first_holds_the_key_is_told_it_is_in_flight(api, engine):
    """The first request is simulated by a transaction holding the key's advisory lock."""
    user = api.user()
    with engine.connect() as connection:
        owner = connection.execute(
            text("SELECT user_id FROM api_tokens WHERE token_hash = :hash"),
            {"hash": hash_token(user)},
        ).scalar()
    before = api.row_counts()
    with engine.begin() as holder:
        holder.execute(
            text("SELECT pg_advisory_xact_lock(:id)"),
            {"id": _advisory_lock_id(owner, "busy-key")},
        )
        response = api.post("eas", user, {"name": "Grid"}, headers=keyed("busy-key"))

    assert response.status_code == 409
    assert response.get_json()["detail"] == "idempotency_key_in_flight"
    assert api.row_counts() == before
    after = api.post("eas", user, {"name": "Grid"}, headers=keyed("busy-key"))
    assert after.status_code == 201


@pytest.mark.postgres_only
def test_racing_requests_with_one_key_execute_once(api, live_url):
    user = api.user()
    racers = 12
    barrier = threading.Barrier(racers)
    answers = []

    def send():
        barrier.wait()
        response = requests.post(
            f"{live_url}/api/v1/eas",
            json={"name": "Raced"},
            headers={"Authorization": f"Bearer {user}", **keyed("race")},
            timeout=30,
        )
        answers.append(response)

    threads = [threading.Thread(target=send) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    executed = [
        r for r in answers if r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    ]
    replayed = [r for r in answers if r.headers.get("Idempotent-Replayed") == "true"]
    in_flight = [r for r in answers if r.status_code == 409]
    assert len(executed) == 1
    assert len(executed) + len(replayed) + len(in_flight) == racers
    assert all(r.json()["detail"] == "idempotency_key_in_flight" for r in in_flight)
    assert all(r.json() == executed[0].json() for r in replayed)
    assert len(api.get("eas", user).get_json()) == 1
