"""Bearer-token authentication and the per-token rate limit."""

import math
import threading
import time

from flask import current_app, g, request

from ..errors import RateLimited
from ..services.accounts import Principal, authenticate
from .common import current_uow


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        return None
    return token


class RateLimiter:
    """A fixed one-minute window per token, in this process.

    Each gunicorn worker counts on its own, so the effective limit is per worker;
    that keeps the limiter free of shared state and good enough to stop a runaway
    script. RATE_LIMIT_PER_MINUTE=0 turns it off.
    """

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._windows: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        if self.per_minute <= 0:
            return
        now = time.time()
        window = int(now // 60)
        with self._lock:
            start, count = self._windows.get(key, (window, 0))
            if start != window:
                start, count = window, 0
            count += 1
            self._windows[key] = (start, count)
            if len(self._windows) > 10000:
                self._windows = {k: v for k, v in self._windows.items() if v[0] == window}
        if count > self.per_minute:
            retry_after = max(1, math.ceil((window + 1) * 60 - now))
            raise RateLimited(
                "too many requests for this token", headers={"Retry-After": str(retry_after)}
            )


def requires(kind: str):
    """A before_request hook admitting only tokens of `kind` ("user" or "agent")."""

    def check_token():
        if request.method == "OPTIONS":
            return  # CORS preflight carries no credentials
        principal = authenticate(current_uow(), bearer_token(), kind)
        current_app.extensions["rate_limiter"].check(principal.token_hash)
        g.principal = principal

    return check_token


def principal() -> Principal:
    return g.principal
