"""Idempotency-Key: replay the first response of a request instead of running it twice.

The key is held, checked and stored in the same transaction as the write it guards,
so a stored response always matches a committed write and an error stores nothing.
"""

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from ..models import IdempotencyKey
from ..unit_of_work import UnitOfWork


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str
    replayed: bool


def request_fingerprint(method: str, path: str, body) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")) if body is not None else ""
    return hashlib.sha256(f"{method}\n{path}\n{canonical}".encode()).hexdigest()


def run_once(
    uow: UnitOfWork,
    user_id: uuid.UUID,
    key: str,
    fingerprint: str,
    execute: Callable[[], tuple[int, str]],
) -> StoredResponse:
    """Run `execute` (which joins this transaction) unless `key` already answered.

    `execute` returns (status, body). Only a 2xx answer is stored; an exception rolls
    everything back (or keeps the writes it says must stand) and stores nothing.
    """
    with uow:
        if not uow.idempotency_keys.try_hold(user_id, key):
            raise IdempotencyKeyInFlight("a request with this Idempotency-Key is in progress")
        stored = uow.idempotency_keys.get(user_id, key)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used with a different method, path or body"
                )
            return StoredResponse(stored.response_status, stored.response_body, True)
        status, body = execute()
        if 200 <= status < 300:
            uow.idempotency_keys.add(
                IdempotencyKey(
                    user_id=user_id,
                    key=key,
                    fingerprint=fingerprint,
                    response_status=status,
                    response_body=body,
                )
            )
        return StoredResponse(status, body, False)
