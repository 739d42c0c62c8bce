"""What the fetch threads share: a stop event, per-host slots with Retry-After pauses, and a budget of
decode memory. Every wait is in short slices that look at the stop event, so SIGINT/SIGTERM end a
fetch within a fraction of a second however many threads are waiting."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

POLL = 0.25  # seconds: the longest any fetch thread goes without looking at the stop event


class Stopped(Exception):
    """The run is stopping (SIGINT/SIGTERM): abandon this URL, it stays pending."""


def check(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise Stopped("stopping")


class HostGate:
    """At most `per_host` requests at once to one host, and none before a Retry-After pause ends."""

    def __init__(self, per_host: int, stop: threading.Event | None = None):
        self.per_host = max(1, per_host)
        self.stop = stop
        self.cond = threading.Condition()
        self.active: dict[str, int] = {}
        self.not_before: dict[str, float] = {}

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        with self.cond:
            while True:
                check(self.stop)
                wait = self.not_before.get(host, 0.0) - time.monotonic()
                if wait <= 0 and self.active.get(host, 0) < self.per_host:
                    break
                self.cond.wait(min(POLL, wait) if wait > 0 else POLL)
            self.not_before.pop(host, None)
            self.active[host] = self.active.get(host, 0) + 1
        try:
            yield
        finally:
            with self.cond:
                self.active[host] -= 1
                if not self.active[host]:
                    del self.active[host]
                self.cond.notify_all()

    def pause(self, host: str, seconds: float) -> None:
        """No new request to `host` for `seconds` (a Retry-After answer)."""
        with self.cond:
            until = time.monotonic() + seconds
            self.not_before[host] = max(self.not_before.get(host, 0.0), until)


class ByteBudget:
    """A byte budget shared by threads (decode memory): take(n) waits until n bytes are free."""

    def __init__(self, total: int, stop: threading.Event | None = None):
        self.total = max(1, total)
        self.stop = stop
        self.used = 0
        self.cond = threading.Condition()

    @contextmanager
    def take(self, n: int) -> Iterator[None]:
        n = min(max(0, n), self.total)  # one item over the whole budget runs alone
        with self.cond:
            while self.used + n > self.total:
                check(self.stop)
                self.cond.wait(POLL)
            self.used += n
        try:
            yield
        finally:
            with self.cond:
                self.used -= n
                self.cond.notify_all()
