"""Per-credential request rate limits: a sliding-window log per credential id, kept in process memory.

`HERALD_RATE_LIMIT_PER_MINUTE` (settings.rate_limit_per_minute) > 0 switches it on; 0, the default, leaves
every edge unlimited. The window is per process: N `herald serve` processes behind one balancer, or the N
web processes of one `herald serve --workers N` (the kernel spreads connections over them), each allow the
limit, so the effective limit is up to N times the setting (acceptable for an abuse guard; no shared store
is needed). Each edge calls `check(container, credential_id)` right after authentication and answers the
RateLimited it raises in its own format (native 429 problem+json with Retry-After; each dialect documents
its own error in its module docstring).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from herald.container import Container
from herald.errors import RateLimited

WINDOW_SECONDS = 60.0
_EXTRAS_KEY = "ratelimit"


class RateLimiter:
    """At most `limit` requests per credential within any `window` seconds (thread-safe)."""

    def __init__(
        self, limit: int, *, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[int, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: int) -> None:
        """Count one request for `key`, or raise RateLimited (with seconds until a slot frees) when over."""
        if self.limit <= 0:
            return
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                retry_after = max(hits[0] + self.window - now, 0.0)
                raise RateLimited(f"Rate limit of {self.limit} requests per minute exceeded", retry_after=retry_after)
            hits.append(now)
            if len(self._hits) > 10_000:
                self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        # Keys whose newest hit left the window hold nothing that limits them: drop them to bound memory.
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]


def limiter(container: Container) -> RateLimiter:
    """The process's limiter for this container, built on first use from the settings."""
    found = container.extras.get(_EXTRAS_KEY)
    if isinstance(found, RateLimiter):
        return found
    made = RateLimiter(container.settings.rate_limit_per_minute)
    return container.extras.setdefault(_EXTRAS_KEY, made)  # type: ignore[return-value]


def check(container: Container, credential_id: int) -> None:
    """Count a request by this credential; RateLimited when it is over the configured limit (no-op when off)."""
    if container.settings.rate_limit_per_minute <= 0:
        return
    limiter(container).hit(credential_id)
