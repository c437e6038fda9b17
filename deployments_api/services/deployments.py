"""Deployment use cases: create, read, run, stop, wait, logs, history, trades."""

import time
import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from ..errors import (
    BrokerConnectionNotFound,
    EANotCompiled,
    EAVersionNotFound,
    InvalidTransition,
    MagicNumberInUse,
    NotFound,
    StatusUnreachable,
    WaitTimeout,
)
from ..models import Deployment, Job
from ..repositories.deployments import DeploymentView
from ..states import ERROR, INITIAL_STATUS, IllegalTransition, fire
from ..unit_of_work import UnitOfWork
from .history import record_move, record_refusal

WAIT_POLL_SECONDS = 0.2


def deployment_job_input(deployment: Deployment, artifact_storage_path: str | None) -> dict:
    """What every deploy/run/stop job carries, so any agent can act on it."""
    return {
        "deployment_id": str(deployment.id),
        "artifact_storage_path": artifact_storage_path,
        "symbol": deployment.symbol,
        "timeframe": deployment.timeframe,
        "magic_number": deployment.magic_number,
        "broker_connection_id": str(deployment.broker_connection_id),
    }


def _new_job(deployment: Deployment, job_type: str, artifact_path: str | None) -> Job:
    return Job(
        user_id=deployment.user_id,
        job_type=job_type,
        deployment_id=deployment.id,
        input_data=deployment_job_input(deployment, artifact_path),
    )


def create_deployment(uow: UnitOfWork, user_id: uuid.UUID, fields: dict) -> tuple[Deployment, Job]:
    """Insert a `deploying` deployment and its deploy job in one transaction."""
    with uow:
        found = uow.ea_versions.get_with_ea_for_user(user_id, fields["ea_version_id"])
        if found is None:
            raise EAVersionNotFound("no such EA version")
        version, _ea = found
        connection_id = fields["broker_connection_id"]
        # The connection's row lock serializes creates on it, so magic numbers are
        # checked and assigned without two requests picking the same one.
        if uow.broker_connections.get_for_user(user_id, connection_id, lock=True) is None:
            raise BrokerConnectionNotFound("no such broker connection")
        if version.status != "compiled":
            raise EANotCompiled(f"EA version is {version.status}, not compiled")
        magic_number = fields.get("magic_number")
        if magic_number is None:
            magic_number = uow.deployments.smallest_free_magic_number(connection_id)
        if magic_number is None or uow.deployments.magic_number_taken(connection_id, magic_number):
            raise MagicNumberInUse("another deployment on this connection uses that magic number")
        deployment = Deployment(
            user_id=user_id,
            ea_version_id=version.id,
            broker_connection_id=connection_id,
            symbol=fields["symbol"],
            timeframe=fields["timeframe"],
            magic_number=magic_number,
            status=INITIAL_STATUS,
        )
        try:
            uow.deployments.add(deployment)
        except IntegrityError as exc:  # the partial unique index, should a lock ever be missed
            raise MagicNumberInUse("magic number taken concurrently") from exc
        job = uow.jobs.add(_new_job(deployment, "deploy", version.artifact_storage_path))
        record_move(uow, deployment, "created", "api", before=None, after=INITIAL_STATUS, job=job)
        return deployment, job


def request_move(
    uow: UnitOfWork, user_id: uuid.UUID, deployment_id: uuid.UUID, trigger: str
) -> tuple[Deployment, Job]:
    """`run` or `stop`: fire the trigger under the row lock and queue its job.

    Of racing requests exactly one wins; the others see the moved status and are
    refused. A refusal is recorded in the history (and that write is kept).
    """
    with uow:
        deployment = uow.deployments.get_for_update(deployment_id, user_id)
        if deployment is None:
            raise NotFound("no such deployment")
        try:
            before, after = fire(deployment, trigger)
        except IllegalTransition as refused:
            record_refusal(uow, deployment, refused, "api")
            raise InvalidTransition(str(refused), status=refused.status) from refused
        version = uow.ea_versions.get(deployment.ea_version_id)
        job = uow.jobs.add(_new_job(deployment, trigger, version.artifact_storage_path))
        record_move(
            uow,
            deployment,
            "transition",
            "api",
            before=before,
            after=after,
            trigger=trigger,
            job=job,
        )
        return deployment, job


def get_view(
    uow: UnitOfWork, user_id: uuid.UUID, deployment_id: uuid.UUID, day_start: datetime
) -> DeploymentView:
    with uow:
        view = uow.deployments.view_for_user(user_id, deployment_id, day_start)
    if view is None:
        raise NotFound("no such deployment")
    return view


def list_views(uow: UnitOfWork, user_id, status, day_start, offset, limit):
    with uow:
        total = uow.deployments.count_for_user(user_id, status)
        views = uow.deployments.page_for_user(user_id, status, day_start, offset, limit)
    return total, views


def wait_for_status(
    uow: UnitOfWork, user_id, deployment_id, target: str, timeout: float, day_start
) -> DeploymentView:
    """Poll in short transactions (never one held across the wait) until `target`."""
    deadline = time.monotonic() + timeout
    while True:
        view = get_view(uow, user_id, deployment_id, day_start)
        status = view.deployment.status
        if status == target:
            return view
        if status == ERROR:
            raise StatusUnreachable("the deployment is in error", status=status)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(f"still {status} after {timeout:g}s", status=status)
        time.sleep(min(WAIT_POLL_SECONDS, remaining))


def _owned(uow: UnitOfWork, user_id, deployment_id) -> Deployment:
    deployment = uow.deployments.get_for_user(user_id, deployment_id)
    if deployment is None:
        raise NotFound("no such deployment")
    return deployment


def logs(uow: UnitOfWork, user_id, deployment_id, limit: int) -> list[Job]:
    with uow:
        _owned(uow, user_id, deployment_id)
        return uow.jobs.for_deployment_newest_first(deployment_id, limit)


def events_page(uow: UnitOfWork, user_id, deployment_id, offset: int, limit: int):
    with uow:
        _owned(uow, user_id, deployment_id)
        total = uow.events.count(deployment_id)
        return total, uow.events.page_newest_first(deployment_id, offset, limit)


def record_trades(uow: UnitOfWork, deployment_id: uuid.UUID, trades: list[dict]) -> int:
    """Upsert trades by (deployment, ticket); returns how many the request carried."""
    latest_by_ticket = {trade["ticket"]: trade for trade in trades}
    with uow:
        if not uow.deployments.exists(deployment_id):
            raise NotFound("no such deployment")
        uow.trades.upsert(deployment_id, list(latest_by_ticket.values()))
    return len(trades)
