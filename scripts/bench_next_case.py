"""Benchmark ``next_case``: latency of a claim (one transaction: choose, claim, commit) with many concurrent
claimers on a large sample.

    python scripts/bench_next_case.py --backend sqlite --cases 100000 --claimers 50
    python scripts/bench_next_case.py --backend postgresql --cases 1000000 --claimers 50 \
        --pg-url postgresql://postgres@127.0.0.1:5432/postgres

Each claimer is an interviewer in its own thread with its own connection: claim a case, "talk" for a random
0.5–1.5 × ``--think`` ms, code an outcome through ``record_outcome`` (a mix of no answer, busy, refusal…), and
claim again. A real dial takes 30 s or more (ringing, talk, wrap-up), so the default think time of 2 s
already compresses 50 interviewers' load more than 15-fold; ``--think 0`` measures saturation (claims queue
behind each other and the latency becomes queueing time). Prints p50/p95/p99/max of the claim latency
(choose + claim + commit, as the interviewer waits for it) and the claims per second, then how many claims took
over 100 ms, the full garbage collections of the bench process during the run (each stops all claimer threads)
and the load average: on a shared machine a load above the CPU count inflates the tail, so compare runs at
similar load. ``scripts/profile_next_case.py`` breaks slow claims down by statement.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select, text, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cati.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from cati.migrate import upgrade  # noqa: E402
from cati.models import CallAttempt, Case, CasePhone, Enterprise, Industry, Replicate, Study, User  # noqa: E402
from cati.services.scheduling import Claim, mark_dialed, next_case, record_outcome, rules_for  # noqa: E402
from cati.services.studies import default_study_file, install_study  # noqa: E402
from tests.factories import MONDAY_10AM  # noqa: E402

INDUSTRIES = ["通信", "银行", "公共服务", "互联网", "互联网金融", "零售", "互联网旅游", "基金", "汽车", "保险", "制造业",
              "物流快递", "地产", "证券", "其他"]
OUTCOMES = [("3.13", 0.45), ("3.12", 0.05), ("3.14", 0.05), ("2.21", 0.1), ("2.113", 0.08), ("4.31", 0.07),
            ("4.70", 0.05), ("2.112", 0.1), ("3.16", 0.05)]


def build(url: str, n_cases: int, n_enterprises: int, n_claimers: int):
    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    with transaction(factory) as s:
        study = install_study(s, default_study_file())
        inds = [Industry(name=n) for n in INDUSTRIES]
        s.add_all(inds)
        s.flush()
        ents = [Enterprise(study_id=study.id, external_id=f"E{i:04d}", name=f"企业{i}",
                           industry_id=inds[i % len(inds)].id, quota_target=20) for i in range(n_enterprises)]
        s.add_all(ents)
        s.flush()
        ent_ids = [e.id for e in ents]
        users = [User(username=f"bench{i}", display_name=f"bench{i}", password_hash="x", role="interviewer")
                 for i in range(n_claimers)]
        s.add_all(users)
        s.flush()
        user_ids = [u.id for u in users]
        for eid in ent_ids:
            s.add(Replicate(study_id=study.id, enterprise_id=eid, number=1, released_at=MONDAY_10AM))
    rng = random.Random(1)
    chunk = 20000
    t0 = time.perf_counter()
    if engine.dialect.name == "postgresql":
        _bulk_pg(engine, study.id, ent_ids, n_cases)
    else:
        _bulk_orm(engine, study.id, ent_ids, n_cases, rng, chunk)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # A freshly bulk-loaded table would otherwise be vacuumed and checkpointed in the middle of the
            # measurement (autovacuum's insert threshold; gigabytes of WAL): settle it first, as in production.
            conn.execute(text("VACUUM ANALYZE"))
            conn.execute(text("CHECKPOINT"))
    print(f"built {n_cases:,} cases in {n_enterprises} enterprises in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)
    return engine, factory, study, user_ids


def reuse_built(url: str, n_claimers: int):
    """A database kept by an earlier ``--keep-db`` run: its study, and ``n_claimers`` bench interviewers (added
    when the earlier run had fewer); claims left open by the earlier run are released first."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with transaction(factory) as s:
        study = s.scalars(select(Study).order_by(Study.id)).first()
        users = dict(s.execute(select(User.username, User.id).where(User.username.like("bench%"))).all())
        for i in range(n_claimers):
            if f"bench{i}" not in users:
                u = User(username=f"bench{i}", display_name=f"bench{i}", password_hash="x", role="interviewer")
                s.add(u)
                s.flush()
                users[u.username] = u.id
        s.execute(update(Case).where(Case.status == "claimed").values(status="ready", claimed_by_id=None,
                                                                      claimed_at=None, claim_expires_at=None))
    n = engine.connect().execute(text("SELECT count(*) FROM cases")).scalar()
    print(f"reusing {url.rsplit('/', 1)[1]}: {n:,} cases", file=sys.stderr)
    return engine, factory, study, [users[f"bench{i}"] for i in range(n_claimers)]


