"""The agent job queue: claim, heartbeat, lease_lost and results.

Lease expiry, the reaper and the agents list are in test_lease_expiry_and_agents.py.
"""

import uuid
from datetime import timedelta

import pytest

from deployments_api.models import EAVersion, Job
from deployments_api.types import utcnow

from .helpers import (
    ARTIFACT,
    assert_error,
    compile_jobs,
    expire_lease,
    parse_time,
    row,
    set_job,
)

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


def test_an_agent_without_the_lease_gets_lease_lost_before_any_body_check(api, engine):
    [version] = compile_jobs(api, api.user(), 1)
    claimed = api.claim_job(version["compile_job_id"])
    job_before = row(engine, Job, claimed["id"])

    intruder = api.report(claimed, "completed", agent_token=api.agent())  # no artifact path

    assert_error(intruder, 409, "lease_lost")
    assert row(engine, Job, claimed["id"]) == job_before
