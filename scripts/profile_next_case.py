"""Find where slow ``next_case`` claims spend their time (PostgreSQL): per-statement timings of every claim,
Python GC pauses, pool checkout, wait events sampled from ``pg_stat_activity`` and the machine's load.

    python scripts/profile_next_case.py --cases 1000000 --keep          # build a bench database, keep it
    python scripts/profile_next_case.py --db cati_bench_xxxxxxxx        # rerun on it (no rebuild)
    python scripts/profile_next_case.py --db cati_bench_xxxxxxxx --drop # ... and drop it afterwards

Same load as ``bench_next_case.py`` (claim, think, record an outcome, claim again). For every claim slower than
``--slow`` ms it prints the statements with their durations, the gaps between them (Python time: GIL, GC,
pool), the GC collections that overlapped it and the wait events seen on the server meanwhile; then claims over
100 ms and wait events per 10 s of the run with the load average. A statement's time includes any stall of its
thread in Python (a full GC stops every thread), so compare it with the GC lines and with EXPLAIN ANALYZE.

Experiments: ``--processes N`` splits the claimers over N processes (like gunicorn workers, each with its own
GIL, heap and caches), ``--gc-freeze`` freezes the heap after setup, ``--tz-cache forever`` never refreshes
the scheduler's 30 s time-zone cache (shows what its refresh costs).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, event, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_next_case import build, dial_and_code, pct  # noqa: E402

from cati.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from cati.models import Study, User  # noqa: E402
from cati.services.scheduling import Claim, next_case, rules_for  # noqa: E402
from tests.factories import MONDAY_10AM  # noqa: E402

_tl = threading.local()


def instrument(engine) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, params, context, executemany):
        conn.info["t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, params, context, executemany):
        rec = getattr(_tl, "rec", None)
        if rec is not None:
            t1 = time.perf_counter()
            rec.append((conn.info["t0"], t1, " ".join(statement.split())[:110], params))

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, proxy):
        rec = getattr(_tl, "rec", None)
        if rec is not None:
            rec.append((time.perf_counter(), time.perf_counter(), "<pool checkout done>", None))


class GcLog:
    def __init__(self) -> None:
        self.events: list[tuple[float, float, int, int]] = []
        self._start = 0.0

    def __call__(self, phase, info):
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.events.append((self._start, time.perf_counter(), info["generation"], info["collected"]))


def sampler(url: str, dbname: str, stop: threading.Event, out: list, loads: list, every: float) -> None:
    eng = create_engine(url)
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        while not stop.is_set():
            t = time.perf_counter()
            rows = conn.execute(text(
                "select pid, wait_event_type, wait_event, state, left(query, 70) from pg_stat_activity "
                "where datname = :d and pid <> pg_backend_pid() and state = 'active' "
                "and wait_event is not null and wait_event <> 'ClientRead'"), {"d": dbname}).all()
            extra = conn.execute(text(
                "select pid, left(query, 70) from pg_stat_activity "
                "where backend_type = 'autovacuum worker'")).all()
            for r in rows:
                out.append((t, tuple(r)))
            for r in extra:
                if r[1]:
                    out.append((t, ("bg", r[1])))
            loads.append((t, os.getloadavg()[0]))
            stop.wait(every)
    eng.dispose()


def _claimers(factory, study, user_ids, claims_per, think_ms, start_gate):
    """One process's claimers (threads); ``start_gate()`` waits for every process's warm-up."""
    rules = rules_for(study)
    results = []  # (t_start, t_end, ms, records)
    errors: list[BaseException] = []
    lock = threading.Lock()
    started: list[float] = []

    def gate():
        start_gate()
        started.append(time.monotonic())

    barrier = threading.Barrier(len(user_ids), action=gate)

    def clock():  # as in bench_next_case: MONDAY_10AM, then the wall clock
        return MONDAY_10AM + timedelta(seconds=time.monotonic() - started[0])

    def claimer(iv: int, seed: int) -> None:
        rng = random.Random(seed)
        mine = []
        try:
            with factory() as s:
                next_case(s, study, iv, MONDAY_10AM, rng=rng)
                s.rollback()
            barrier.wait()
            time.sleep(think_ms / 1000 * rng.random())
            for _ in range(claims_per):
                _tl.rec = []
                t = time.perf_counter()
                with transaction(factory) as s:
                    got = next_case(s, study, iv, clock(), rng=rng)
                t1 = time.perf_counter()
                mine.append((t, t1, (t1 - t) * 1000, _tl.rec))
                _tl.rec = None
                if not isinstance(got, Claim):
                    break
                time.sleep(think_ms / 1000 * rng.uniform(0.5, 1.5))
                dial_and_code(factory, got.case_id, iv, clock(), rules, rng)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=claimer, args=(iv, iv)) for iv in user_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def _setup_process(args) -> None:
    """Per-process experiment switches."""
    if args.tz_cache == "forever":
        from cati.services import scheduling

        orig = scheduling._timezones
        memo: dict = {}

        def forever(session, study_id, rules):
            if study_id not in memo:
                memo[study_id] = orig(session, study_id, rules)
            return memo[study_id]

        scheduling._timezones = forever


def _process_main(url, study_id, user_ids, args, mp_barrier, queue) -> None:
    try:
        _process_body(url, study_id, user_ids, args, mp_barrier, queue)
    except BaseException:
        import traceback

        mp_barrier.abort()
        queue.put(traceback.format_exc())


def _process_body(url, study_id, user_ids, args, mp_barrier, queue) -> None:
    _setup_process(args)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with transaction(factory) as s:
        study = s.get(Study, study_id)
    instrument(engine)
    gclog = GcLog()
    gc.callbacks.append(gclog)
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    results = _claimers(factory, study, user_ids, args.claims, args.think, mp_barrier.wait)
    engine.dispose()
    queue.put((results, gclog.events))


def run(url, study_id, user_ids, args):
    """Claimers split over ``--processes`` processes (each with its own engine and threads)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    n = args.processes
    groups = [user_ids[i::n] for i in range(n)]
    barrier = ctx.Barrier(n + 1)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_process_main, args=(url, study_id, g, args, barrier, queue)) for g in groups]
    for p in procs:
        p.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        raise SystemExit(f"claimer process failed:\n{queue.get()}") from None
    t0 = time.perf_counter()
    results, gcs = [], []
    for _ in procs:
        got = queue.get()
        if isinstance(got, str):
            raise SystemExit(f"claimer process failed:\n{got}")
        r, g = got
        results.extend(r)
        gcs.extend(g)
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
        if p.exitcode:
            raise SystemExit(f"claimer process failed ({p.exitcode})")
    return results, gcs, t0, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--enterprises", type=int, default=360)
    ap.add_argument("--claimers", type=int, default=50)
    ap.add_argument("--claims", type=int, default=30)
    ap.add_argument("--think", type=float, default=2000.0)
    ap.add_argument("--slow", type=float, default=50.0, help="report claims slower than this (ms)")
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--db", help="reuse this existing bench database (no build)")
    ap.add_argument("--keep", action="store_true", help="keep the database built here")
    ap.add_argument("--drop", action="store_true", help="drop --db at the end")
    ap.add_argument("--gc-freeze", action="store_true", help="gc.collect(); gc.freeze() after setup")
    ap.add_argument("--sample-ms", type=float, default=50.0, help="pg_stat_activity sampling period")
    ap.add_argument("--processes", type=int, default=1, help="split the claimers over this many processes")
    ap.add_argument("--tz-cache", choices=["ttl", "forever"], default="ttl",
                    help="experiment: 'forever' never refreshes scheduling's 30 s time-zone cache")
    args = ap.parse_args()

    admin_url = args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
    base = admin_url.rsplit("/", 1)[0]
    admin = make_engine(admin_url)
    name = args.db or f"cati_bench_{uuid.uuid4().hex[:8]}"
    url = f"{base}/{name}"
    if args.db:
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        with transaction(factory) as s:
            study = s.query(Study).first()
            users = [u.id for u in s.query(User).filter(User.username.like("bench%")).order_by(User.id)]
            users = users[: args.claimers]
        # Start each run from the same state: every case ready again (the previous run claimed and dialed).
        with engine.begin() as conn:
            conn.execute(text("delete from call_attempts"))
            conn.execute(text("update cases set status='ready', claimed_by_id=null, claimed_at=null, "
                              "claim_expires_at=null, final_disposition=null, finalized_at=null, "
                              "next_call_at = :t where status <> 'ready' or next_call_at > :t"),
                         {"t": MONDAY_10AM})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE cases"))
            conn.execute(text("CHECKPOINT"))
    else:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        print(f"database {name}", file=sys.stderr)
        engine, factory, study, users = build(url, args.cases, args.enterprises, args.claimers)
        with transaction(factory) as s:
            study = s.get(Study, study.id)
    study_id = study.id
    engine.dispose()

    waits: list = []
    loads: list = []
    stop = threading.Event()
    smp = threading.Thread(target=sampler, args=(url, name, stop, waits, loads, args.sample_ms / 1000))
    smp.start()
    try:
        results, gcevents, t0, wall = run(url, study_id, users, args)
    finally:
        stop.set()
        smp.join()
        if (not args.db and not args.keep) or (args.db and args.drop):
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        elif not args.db:
            print(f"kept database {name}", file=sys.stderr)

    lat = [r[2] for r in results]
    print(f"\n{len(lat)} claims: p50 {pct(lat, 50):.2f}  p95 {pct(lat, 95):.2f}  p99 {pct(lat, 99):.2f}  "
          f"max {max(lat):.2f} ms  mean {statistics.fmean(lat):.2f}  {len(lat) / wall:.1f} claims/s  "
          f"load {min(v for _, v in loads):.2f}-{max(v for _, v in loads):.2f}  "
          f">100ms {sum(v > 100 for v in lat)}  >200ms {sum(v > 200 for v in lat)}")
    gen = Counter(g for *_, g, _c in gcevents)
    g2 = [(b - a) * 1000 for a, b, g, _ in gcevents if g == 2]
    print(f"gc collections during run: {dict(gen)}; gen2 durations ms: {[round(x, 1) for x in g2][:10]}")
    all_gc = [(b - a) * 1000 for a, b, *_ in gcevents]
    if all_gc:
        print(f"gc pause max {max(all_gc):.1f} ms, total {sum(all_gc):.0f} ms")

    # Which statement dominates slow claims?
    per_stmt: dict[str, list[float]] = {}
    for _ts, _te, _ms, rec in results:
        for a, b, sql, _p in rec:
            per_stmt.setdefault(sql[:60], []).append((b - a) * 1000)
    print("\nstatement timings (ms): n p50 p99 max")
    for sql, v in sorted(per_stmt.items(), key=lambda kv: -max(kv[1])):
        print(f"  {len(v):5d} {pct(v, 50):7.2f} {pct(v, 99):7.2f} {max(v):8.2f}  {sql}")

    slow = sorted((r for r in results if r[2] > args.slow), key=lambda r: r[0])
    print(f"\n{len(slow)} claims slower than {args.slow:g} ms")
    for ts, te, ms, rec in slow:
        print(f"- t={ts - t0:7.2f}s {ms:8.1f} ms")
        prev = ts
        for a, b, sql, p in rec:
            gap = (a - prev) * 1000
            print(f"    gap {gap:7.1f}  stmt {(b - a) * 1000:7.1f}  {sql[:90]}")
            if (b - a) * 1000 > args.slow / 2:
                print(f"        params {p}")
            prev = b
        print(f"    gap {(te - prev) * 1000:7.1f}  (to end)")
        for a, b, g, c in gcevents:
            if a < te and b > ts:
                print(f"    GC gen{g} {(b - a) * 1000:.1f} ms collected {c}")
        seen = Counter(w[1:3] if w[0] != "bg" else ("bg", w[1][:50]) for t, w in waits if ts <= t <= te)
        if seen:
            print(f"    waits: {dict(seen)}")
        ld = [v for t, v in loads if ts - 1 <= t <= te + 1]
        if ld:
            print(f"    load {ld[0]:.2f}")
    print("\nper 10 s of the run: claims, claims > 100 ms, wait-event samples")
    for b in range(0, int(wall) + 10, 10):
        inb = [r for r in results if b <= r[0] - t0 < b + 10]
        wb = Counter(w[1:3] if w[0] != "bg" else ("bg", w[1][:30]) for t, w in waits if b <= t - t0 < b + 10)
        ld = [v for t, v in loads if b <= t - t0 < b + 10]
        print(f"  {b:4d}s {len(inb):5d} {sum(r[2] > 100 for r in inb):4d}  load {max(ld, default=0):5.2f}  "
              f"{dict(wb.most_common(4))}")
    allw = Counter(w[1:3] if w[0] != "bg" else ("bg", w[1][:50]) for _t, w in waits)
    print(f"\nwait events over the whole run (samples): {dict(allw.most_common(15))}")


if __name__ == "__main__":
    main()
