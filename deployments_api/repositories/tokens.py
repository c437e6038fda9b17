import uuid

from sqlalchemy import select

from ..models import ApiToken, User


class UserRepository:
    def __init__(self, session):
        self.session = session

    def get_by_email(self, email: str) -> User | None:
        return self.session.scalars(select(User).where(User.email == email)).one_or_none()

    def add(self, email: str) -> User:
        user = User(email=email)
        self.session.add(user)
        self.session.flush()
        return user


class TokenRepository:
    def __init__(self, session):
        self.session = session

    def add(
        self,
        token_hash: str,
        *,
        user_id: uuid.UUID | None = None,
        agent_id: uuid.UUID | None = None,
    ):
        kind = "user" if user_id is not None else "agent"
        token = ApiToken(token_hash=token_hash, kind=kind, user_id=user_id, agent_id=agent_id)
        self.session.add(token)
        self.session.flush()
        return token

    def find_by_hash(self, token_hash: str) -> ApiToken | None:
        return self.session.scalars(
            select(ApiToken).where(ApiToken.token_hash == token_hash)
        ).one_or_none()