def _bulk_orm(engine, study_id: int, ent_ids: list[int], n_cases: int, rng: random.Random, chunk: int) -> None:
    with engine.begin() as conn:
        for start in range(1, n_cases + 1, chunk):
            ids = range(start, min(start + chunk, n_cases + 1))
            conn.execute(insert(Case), [
                dict(id=i, study_id=study_id, enterprise_id=ent_ids[i % len(ent_ids)], case_ref=f"C{i:09d}",
                     replicate=1, status="ready", timezone="Asia/Shanghai",
                     next_call_at=MONDAY_10AM - timedelta(minutes=rng.randint(0, 600)),
                     attempts=rng.choice([0, 0, 0, 1, 2]), tried_day_parts=rng.choice([0, 0, 1, 2, 4]),
                     needs_converter=False, attributes={}, imported_at=MONDAY_10AM)
                for i in ids
            ])
            conn.execute(insert(CasePhone), [
                dict(study_id=study_id, case_id=i, position=1, e164=f"+86139{i:08d}", kind="mobile",
                     status="ok", attempts=0) for i in ids
            ])


def _bulk_pg(engine, study_id: int, ent_ids: list[int], n_cases: int) -> None:
    """The same sample as the ORM path, generated inside PostgreSQL (10 million rows in minutes, not an hour):
    attempts 0,0,0,1,2 and tried-parts masks 0,0,1,2,4 in turn, next call times spread over the 10 hours before
    the claim clock starts."""
    first, n_ent = ent_ids[0], len(ent_ids)
    assert ent_ids == list(range(first, first + n_ent)), "enterprise ids must be consecutive"
    step = 2_000_000
    with engine.begin() as conn:
        for lo in range(1, n_cases + 1, step):
            hi = min(lo + step - 1, n_cases)
            conn.execute(text("""
                INSERT INTO cases (id, study_id, enterprise_id, case_ref, replicate, status, timezone, next_call_at,
                                   attempts, tried_day_parts, needs_converter, attributes, imported_at)
                SELECT i, :study, :first + (i % :n_ent), 'C' || lpad(i::text, 9, '0'), 1, 'ready', 'Asia/Shanghai',
                       :t0 - make_interval(mins => ((i * 7919) % 601)::int),
                       (ARRAY[0,0,0,1,2])[1 + (i * 31) % 5], (ARRAY[0,0,1,2,4])[1 + (i * 17) % 5],
                       false, '{}'::json, :t0
                FROM generate_series(:lo, :hi) AS i"""),
                dict(study=study_id, first=first, n_ent=n_ent, t0=MONDAY_10AM, lo=lo, hi=hi))
            conn.execute(text("""
                INSERT INTO case_phones (study_id, case_id, position, e164, kind, status, attempts)
                SELECT :study, i, 1, '+86139' || lpad(i::text, 8, '0'), 'mobile', 'ok', 0
                FROM generate_series(:lo, :hi) AS i"""), dict(study=study_id, lo=lo, hi=hi))
            print(f"  {hi:,} cases", file=sys.stderr)
        conn.execute(text("SELECT setval(pg_get_serial_sequence('cases', 'id'), :n)"), {"n": n_cases})


