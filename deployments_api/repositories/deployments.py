import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, exists, func, select, type_coerce
from sqlalchemy.orm import aliased

from ..models import EA, Deployment, EAVersion, Trade
from ..types import ExactDecimal

MAX_MAGIC_NUMBER = 2**63 - 1


@dataclass(frozen=True)
class DeploymentView:
    """A deployment with what the list shows beside it, all read in one statement."""

    deployment: Deployment
    ea_id: uuid.UUID
    ea_name: str
    version: str
    trade_count: int
    pnl_today: Decimal


class DeploymentRepository:
    def __init__(self, session):
        self.session = session

    def add(self, deployment: Deployment) -> Deployment:
        self.session.add(deployment)
        self.session.flush()
        return deployment

    def exists(self, deployment_id: uuid.UUID) -> bool:
        return bool(self.session.scalar(select(exists().where(Deployment.id == deployment_id))))

    def get_for_user(self, user_id: uuid.UUID, deployment_id: uuid.UUID) -> Deployment | None:
        return self.session.scalars(
            select(Deployment).where(Deployment.id == deployment_id, Deployment.user_id == user_id)
        ).one_or_none()

    def get_for_update(
        self, deployment_id: uuid.UUID, user_id: uuid.UUID | None = None
    ) -> Deployment | None:
        """Load and row-lock a deployment; the lock is held until the transaction ends."""
        query = select(Deployment).where(Deployment.id == deployment_id)
        if user_id is not None:
            query = query.where(Deployment.user_id == user_id)
        query = query.with_for_update().execution_options(populate_existing=True)
        return self.session.scalars(query).one_or_none()

    # -- magic numbers (callers hold the broker connection's row lock) -----------------

    def _holding_magic_numbers(self, connection_id: uuid.UUID, alias=Deployment):
        return and_(alias.broker_connection_id == connection_id, alias.status != "error")

    def magic_number_taken(self, connection_id: uuid.UUID, magic_number: int) -> bool:
        query = select(
            exists().where(
                self._holding_magic_numbers(connection_id),
                Deployment.magic_number == magic_number,
            )
        )
        return bool(self.session.scalar(query))

    def smallest_free_magic_number(self, connection_id: uuid.UUID) -> int | None:
        if not self.magic_number_taken(connection_id, 1):
            return 1
        taken = aliased(Deployment)
        following = aliased(Deployment)
        candidate = taken.magic_number + 1
        query = select(func.min(candidate)).where(
            self._holding_magic_numbers(connection_id, taken),
            taken.magic_number < MAX_MAGIC_NUMBER,
            ~exists().where(
                self._holding_magic_numbers(connection_id, following),
                following.magic_number == candidate,
            ),
        )
        return self.session.scalar(query)

    # -- reads with the list's computed columns ----------------------------------------

    def _views(self, user_id: uuid.UUID, day_start: datetime):
        trade_count = (
            select(func.count())
            .where(Trade.deployment_id == Deployment.id)
            .correlate(Deployment)
            .scalar_subquery()
        )
        pnl_today = (
            select(
                type_coerce(
                    func.coalesce(func.sum(Trade.profit + Trade.swap + Trade.commission), 0),
                    ExactDecimal(),
                )
            )
            .where(Trade.deployment_id == Deployment.id, Trade.closed_at >= day_start)
            .correlate(Deployment)
            .scalar_subquery()
        )
        return (
            select(
                Deployment,
                EA.id,
                EA.name,
                EAVersion.version,
                trade_count,
                type_coerce(pnl_today, ExactDecimal()),
            )
            .join(EAVersion, EAVersion.id == Deployment.ea_version_id)
            .join(EA, EA.id == EAVersion.ea_id)
            .where(Deployment.user_id == user_id)
        )

    @staticmethod
    def _to_view(row) -> DeploymentView:
        deployment, ea_id, ea_name, version, trade_count, pnl_today = row
        return DeploymentView(
            deployment, ea_id, ea_name, version, int(trade_count or 0), pnl_today or Decimal(0)
        )

    def view_for_user(
        self, user_id: uuid.UUID, deployment_id: uuid.UUID, day_start: datetime
    ) -> DeploymentView | None:
        # populate_existing: a session that already holds this deployment (the wait polls
        # in one request session) must see the row as it is now, not as first loaded.
        query = (
            self._views(user_id, day_start)
            .where(Deployment.id == deployment_id)
            .execution_options(populate_existing=True)
        )
        row = self.session.execute(query).one_or_none()
        return self._to_view(row) if row else None

    def _filtered(self, query, status: str | None):
        return query.where(Deployment.status == status) if status else query

    def count_for_user(self, user_id: uuid.UUID, status: str | None) -> int:
        query = self._filtered(select(Deployment.id).where(Deployment.user_id == user_id), status)
        return self.session.scalar(select(func.count()).select_from(query.subquery()))

    def page_for_user(
        self,
        user_id: uuid.UUID,
        status: str | None,
        day_start: datetime,
        offset: int,
        limit: int,
    ) -> list[DeploymentView]:
        query = (
            self._filtered(self._views(user_id, day_start), status)
            .order_by(Deployment.created_at.desc(), Deployment.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [self._to_view(row) for row in self.session.execute(query)]
