import uuid

from sqlalchemy import func, select

from ..models import DeploymentEvent
from ..types import utcnow


class DeploymentEventRepository:
    """Append-only history. Callers hold the deployment's row lock while appending."""

    def __init__(self, session):
        self.session = session

    def append(self, deployment_id: uuid.UUID, **fields) -> DeploymentEvent:
        last = self.session.scalar(
            select(func.max(DeploymentEvent.seq)).where(
                DeploymentEvent.deployment_id == deployment_id
            )
        )
        event = DeploymentEvent(
            deployment_id=deployment_id, seq=(last or 0) + 1, at=utcnow(), **fields
        )
        self.session.add(event)
        self.session.flush()
        return event

    def _for_deployment(self, deployment_id: uuid.UUID):
        return select(DeploymentEvent).where(DeploymentEvent.deployment_id == deployment_id)

    def count(self, deployment_id: uuid.UUID) -> int:
        query = self._for_deployment(deployment_id).subquery()
        return self.session.scalar(select(func.count()).select_from(query))

    def page_newest_first(
        self, deployment_id: uuid.UUID, offset: int, limit: int
    ) -> list[DeploymentEvent]:
        query = (
            self._for_deployment(deployment_id)
            .order_by(DeploymentEvent.seq.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(self.session.scalars(query))
