import hashlib
import uuid
from datetime import datetime

from sqlalchemy import delete, func, select

from ..models import IdempotencyKey


def _advisory_lock_id(user_id: uuid.UUID, key: str) -> int:
    digest = hashlib.sha256(f"{user_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class IdempotencyKeyRepository:
    def __init__(self, session):
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def try_hold(self, user_id: uuid.UUID, key: str) -> bool:
        """Hold (user, key) until the transaction ends; False if another request holds it.

        Postgres: a transaction-scoped advisory lock, released by commit or rollback.
        SQLite: BEGIN IMMEDIATE already made this transaction the only writer.
        """
        if self.dialect != "postgresql":
            return True
        return bool(
            self.session.scalar(
                select(func.pg_try_advisory_xact_lock(_advisory_lock_id(user_id, key)))
            )
        )

    def get(self, user_id: uuid.UUID, key: str) -> IdempotencyKey | None:
        return self.session.scalars(
            select(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
            )
        ).one_or_none()

    def add(self, record: IdempotencyKey) -> None:
        self.session.add(record)
        self.session.flush()

    def delete_created_before(self, cutoff: datetime) -> int:
        result = self.session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff)
        )
        return result.rowcount or 0
