import uuid

from sqlalchemy import select

from ..models import BrokerConnection


class BrokerConnectionRepository:
    def __init__(self, session):
        self.session = session

    def add(self, connection: BrokerConnection) -> BrokerConnection:
        self.session.add(connection)
        self.session.flush()
        return connection

    def list_for_user(self, user_id: uuid.UUID) -> list[BrokerConnection]:
        return list(
            self.session.scalars(
                select(BrokerConnection)
                .where(BrokerConnection.user_id == user_id)
                .order_by(BrokerConnection.created_at.desc(), BrokerConnection.id)
            )
        )

    def get_for_user(
        self, user_id: uuid.UUID, connection_id: uuid.UUID, *, lock=False
    ) -> BrokerConnection | None:
        """`lock=True` serializes deployment creates on one connection (magic numbers)."""
        query = select(BrokerConnection).where(
            BrokerConnection.id == connection_id, BrokerConnection.user_id == user_id
        )
        if lock:
            query = query.with_for_update()
        return self.session.scalars(query).one_or_none()
