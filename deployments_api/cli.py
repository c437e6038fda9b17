"""`flask --app wsgi <command>`: schema, accounts, the reaper and a stand-in agent."""

import json

import click
from flask import current_app

from .db import database
from .migrations import upgrade_to_head
from .services.accounts import create_agent_token, create_user_token
from .services.jobs import QueueSettings, reap
from .unit_of_work import UnitOfWork


def _uow() -> UnitOfWork:
    return UnitOfWork(database().session_factory())


def register_commands(app) -> None:
    @app.cli.command("db-upgrade")
    def db_upgrade():
        """Create or upgrade the schema to the latest migration (idempotent)."""
        upgrade_to_head(current_app.config["DATABASE_URL"])
        click.echo("database is at the latest migration")

    @app.cli.command("create-user")
    @click.argument("email")
    def create_user(email):
        """Create a user (or reuse it) and print a new API token as the last line."""
        user_id, token = create_user_token(_uow(), email.strip().lower())
        click.echo(f"user {user_id} ({email})")
        click.echo(token)

    @app.cli.command("create-agent")
    @click.argument("name")
    def create_agent(name):
        """Create an agent and print its new token as the last line."""
        agent_id, token = create_agent_token(_uow(), name)
        click.echo(f"agent {agent_id} ({name})")
        click.echo(token)

    @app.cli.command("reap-jobs")
    def reap_jobs():
        """Apply lease expiry and pending timeouts now; safe to run from cron any time."""
        counts = reap(
            _uow(),
            QueueSettings.from_config(current_app.config),
            current_app.config["IDEMPOTENCY_KEY_TTL_HOURS"],
        )
        click.echo(json.dumps(counts))

    @app.cli.command("simulate-agent")
    @click.option(
        "--url", required=True, help="Base URL of the service, e.g. http://127.0.0.1:5000"
    )
    @click.option("--token", required=True, help="An agent token (create-agent).")
    @click.option("--fail-rate", default=0.0, type=click.FloatRange(0, 1), show_default=True)
    @click.option(
        "--delay",
        default=0.5,
        type=click.FloatRange(0),
        show_default=True,
        help="Seconds each job 'takes'.",
    )
    @click.option("--once", is_flag=True, help="Handle at most one job, then exit.")
    def simulate_agent(url, token, fail_rate, delay, once):
        """A stand-in agent that claims jobs and reports plausible results."""
        from .simulator import SimulatedAgent

        handled = SimulatedAgent(url, token, fail_rate=fail_rate, delay=delay).run(once=once)
        click.echo(f"handled {handled} job(s)")
