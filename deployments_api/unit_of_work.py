"""One transaction per use case (cosmicpython's Unit of Work).

A service does `with uow:`; on a clean exit the transaction commits, on an exception it
rolls back. Entering an already open unit of work joins it, so a wrapper such as the
idempotency guard can make a service's writes and its own one transaction.
"""

from sqlalchemy.orm import Session

from .repositories.agents import AgentRepository
from .repositories.broker_connections import BrokerConnectionRepository
from .repositories.deployments import DeploymentRepository
from .repositories.eas import EARepository, EAVersionRepository
from .repositories.events import DeploymentEventRepository
from .repositories.idempotency import IdempotencyKeyRepository
from .repositories.jobs import JobRepository
from .repositories.probe import DatabaseProbe
from .repositories.tokens import TokenRepository, UserRepository
from .repositories.trades import TradeRepository


class UnitOfWork:
    def __init__(self, session: Session):
        self.session = session
        self.dialect = session.get_bind().dialect.name
        self.users = UserRepository(session)
        self.tokens = TokenRepository(session)
        self.agents = AgentRepository(session)
        self.eas = EARepository(session)
        self.ea_versions = EAVersionRepository(session)
        self.broker_connections = BrokerConnectionRepository(session)
        self.jobs = JobRepository(session)
        self.deployments = DeploymentRepository(session)
        self.events = DeploymentEventRepository(session)
        self.trades = TradeRepository(session)
        self.idempotency_keys = IdempotencyKeyRepository(session)
        self.probe = DatabaseProbe(session)
        self._owners: list[bool] = []

    def __enter__(self) -> "UnitOfWork":
        owner = not self.session.in_transaction()
        if owner:
            self.session.begin()
        self._owners.append(owner)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._owners.pop():
            return
        if exc_type is None or getattr(exc, "keeps_writes", False):
            self.session.commit()
        else:
            self.session.rollback()

    def flush(self) -> None:
        self.session.flush()
