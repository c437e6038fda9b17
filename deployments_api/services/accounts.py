"""Users, agents and their bearer tokens."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from ..errors import Forbidden, NotAuthenticated
from ..types import utcnow
from ..unit_of_work import UnitOfWork

TOKEN_BYTES = 32  # 256 bits of entropy


def new_token() -> tuple[str, str]:
    """A fresh random token and the sha-256 hex digest that is all we store of it."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    kind: str  # "user" | "agent"
    id: uuid.UUID
    token_hash: str


def create_user_token(uow: UnitOfWork, email: str) -> tuple[uuid.UUID, str]:
    """Create the user (or reuse it) and give it a new token."""
    with uow:
        user = uow.users.get_by_email(email) or uow.users.add(email)
        token, token_hash = new_token()
        uow.tokens.add(token_hash, user_id=user.id)
        return user.id, token


def create_agent_token(uow: UnitOfWork, name: str) -> tuple[uuid.UUID, str]:
    with uow:
        agent = uow.agents.add(name)
        token, token_hash = new_token()
        uow.tokens.add(token_hash, agent_id=agent.id)
        return agent.id, token


def authenticate(uow: UnitOfWork, token: str | None, required_kind: str) -> Principal:
    """Resolve a bearer token; an agent's `last_seen_at` moves on every authenticated call."""
    if not token:
        raise NotAuthenticated("missing or malformed bearer token")
    token_hash = hash_token(token)
    with uow:
        stored = uow.tokens.find_by_hash(token_hash)
        if stored is None:
            raise NotAuthenticated("unknown token")
        if stored.kind != required_kind:
            raise Forbidden(f"this route needs a {required_kind} token")
        if stored.kind == "agent":
            uow.agents.touch(stored.agent_id, utcnow())
            return Principal("agent", stored.agent_id, token_hash)
        return Principal("user", stored.user_id, token_hash)


def list_agents(uow: UnitOfWork):
    with uow:
        return uow.agents.list_with_jobs_in_flight()
