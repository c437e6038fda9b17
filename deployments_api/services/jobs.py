"""The agent job queue: claim, heartbeat, result, and the reaper."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from ..errors import LeaseLost, NotFound, ValidationFailed
from ..models import Job
from ..types import utcnow
from ..unit_of_work import UnitOfWork
from .job_effects import apply_outcome, note_requeued

FINISHED = ("completed", "failed")
REAP_BATCH = 200


@dataclass(frozen=True)
class QueueSettings:
    lease_seconds: int = 60
    max_attempts: int = 3
    pending_timeout: int = 600

    @classmethod
    def from_config(cls, config) -> "QueueSettings":
        return cls(
            lease_seconds=config["JOB_LEASE_SECONDS"],
            max_attempts=config["JOB_MAX_ATTEMPTS"],
            pending_timeout=config["JOB_PENDING_TIMEOUT"],
        )


def get_job(uow: UnitOfWork, user_id: uuid.UUID, job_id: uuid.UUID) -> Job:
    with uow:
        job = uow.jobs.get_for_user(user_id, job_id)
    if job is None:
        raise NotFound("no such job")
    return job


def claim_job(uow: UnitOfWork, agent_id, job_types, settings: QueueSettings) -> Job | None:
    with uow:
        expire_leases(uow, utcnow(), settings)
        # The clock is read after expiry, which may have waited on row locks, so the new
        # lease starts at the hand-over and is not shortened by that wait.
        now = utcnow()
        return uow.jobs.claim_oldest_pending(
            agent_id, job_types, now, now + timedelta(seconds=settings.lease_seconds)
        )


def _locked_job(uow: UnitOfWork, job_id) -> Job:
    job = uow.jobs.get_for_update(job_id)
    if job is None:
        raise NotFound("no such job")
    return job


def _ensure_holds_lease(job: Job, agent_id, attempt, now) -> None:
    if not _holds_lease(job, agent_id, attempt, now):
        raise LeaseLost("this agent no longer holds the job's lease")


def _holds_lease(job: Job, agent_id, attempt, now) -> bool:
    return (
        job.status == "running"
        and job.claimed_by == agent_id
        and (attempt is None or attempt == job.attempts)
        and job.lease_expires_at is not None
        and now < job.lease_expires_at
    )


def heartbeat(uow: UnitOfWork, job_id, agent_id, attempt, settings: QueueSettings) -> Job:
    with uow:
        job = _locked_job(uow, job_id)
        now = utcnow()  # read after the lock wait, which the lease may not outlive
        _ensure_holds_lease(job, agent_id, attempt, now)
        job.lease_expires_at = now + timedelta(seconds=settings.lease_seconds)
        return job


def _is_same_report(job: Job, agent_id, attempt, report: dict) -> bool:
    return (
        job.claimed_by == agent_id
        and (attempt is None or attempt == job.attempts)
        and job.status == report["status"]
        and job.output_data == report.get("output_data")
        and job.error_message == report.get("error_message")
    )


def report_result(uow: UnitOfWork, job_id, agent_id, report: dict) -> Job:
    """Finish a job and apply its effect in one transaction.

    The same report sent again by the agent that made it changes nothing and answers
    like the first; any other report on a finished job is `lease_lost`.
    """
    attempt = report.get("attempt")
    with uow:
        job = _locked_job(uow, job_id)
        now = utcnow()  # read after the lock wait, which the lease may not outlive
        if job.status in FINISHED:
            if _is_same_report(job, agent_id, attempt, report):
                return job
            raise LeaseLost("the job is already finished")
        _ensure_holds_lease(job, agent_id, attempt, now)
        # Checked only for the lease holder: an agent without the job learns nothing more.
        output = report.get("output_data")
        if (
            job.job_type == "compile"
            and report["status"] == "completed"
            and not (output or {}).get("artifact_storage_path")
        ):
            raise ValidationFailed(
                errors={"output_data.artifact_storage_path": ["required for a completed compile"]}
            )
        job.status = report["status"]
        job.output_data = output
        job.error_message = report.get("error_message")
        job.completed_at = now
        job.lease_expires_at = None
        apply_outcome(uow, job, source="agent", kind="job_result")
        return job


def _fail(job: Job, reason: str, now) -> None:
    job.status = "failed"
    job.error_message = reason
    job.completed_at = now
    job.lease_expires_at = None
    job.pending_since = None
    job.claimed_by = None


def expire_leases(uow: UnitOfWork, now, settings: QueueSettings, limit=REAP_BATCH) -> int:
    """Send running jobs whose lease has passed back to pending, or fail them for good."""
    jobs = uow.jobs.expired_leases_for_update(now, limit)
    for job in jobs:
        if job.attempts >= settings.max_attempts:
            _fail(job, "lease_expired", now)
            apply_outcome(uow, job, source="reaper", kind="lease_expired")
        else:
            job.status = "pending"
            job.claimed_by = None
            job.lease_expires_at = None
            job.pending_since = now
            note_requeued(uow, job, settings.max_attempts)
    return len(jobs)


def fail_unclaimed(uow: UnitOfWork, now, settings: QueueSettings, limit=REAP_BATCH) -> int:
    cutoff = now - timedelta(seconds=settings.pending_timeout)
    jobs = uow.jobs.unclaimed_since_for_update(cutoff, limit)
    for job in jobs:
        _fail(job, "no_agent", now)
        apply_outcome(uow, job, source="reaper", kind="job_result")
    return len(jobs)


def reap(uow: UnitOfWork, settings: QueueSettings, idempotency_ttl_hours: int = 24) -> dict:
    """Apply lease expiry and pending timeouts now, in small transactions; purge old keys."""
    counts = {"leases_expired": 0, "unclaimed_failed": 0, "idempotency_keys_purged": 0}
    for name, step in (("leases_expired", expire_leases), ("unclaimed_failed", fail_unclaimed)):
        while True:
            with uow:
                done = step(uow, utcnow(), settings)
            counts[name] += done
            if done < REAP_BATCH:
                break
    with uow:
        cutoff = utcnow() - timedelta(hours=idempotency_ttl_hours)
        counts["idempotency_keys_purged"] = uow.idempotency_keys.delete_created_before(cutoff)
    return counts
