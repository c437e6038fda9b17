"""Alembic migrations, run programmatically by `flask --app wsgi db-upgrade`."""

from pathlib import Path

from alembic import command
from alembic.config import Config

from ..db import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_to_head(database_url: str) -> None:
    engine = make_engine(database_url, statement_timeout_ms=0)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