def run(factory, study, user_ids, claims_per: int, think_ms: float, start_at: float | None = None,
        seed_base: int = 0):
    """Claimers as threads of this process. ``start_at`` (``time.time()``): when every process starts claiming
    (several processes share it); None starts once this process's claimers are warm."""
    rules = rules_for(study)
    latencies: list[float] = []
    doubles: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    started: list[float] = []
    # The claim clock starts at MONDAY_10AM and then runs with the wall clock, so the scheduler's minute-scale
    # work (stale-claim sweep once a minute) happens during the measurement as it would in production; its
    # wall-clock caches (the time-zone list, 30 s) expire as they would anyway.

    def go() -> None:
        if start_at is not None:
            time.sleep(max(0.0, start_at - time.time()))
            started.append(start_at)
        else:
            started.append(time.time())

    barrier = threading.Barrier(len(user_ids), action=go)

    def clock():
        return MONDAY_10AM + timedelta(seconds=time.time() - started[0])

    def claimer(iv: int, seed: int) -> None:
        rng = random.Random(seed)
        mine: list[float] = []
        try:
            # Warm-up, not measured: a fresh connection pays its setup and statement preparation on first use
            # (a server's workers keep theirs), so each claimer makes one claim and rolls it back first.
            with factory() as s:
                next_case(s, study, iv, MONDAY_10AM, rng=rng)
                s.rollback()
            barrier.wait()
            # Interviewers don't all press "next case" in the same millisecond: start within one think time.
            time.sleep(think_ms / 1000 * rng.random())
            for _ in range(claims_per):
                t = time.perf_counter()
                with transaction(factory) as s:
                    got = next_case(s, study, iv, clock(), rng=rng)
                mine.append((time.perf_counter() - t) * 1000)
                if not isinstance(got, Claim):
                    break
                time.sleep(think_ms / 1000 * rng.uniform(0.5, 1.5))
                if not dial_and_code(factory, got.case_id, iv, clock(), rules, rng):
                    with lock:
                        doubles.append(got.case_id)
        except BaseException as exc:
            errors.append(exc)
        with lock:
            latencies.extend(mine)

    # Full garbage collections stop every claimer thread of this process at once: count them and their pauses
    # (a web worker has them too, after the same gc.freeze()), so a tail can be told apart from the database's.
    pauses: list[float] = []
    gc_start = [0.0]

    def on_gc(phase, info):
        if info["generation"] == 2:
            if phase == "start":
                gc_start[0] = time.perf_counter()
            else:
                pauses.append((time.perf_counter() - gc_start[0]) * 1000)

    threads = [threading.Thread(target=claimer, args=(iv, seed_base + i)) for i, iv in enumerate(user_ids)]
    # As `cati serve` does after start-up (cati/gunicorn_conf.py): long-lived objects leave the collector's view.
    gc.collect()
    gc.freeze()
    load_before = os.getloadavg()[0]
    gc.callbacks.append(on_gc)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - started[0] if started else 0.0  # from the start of claiming
    gc.callbacks.remove(on_gc)
    if errors:
        raise errors[0]
    return latencies, wall, dict(load=(load_before, os.getloadavg()[0]), gc2=pauses, doubles=doubles)


