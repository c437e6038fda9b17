"""SQLAlchemy 2.x declarative models: the tables and nothing else.

Behaviour lives in services and `states.py`; SQL lives in repositories.
"""

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .types import ExactDecimal, JSONDocument, UTCDateTime, utcnow


class Base(DeclarativeBase):
    pass


def _id() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


def _created_at() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, nullable=False, default=utcnow)


def _user_fk() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = _id()
    email: Mapped[str] = mapped_column(String(320), nullable=False, unique=True)
    created_at: Mapped[datetime] = _created_at()


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created_at()


class ApiToken(Base):
    """A bearer token, stored only as its sha-256 hex digest."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint("kind IN ('user', 'agent')", name="ck_api_tokens_kind"),
        CheckConstraint(
            "(kind = 'user' AND user_id IS NOT NULL AND agent_id IS NULL)"
            " OR (kind = 'agent' AND agent_id IS NOT NULL AND user_id IS NULL)",
            name="ck_api_tokens_owner",
        ),
    )
    id: Mapped[uuid.UUID] = _id()
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = _created_at()


class EA(Base):
    __tablename__ = "eas"
    __table_args__ = (Index("ix_eas_user_created", "user_id", "created_at"),)
    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[datetime] = _created_at()


class EAVersion(Base):
    __tablename__ = "ea_versions"
    __table_args__ = (UniqueConstraint("ea_id", "version", name="uq_ea_versions_ea_version"),)
    id: Mapped[uuid.UUID] = _id()
    ea_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("eas.id", ondelete="CASCADE"), nullable=False
    )
    version: Mapped[str] = mapped_column(String(50), nullable=False)
    source_storage_path: Mapped[str | None] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    artifact_storage_path: Mapped[str | None] = mapped_column(String(1024))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()


class BrokerConnection(Base):
    """Where a deployment trades. Deliberately has no password: credentials live on the agent."""

    __tablename__ = "broker_connections"
    __table_args__ = (Index("ix_broker_connections_user_created", "user_id", "created_at"),)
    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    server: Mapped[str] = mapped_column(String(100), nullable=False)
    login: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = _created_at()


class Deployment(Base):
    """An EA version running (or meant to run) on a broker connection.

    `status` is only ever changed by firing a trigger of `states.DEPLOYMENT_MACHINE`.
    """

    __tablename__ = "ea_deployments"
    __table_args__ = (
        Index("ix_ea_deployments_user_created", "user_id", "created_at", "id"),
        # A failed deployment frees its magic number; every other one holds it.
        Index(
            "uq_ea_deployments_connection_magic",
            "broker_connection_id",
            "magic_number",
            unique=True,
            postgresql_where=text("status <> 'error'"),
            sqlite_where=text("status <> 'error'"),
        ),
    )
    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    ea_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ea_versions.id", ondelete="CASCADE"), nullable=False, index=True
    )
    broker_connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("broker_connections.id", ondelete="CASCADE"), nullable=False
    )
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    timeframe: Mapped[str] = mapped_column(String(3), nullable=False)
    magic_number: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow
    )


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # The claim's "oldest pending job" is an index lookup however many finished jobs exist.
        Index(
            "ix_jobs_pending_fifo",
            "created_at",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(
            "ix_jobs_running_lease",
            "lease_expires_at",
            postgresql_where=text("status = 'running'"),
            sqlite_where=text("status = 'running'"),
        ),
        Index("ix_jobs_deployment", "deployment_id"),
        Index("ix_jobs_ea_version", "ea_version_id"),
    )
    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID] = _user_fk()
    job_type: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    input_data: Mapped[dict] = mapped_column(JSONDocument, nullable=False)
    output_data: Mapped[dict | None] = mapped_column(JSONDocument)
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    claimed_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pending_since: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = _created_at()
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ea_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ea_versions.id", ondelete="CASCADE")
    )
    deployment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ea_deployments.id", ondelete="CASCADE")
    )


class Trade(Base):
    __tablename__ = "trades"
    __table_args__ = (
        UniqueConstraint("deployment_id", "ticket", name="uq_trades_deployment_ticket"),
        Index("ix_trades_deployment_closed", "deployment_id", "closed_at"),
    )
    id: Mapped[uuid.UUID] = _id()
    deployment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ea_deployments.id", ondelete="CASCADE"), nullable=False
    )
    ticket: Mapped[int] = mapped_column(BigInteger, nullable=False)
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    volume: Mapped[Decimal] = mapped_column(ExactDecimal(24, 6), nullable=False)
    profit: Mapped[Decimal] = mapped_column(ExactDecimal(24, 6), nullable=False)
    swap: Mapped[Decimal] = mapped_column(ExactDecimal(24, 6), nullable=False)
    commission: Mapped[Decimal] = mapped_column(ExactDecimal(24, 6), nullable=False)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class DeploymentEvent(Base):
    """One line of a deployment's history: every status change, and every refused move."""

    __tablename__ = "deployment_events"
    __table_args__ = (
        UniqueConstraint("deployment_id", "seq", name="uq_deployment_events_deployment_seq"),
    )
    id: Mapped[uuid.UUID] = _id()
    # Position in the deployment's history (1, 2, ...): written under the deployment's row
    # lock, so it orders events exactly even when two land in the same microsecond.
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    deployment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ea_deployments.id", ondelete="CASCADE"), nullable=False
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    trigger: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(8), nullable=False)
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    message: Mapped[str | None] = mapped_column(Text)


class IdempotencyKey(Base):
    """A stored first response for an `Idempotency-Key`, written in the transaction it guards."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),
        Index("ix_idempotency_keys_created", "created_at"),
    )
    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    response_status: Mapped[int] = mapped_column(Integer, nullable=False)
    response_body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _created_at()
