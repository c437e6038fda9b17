"""What a finished job does to the thing it is about, per job type.

Called inside the transaction that finishes the job (an agent's result, a lease that
ran out of attempts, or a job nobody claimed), so the job and its effect commit together.
"""

from ..models import Job
from ..states import IllegalTransition, fire
from ..unit_of_work import UnitOfWork
from .history import record_move, record_refusal


def apply_outcome(uow: UnitOfWork, job: Job, *, source: str, kind: str) -> None:
    EFFECTS[job.job_type](uow, job, source=source, kind=kind)


def _compile_effect(uow: UnitOfWork, job: Job, **_context) -> None:
    version = uow.ea_versions.get_for_update(job.ea_version_id)
    if version is None or version.status != "pending":
        return  # the version was already decided by an earlier compile job
    if job.status == "completed":
        version.status = "compiled"
        version.artifact_storage_path = job.output_data["artifact_storage_path"]
        version.error_message = None
    else:
        version.status = "failed"
        version.error_message = job.error_message


def _deployment_effect(uow: UnitOfWork, job: Job, *, source: str, kind: str) -> None:
    deployment = uow.deployments.get_for_update(job.deployment_id)
    if deployment is None:
        return
    succeeded = job.status == "completed"
    trigger = f"{job.job_type}_{'succeeded' if succeeded else 'failed'}"
    try:
        before, after = fire(deployment, trigger)
    except IllegalTransition as refused:
        # A stale result (say, for a deployment that has since moved on) is kept on
        # the job and in the history, and leaves the deployment as it is.
        message = f"{refused}: {job.job_type} job result not applied"
        record_refusal(uow, deployment, refused, source, job=job, message=message)
        return
    deployment.last_error = None if succeeded else job.error_message
    record_move(
        uow,
        deployment,
        kind,
        source,
        before=before,
        after=after,
        trigger=trigger,
        job=job,
        message=job.error_message,
    )


def note_requeued(uow: UnitOfWork, job: Job, max_attempts: int) -> None:
    """Record on the deployment's history that its job went back to pending."""
    if job.deployment_id is None:
        return
    deployment = uow.deployments.get_for_update(job.deployment_id)
    if deployment is None:
        return
    message = f"lease expired after attempt {job.attempts} of {max_attempts}; job pending again"
    status = deployment.status
    record_move(
        uow,
        deployment,
        "lease_expired",
        "reaper",
        before=status,
        after=status,
        job=job,
        message=message,
    )


EFFECTS = {
    "compile": _compile_effect,
    "deploy": _deployment_effect,
    "run": _deployment_effect,
    "stop": _deployment_effect,
}
JOB_TYPES = tuple(EFFECTS)
