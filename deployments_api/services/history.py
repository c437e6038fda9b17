"""Writing a deployment's history. Callers hold the deployment's row lock."""

from ..models import Deployment, Job
from ..states import IllegalTransition
from ..unit_of_work import UnitOfWork


def record_move(
    uow: UnitOfWork,
    deployment: Deployment,
    kind: str,
    source: str,
    *,
    before: str | None,
    after: str | None,
    trigger: str | None = None,
    job: Job | None = None,
    message: str | None = None,
) -> None:
    uow.events.append(
        deployment.id,
        kind=kind,
        from_status=before,
        to_status=after,
        trigger=trigger,
        source=source,
        job_id=job.id if job is not None else None,
        message=message,
    )


def record_refusal(
    uow: UnitOfWork,
    deployment: Deployment,
    refused: IllegalTransition,
    source: str,
    *,
    job: Job | None = None,
    message: str | None = None,
) -> None:
    """A move the state machine refused: kept in the history even though nothing moved."""
    record_move(
        uow,
        deployment,
        "refused",
        source,
        before=refused.status,
        after=None,
        trigger=refused.trigger,
        job=job,
        message=message or str(refused),
    )
