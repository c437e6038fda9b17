"""Engine and sessions: one engine per app, one session per request, always closed."""

from dataclasses import dataclass

from flask import current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def _configure_sqlite(engine: Engine) -> None:
    """Take SQLite's write lock at BEGIN so racing writers queue instead of failing.

    pysqlite's own transaction handling is switched off and we emit `BEGIN IMMEDIATE`
    ourselves (SQLAlchemy's pysqlite docs, "Serializable isolation / Savepoints").
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def normalize_database_url(url: str):
    """`postgresql://` / `postgres://` mean psycopg2 here (SQLAlchemy 2.1 would pick psycopg 3)."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed


def make_engine(url: str, *, connect_timeout: int = 3, statement_timeout_ms: int = 4000) -> Engine:
    url = parsed = normalize_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, pool_pre_ping=True
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        pool_timeout=5,
        connect_args={
            "connect_timeout": connect_timeout,
            "options": f"-c statement_timeout={statement_timeout_ms}",
            # Notice a dead server on a silent network instead of hanging on it: keepalives
            # for idle connections, tcp_user_timeout for data the server never acknowledges.
            "tcp_user_timeout": 5000,
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
        },
    )


@dataclass
class Database:
    engine: Engine
    session_factory: sessionmaker

    @classmethod
    def from_url(cls, url: str, **engine_options) -> "Database":
        engine = make_engine(url, **engine_options)
        # autobegin=False: every statement must run inside a unit of work's explicit
        # transaction, so nothing is ever half-written by a forgotten implicit one.
        factory = sessionmaker(bind=engine, expire_on_commit=False, autobegin=False)
        return cls(engine, factory)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def database() -> Database:
    return current_app.extensions["deployments_db"]


def request_session() -> Session:
    """The session of the current request, created on first use."""
    if "db_session" not in g:
        g.db_session = database().session_factory()
    return g.db_session


def close_request_session(_exc=None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
