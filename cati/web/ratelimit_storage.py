"""The rate limiter's in-memory counters, safe under gunicorn's threads.

``limits`` 5.8.0's ``MemoryStorage`` restarts its expiry timer without a lock: two request threads that count a
hit at the moment the timer has just finished both see it dead, and the second ``Timer.start()`` raises
``RuntimeError: threads can only be started once`` — an HTTP 500 for a respondent's answer. Found by
``scripts/load_cawi.py`` (500 respondents, gunicorn gthread). Known upstream (alisaifee/limits#26; the pull
request alisaifee/limits#352 makes the memory storage thread-safe), yet 5.8.0, the newest release on PyPI on
2026-12-07, still has the unlocked restart. This subclass restarts the timer under a lock; the app uses it for
``memory://`` (its scheme is ``cati-memory://``). Drop it once a ``limits`` release has the fix.
"""

from __future__ import annotations

import threading

from limits.storage import MemoryStorage

__all__ = ["ThreadSafeMemoryStorage", "storage_uri"]


class ThreadSafeMemoryStorage(MemoryStorage):
    STORAGE_SCHEME = ["cati-memory"]
    _timer_lock = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - overrides MemoryStorage.__schedule_expiry
        with self._timer_lock:
            if not self.timer.is_alive():
                self.timer = threading.Timer(0.01, self._MemoryStorage__expire_events)
                self.timer.start()


def storage_uri(uri: str) -> str:
    """``memory://…`` → the thread-safe memory storage; any other store (``redis://`` …) unchanged."""
    return "cati-memory://" + uri[len("memory://"):] if uri.startswith("memory://") else uri
