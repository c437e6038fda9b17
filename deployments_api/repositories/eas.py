import uuid

from sqlalchemy import select

from ..models import EA, EAVersion


class EARepository:
    def __init__(self, session):
        self.session = session

    def add(self, user_id: uuid.UUID, name: str) -> EA:
        ea = EA(user_id=user_id, name=name)
        self.session.add(ea)
        self.session.flush()
        return ea

    def list_for_user(self, user_id: uuid.UUID) -> list[EA]:
        return list(
            self.session.scalars(
                select(EA).where(EA.user_id == user_id).order_by(EA.created_at.desc(), EA.id)
            )
        )

    def get_for_user(self, user_id: uuid.UUID, ea_id: uuid.UUID, *, lock=False) -> EA | None:
        query = select(EA).where(EA.id == ea_id, EA.user_id == user_id)
        if lock:
            query = query.with_for_update()
        return self.session.scalars(query).one_or_none()


class EAVersionRepository:
    def __init__(self, session):
        self.session = session

    def add(self, version: EAVersion) -> EAVersion:
        self.session.add(version)
        self.session.flush()
        return version

    def exists(self, ea_id: uuid.UUID, version: str) -> bool:
        query = select(EAVersion.id).where(EAVersion.ea_id == ea_id, EAVersion.version == version)
        return self.session.scalar(query) is not None

    def get_with_ea_for_user(
        self, user_id: uuid.UUID, version_id: uuid.UUID
    ) -> tuple[EAVersion, EA] | None:
        row = self.session.execute(
            select(EAVersion, EA)
            .join(EA, EA.id == EAVersion.ea_id)
            .where(EAVersion.id == version_id, EA.user_id == user_id)
        ).one_or_none()
        return (row[0], row[1]) if row else None

    def get(self, version_id: uuid.UUID) -> EAVersion | None:
        return self.session.get(EAVersion, version_id)

    def get_for_update(self, version_id: uuid.UUID) -> EAVersion | None:
        return self.session.scalars(
            select(EAVersion)
            .where(EAVersion.id == version_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