def run_in_processes(url: str, study_id: int, user_ids: list[int], processes: int, claims_per: int,
                     think_ms: float):
    """Claimers spread over ``processes`` worker processes, threads in each: how ``cati serve --workers N``
    hosts interviewers (gunicorn gthread workers, 8 threads each). Each process has its own engine and
    connection pool and, after warming up, they all start claiming at the same moment."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    groups = [user_ids[i::processes] for i in range(processes)]
    start_at = time.time() + 5.0 + 0.5 * processes  # every worker is up and warm by then
    load_before = os.getloadavg()[0]
    with ProcessPoolExecutor(max_workers=processes, mp_context=mp.get_context("fork")) as pool:
        futures = [pool.submit(_process_worker, url, study_id, g, claims_per, think_ms, start_at, 1000 * k)
                   for k, g in enumerate(groups)]
        results = [f.result() for f in futures]
    lat = [v for r in results for v in r[0]]
    span = max(r[1] for r in results)  # from the common start to the last claimer's end
    pauses = [v for r in results for v in r[2]["gc2"]]
    doubles = [v for r in results for v in r[2]["doubles"]]
    return lat, span, dict(load=(load_before, os.getloadavg()[0]), gc2=pauses, doubles=doubles)


def _process_worker(url, study_id, user_ids, claims_per, think_ms, start_at, seed_base):
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with transaction(factory) as s:
        study = s.get(Study, study_id)
    try:
        return run(factory, study, user_ids, claims_per, think_ms, start_at=start_at, seed_base=seed_base)
    finally:
        engine.dispose()


def dial_and_code(factory, case_id: int, iv: int, now, rules, rng: random.Random) -> bool:
    """The claimed case is dialed and coded with a random outcome (the claim's transaction is separate).

    Returns False when the case is not held by this interviewer any more: another claimer got it while this
    one held it — a double claim."""
    with transaction(factory) as s:
        c = s.get(Case, case_id, with_for_update={"of": Case})
        if c.claimed_by_id != iv or str(getattr(c.status, "value", c.status)) != "claimed":
            return False
        mark_dialed(s, c, now, rules)
        code = rng.choices([o for o, _ in OUTCOMES], [w for _, w in OUTCOMES])[0]
        s.add(CallAttempt(call_id=str(uuid.uuid4()), case_id=c.id, interviewer_id=iv,
                          backend="simulated", requested_at=now, outcome=code))
        s.flush()
        record_outcome(s, c, code, now, interviewer_id=iv, rules=rules)
    return True


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--enterprises", type=int, default=360)
    ap.add_argument("--claimers", type=int, default=50)
    ap.add_argument("--claims", type=int, default=20, help="claims per claimer")
    ap.add_argument("--think", type=float, default=2000.0, help="mean ms between a claim and its outcome")
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--keep-db", metavar="NAME", default=None,
                    help="PostgreSQL: build into database NAME once and keep it; later runs reuse it (10M cases "
                         "take minutes to build)")
    ap.add_argument("--processes", type=int, default=1,
                    help="spread the claimers over this many processes, threads in each, as `cati serve --workers "
                         "N` hosts interviewers (default 1: every claimer a thread of this process)")
    args = ap.parse_args()

    if args.backend == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(prefix='bench-next-case-')}/bench.sqlite"
        cleanup = None
    else:
        admin_url = args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
        name = f"cati_bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(admin_url)
        name = args.keep_db or name
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.rsplit("/", 1)[0] + "/" + name
        reuse = bool(args.keep_db and exists)

        def cleanup():
            if args.keep_db:
                return
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    try:
        if args.backend == "postgresql" and reuse:
            engine, factory, study, users = reuse_built(url, args.claimers)
        else:
            engine, factory, study, users = build(url, args.cases, args.enterprises, args.claimers)
        with transaction(factory) as s:
            study = s.get(Study, study.id)
        if args.processes > 1:
            engine.dispose()  # the workers fork: no inherited connections
            lat, wall, info = run_in_processes(url, study.id, users, args.processes, args.claims, args.think)
        else:
            lat, wall, info = run(factory, study, users, args.claims, args.think)
        engine.dispose()
    finally:
        if cleanup:
            cleanup()
    print(f"\nnext_case on {args.backend}: {args.cases:,} cases, {args.enterprises} enterprises, "
          f"{args.claimers} concurrent claimers in {args.processes} process(es), think {args.think:g} ms")
    print(f"{'claims':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>8} {'claims/s':>9}")
    print(f"{len(lat):>8} {pct(lat, 50):>8.2f} {pct(lat, 95):>8.2f} {pct(lat, 99):>8.2f} {max(lat):>8.2f} "
          f"{statistics.fmean(lat):>8.2f} {len(lat) / wall:>9.1f}")
    over = sum(v > 100 for v in lat)
    g2 = info["gc2"]
    print(f"claims over 100 ms: {over}; full GCs during the run: {len(g2)}"
          + (f" (longest pause {max(g2):.0f} ms)" if g2 else "")
          + f"; 1-min load average {info['load'][0]:.2f} before, {info['load'][1]:.2f} after "
          f"({os.cpu_count()} CPUs: a load above that means claimers also wait for a CPU)")
    print(f"double claims (a case coded by a claimer that no longer held it): {len(info['doubles'])}")
    print(f"backend={args.backend} cases={args.cases} claimers={args.claimers} processes={args.processes} "
          f"p50_ms={pct(lat, 50):.2f} "
          f"p99_ms={pct(lat, 99):.2f} claims_per_s={len(lat) / wall:.1f} double_claims={len(info['doubles'])}")


if __name__ == "__main__":
    main()
