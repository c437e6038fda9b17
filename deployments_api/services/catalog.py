"""EAs, their versions (each starting a compile job) and broker connections."""

import uuid

from ..errors import NotFound, VersionExists
from ..models import BrokerConnection, EAVersion, Job
from ..unit_of_work import UnitOfWork


def create_ea(uow: UnitOfWork, user_id: uuid.UUID, name: str):
    with uow:
        return uow.eas.add(user_id, name)


def list_eas(uow: UnitOfWork, user_id: uuid.UUID):
    with uow:
        return uow.eas.list_for_user(user_id)


def create_version(
    uow: UnitOfWork, user_id: uuid.UUID, ea_id: uuid.UUID, version: str, source_path: str | None
) -> tuple[EAVersion, Job]:
    """Add a version and the compile job that will build it, in one transaction."""
    with uow:
        # Locking the EA serializes two creates of the same version string.
        ea = uow.eas.get_for_user(user_id, ea_id, lock=True)
        if ea is None:
            raise NotFound("no such EA")
        if uow.ea_versions.exists(ea_id, version):
            raise VersionExists(f"EA already has version {version!r}")
        ea_version = uow.ea_versions.add(
            EAVersion(ea_id=ea_id, version=version, source_storage_path=source_path)
        )
        job = uow.jobs.add(
            Job(
                user_id=user_id,
                job_type="compile",
                ea_version_id=ea_version.id,
                input_data={
                    "ea_version_id": str(ea_version.id),
                    "source_storage_path": source_path,
                },
            )
        )
        return ea_version, job


def get_version(uow: UnitOfWork, user_id: uuid.UUID, version_id: uuid.UUID):
    with uow:
        found = uow.ea_versions.get_with_ea_for_user(user_id, version_id)
    if found is None:
        raise NotFound("no such EA version")
    return found


def create_broker_connection(uow: UnitOfWork, user_id: uuid.UUID, fields: dict):
    with uow:
        return uow.broker_connections.add(BrokerConnection(user_id=user_id, **fields))


def list_broker_connections(uow: UnitOfWork, user_id: uuid.UUID):
    with uow:
        return uow.broker_connections.list_for_user(user_id)
