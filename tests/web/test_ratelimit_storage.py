"""The rate limiter's memory counters under concurrent hits: no request thread may fail restarting the expiry
timer (limits 5.8.0's MemoryStorage raised "threads can only be started once" under scripts/load_cawi.py)."""

from __future__ import annotations

import sys
import threading
import time

from limits.storage import storage_from_string

from cati.web.ratelimit_storage import ThreadSafeMemoryStorage, storage_uri


def test_memory_uri_maps_to_the_thread_safe_storage_and_others_are_kept():
    assert isinstance(storage_from_string(storage_uri("memory://")), ThreadSafeMemoryStorage)
    assert storage_uri("redis://localhost:6379/0") == "redis://localhost:6379/0"


def test_concurrent_hits_as_the_timer_expires_never_raise():
    storage = storage_from_string(storage_uri("memory://"))
    errors: list[BaseException] = []
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race window is a few bytecodes
    try:
        for _ in range(300):
            time.sleep(0.015)  # the 10 ms expiry timer has finished: every thread sees it dead
            barrier = threading.Barrier(16)

            def hit(i: int, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                try:
                    storage.incr(f"k{i}", 60)
                except RuntimeError as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=hit, args=(i,)) for i in range(16)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []
    assert storage.get("k0") == 300
