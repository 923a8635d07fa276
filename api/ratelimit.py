"""Per-client rate limit of the routes anyone may call without a token.

`POST /v1/recurrence/preview` needs no token and costs up to ~20 ms of CPU in the process that also runs
workflows, job callbacks and the outbox relay (todos.series.recurrence.budget bounds each request); this
bounds how often each client may ask. A client is the token's `sub` when a valid bearer token comes with the
request, else the address the connection comes from (uvicorn takes it from X-Forwarded-For for the proxies
FORWARDED_ALLOW_IPS names, by default only 127.0.0.1).

Token buckets, in this process (each replica limits on its own): a client may send `burst` requests at once,
then one every 60/`per_minute` seconds. The table of buckets is bounded: past `max_clients` the client seen
longest ago is forgotten, which at worst gives it a fresh burst.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import Request

from api.auth import Unauthorized, user_from_authorization
from todos.core.errors import DomainError
from todos.core.settings import Settings


class RateLimited(DomainError):
    status = 429
    code = "RATE_LIMITED"


class RateLimiter:
    """Token buckets keyed by client; safe to share between the threads that run sync routes."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.burst = burst
        self._per_second = per_minute / 60
        self.max_clients = max_clients
        self._clock = clock
        # client -> (tokens, when they were counted); the client seen longest ago first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, client: str) -> float:
        """Take one request from the client's bucket: 0 if it may go ahead, else the seconds until it may."""
        with self._lock:
            now = self._clock()
            tokens, counted = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - counted) * self._per_second)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self._per_second
            self._buckets[client] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        return len(self._buckets)


def client_of(request: Request, settings: Settings) -> str:
    """The token's `sub` if a valid bearer token came with the request, else the client's address."""
    header = request.headers.get("authorization")
    if header:
        try:
            return "user:" + user_from_authorization(header, settings).id
        except Unauthorized:
            pass  # the route needs no token: an invalid one is as good as none
    return "address:" + (request.client.host if request.client else "unknown")


def limit_previews(request: Request) -> None:
    """Dependency of the preview route: 429 with Retry-After once the client's bucket is empty."""
    limiter: RateLimiter = request.app.state.preview_limiter
    wait = limiter.acquire(client_of(request, request.app.state.settings))
    if wait > 0:
        seconds = math.ceil(wait)
        raise RateLimited(
            f"Too many previews from this client; retry in {seconds} s (each client may preview "
            f"{limiter.burst} rules at once, then {limiter.per_minute:g} a minute).",
            retry_after=seconds,
        )
