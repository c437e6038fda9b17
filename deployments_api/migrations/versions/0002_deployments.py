"""Deployments: ea_deployments, trades, deployment_events, jobs.deployment_id.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from deployments_api.types import ExactDecimal, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "ea_deployments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("ea_version_id", sa.Uuid(), nullable=False),
        sa.Column("broker_connection_id", sa.Uuid(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("timeframe", sa.String(length=3), nullable=False),
        sa.Column("magic_number", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["broker_connection_id"], ["broker_connections.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["ea_version_id"], ["ea_versions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ea_deployments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ea_deployments_ea_version_id"),
            ["ea_version_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_ea_deployments_user_created",
            ["user_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "uq_ea_deployments_connection_magic",
            ["broker_connection_id", "magic_number"],
            unique=True,
            postgresql_where=sa.text("status <> 'error'"),
            sqlite_where=sa.text("status <> 'error'"),
        )
    op.create_table(
        "trades",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("ticket", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("volume", ExactDecimal(24, 6), nullable=False),
        sa.Column("profit", ExactDecimal(24, 6), nullable=False),
        sa.Column("swap", ExactDecimal(24, 6), nullable=False),
        sa.Column("commission", ExactDecimal(24, 6), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["ea_deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment_id", "ticket", name="uq_trades_deployment_ticket"),
    )
    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.create_index(
            "ix_trades_deployment_closed", ["deployment_id", "closed_at"], unique=False
        )
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("trigger", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["deployment_id"], ["ea_deployments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment_id", "seq", name="uq_deployment_events_deployment_seq"),
    )
    # ### end Alembic commands ###
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deployment_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            "fk_jobs_deployment_id",
            "ea_deployments",
            ["deployment_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index("ix_jobs_deployment", ["deployment_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_deployment")
        batch_op.drop_constraint("fk_jobs_deployment_id", type_="foreignkey")
        batch_op.drop_column("deployment_id")
    for table in ("deployment_events", "trades", "ea_deployments"):
        op.drop_table(table)
