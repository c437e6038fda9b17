"""Settings read from the environment, with the contract's defaults."""

import os
from pathlib import Path

INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc


def default_database_url() -> str:
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{INSTANCE_DIR / 'deployments.db'}"


def config_from_env() -> dict:
    cors = os.environ.get("CORS_ORIGINS", "").strip()
    return {
        "DATABASE_URL": os.environ.get("DATABASE_URL") or default_database_url(),
        "JOB_LEASE_SECONDS": _int_env("JOB_LEASE_SECONDS", 60),
        "JOB_MAX_ATTEMPTS": _int_env("JOB_MAX_ATTEMPTS", 3),
        "JOB_PENDING_TIMEOUT": _int_env("JOB_PENDING_TIMEOUT", 600),
        "MAX_CONTENT_LENGTH": _int_env("MAX_CONTENT_LENGTH", 1048576),
        "CORS_ORIGINS": [o.strip() for o in cors.split(",") if o.strip()],
        # Per-token request budget per minute; 0 turns rate limiting off.
        "RATE_LIMIT_PER_MINUTE": _int_env("RATE_LIMIT_PER_MINUTE", 1200),
        "IDEMPOTENCY_KEY_TTL_HOURS": _int_env("IDEMPOTENCY_KEY_TTL_HOURS", 24),
        # Seconds a connection attempt may take before the request answers 503.
        "DATABASE_CONNECT_TIMEOUT": _int_env("DATABASE_CONNECT_TIMEOUT", 3),
        # Milliseconds a single statement may run on Postgres before it is cancelled.
        "DATABASE_STATEMENT_TIMEOUT_MS": _int_env("DATABASE_STATEMENT_TIMEOUT_MS", 4000),
    }
