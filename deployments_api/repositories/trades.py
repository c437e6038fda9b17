import uuid

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..models import Trade
from ..types import utcnow

_UPDATED_ON_RESEND = ("symbol", "volume", "profit", "swap", "commission", "closed_at", "updated_at")


class TradeRepository:
    def __init__(self, session):
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def upsert(self, deployment_id: uuid.UUID, trades: list[dict]) -> None:
        """Insert trades keyed by (deployment, ticket); a ticket sent again is updated.

        `trades` must not repeat a ticket (Postgres refuses to update a row twice in
        one statement); the service keeps the last report of each ticket.
        """
        if not trades:
            return
        now = utcnow()
        rows = [
            {
                "id": uuid.uuid4(),
                "deployment_id": deployment_id,
                "created_at": now,
                "updated_at": now,
                **trade,
            }
            for trade in trades
        ]
        insert = postgresql_insert if self.dialect == "postgresql" else sqlite_insert
        statement = insert(Trade).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=[Trade.deployment_id, Trade.ticket],
            set_={name: statement.excluded[name] for name in _UPDATED_ON_RESEND},
        )
        self.session.execute(statement)
