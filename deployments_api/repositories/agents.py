import uuid
from datetime import datetime

from sqlalchemy import func, select, update

from ..models import Agent, Job


class AgentRepository:
    def __init__(self, session):
        self.session = session

    def add(self, name: str) -> Agent:
        agent = Agent(name=name)
        self.session.add(agent)
        self.session.flush()
        return agent

    def touch(self, agent_id: uuid.UUID, now: datetime) -> None:
        self.session.execute(update(Agent).where(Agent.id == agent_id).values(last_seen_at=now))

    def list_with_jobs_in_flight(self) -> list[tuple[Agent, int]]:
        in_flight = (
            select(Job.claimed_by, func.count().label("n"))
            .where(Job.status == "running")
            .group_by(Job.claimed_by)
            .subquery()
        )
        rows = self.session.execute(
            select(Agent, func.coalesce(in_flight.c.n, 0))
            .outerjoin(in_flight, in_flight.c.claimed_by == Agent.id)
            .order_by(Agent.created_at, Agent.id)
        )
        return [(agent, int(count)) for agent, count in rows]
