import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, update

from ..models import Job


class JobRepository:
    def __init__(self, session):
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def add(self, job: Job) -> Job:
        self.session.add(job)
        self.session.flush()
        return job

    def get_for_user(self, user_id: uuid.UUID, job_id: uuid.UUID) -> Job | None:
        return self.session.scalars(
            select(Job).where(Job.id == job_id, Job.user_id == user_id)
        ).one_or_none()

    def get_for_update(self, job_id: uuid.UUID) -> Job | None:
        return self.session.scalars(
            select(Job)
            .where(Job.id == job_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()

    def _lock_skipping_held(self, query):
        # Postgres: rows another transaction holds are skipped, not waited for.
        # SQLite: the whole database is already write-locked by BEGIN IMMEDIATE.
        if self.dialect == "postgresql":
            return query.with_for_update(skip_locked=True)
        return query

    def claim_oldest_pending(
        self,
        agent_id: uuid.UUID,
        job_types: Sequence[str] | None,
        now: datetime,
        lease_expires_at: datetime,
    ) -> Job | None:
        """Hand the oldest pending job to `agent_id` in one statement.

        The CTE picks and locks exactly one row (`FOR UPDATE SKIP LOCKED` on Postgres)
        and the UPDATE joins it, so two agents can never receive the same job.
        """
        # A job that another transaction sent back by lease expiry after this claim read
        # its clock waits for the next claim: handing it out now would stamp the new
        # lease as starting before the previous holder's lease ended.
        picked = select(Job.id).where(
            Job.status == "pending", or_(Job.attempts == 0, Job.pending_since <= now)
        )
        if job_types:
            picked = picked.where(Job.job_type.in_(list(job_types)))
        picked = picked.order_by(Job.created_at, Job.id).limit(1)
        picked = self._lock_skipping_held(picked).cte("picked")
        statement = (
            update(Job)
            .where(Job.id == picked.c.id)
            .values(
                status="running",
                attempts=Job.attempts + 1,
                claimed_by=agent_id,
                started_at=now,
                lease_expires_at=lease_expires_at,
                pending_since=None,
            )
            .returning(Job)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        return self.session.scalars(statement).one_or_none()

    def expired_leases_for_update(self, now: datetime, limit: int) -> list[Job]:
        query = (
            select(Job)
            .where(Job.status == "running", Job.lease_expires_at <= now)
            .order_by(Job.lease_expires_at, Job.id)
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        return list(self.session.scalars(self._lock_skipping_held(query)))

    def unclaimed_since_for_update(self, cutoff: datetime, limit: int) -> list[Job]:
        query = (
            select(Job)
            .where(Job.status == "pending", Job.pending_since <= cutoff)
            .order_by(Job.pending_since, Job.id)
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        return list(self.session.scalars(self._lock_skipping_held(query)))

    def for_deployment_newest_first(self, deployment_id: uuid.UUID, limit: int) -> list[Job]:
        return list(
            self.session.scalars(
                select(Job)
                .where(Job.deployment_id == deployment_id)
                .order_by(
                    func.coalesce(Job.completed_at, Job.created_at).desc(),
                    Job.created_at.desc(),
                    Job.id.desc(),
                )
                .limit(limit)
            )
        )
