"""Time the demo's fieldwork simulation (the bulk of ``cati demo``) on a fresh SQLite database, optionally under
cProfile, and print a fingerprint of the resulting database so that a speed-up can be checked not to change what
the simulation does.

    python scripts/bench_demo.py                        # 60 enterprises, seed 1
    python scripts/bench_demo.py --enterprises 360      # the full demo's fieldwork
    python scripts/bench_demo.py --profile /tmp/p.prof  # then: python -m pstats /tmp/p.prof

The fingerprint hashes every row of the fieldwork tables (attempts, cases, phones, appointments, interviews,
answers, enterprises) except columns stamped with the wall clock, so two runs with the same seed and the same
scheduler print the same hashes.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TABLES = ("call_attempts", "cases", "case_phones", "appointments", "interviews", "answers", "enterprises")
WALL_CLOCK = {"created_at", "imported_at", "updated_at", "released_at"}


def fingerprint(engine) -> dict[str, str]:
    from sqlalchemy import inspect, text

    out = {}
    insp = inspect(engine)
    columns = {t: [c["name"] for c in insp.get_columns(t) if c["name"] not in WALL_CLOCK]
               for t in TABLES if insp.has_table(t)}
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        for table, cols in columns.items():
            h = hashlib.sha256()
            n = 0
            for row in conn.execute(text(f"SELECT {', '.join(cols)} FROM {table} ORDER BY id")):
                h.update(repr(tuple(row)).encode())
                n += 1
            out[table] = f"{n}:{h.hexdigest()[:12]}"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--enterprises", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", default=None, help="write cProfile stats of the run (not the setup) here")
    ap.add_argument("--cpu", action="store_true", help="profile CPU time instead of wall time (steadier on a "
                                                        "shared machine; misses waits for the disk)")
    ap.add_argument("--keep", default=None, help="database file to keep (default: a temporary one)")
    ap.add_argument("--pragma", action="append", default=[],
                    help="extra SQLite pragma for every connection, e.g. --pragma cache_size=-65536 (repeatable)")
    args = ap.parse_args(argv)

    from cati.db import make_engine, make_sessionmaker
    from cati.migrate import upgrade
    from cati.simulation import Simulator, World

    with tempfile.TemporaryDirectory(prefix="cati-bench-demo-") as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "cati.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        engine = make_engine(f"sqlite:///{path}")
        if args.pragma:
            from sqlalchemy import event

            @event.listens_for(engine, "connect")
            def _extra(dbapi_conn, _record):
                for pragma in args.pragma:
                    dbapi_conn.execute(f"PRAGMA {pragma}")
        upgrade(engine)
        try:
            t0 = time.perf_counter()
            sim = Simulator(make_sessionmaker(engine), World.load(None), seed=args.seed,
                            n_enterprises=args.enterprises, workdir=Path(tmp) / "input")
            t1, c1 = time.perf_counter(), time.process_time()
            if args.profile:
                import cProfile

                prof = cProfile.Profile(time.process_time) if args.cpu else cProfile.Profile()
                report = prof.runcall(sim.run)
                prof.dump_stats(args.profile)
            else:
                report = sim.run()
            t2, c2 = time.perf_counter(), time.process_time()
            print(f"setup {t1 - t0:.1f} s, run {t2 - t1:.1f} s (CPU {c2 - c1:.1f} s); dials {report.dials}, completes {report.completes}"
                  f"/{report.quota_total}, {1000 * (c2 - c1) / max(report.dials, 1):.2f} CPU ms/dial")
            d = report.to_dict()
            d.pop("wall_seconds", None)
            print("report", hashlib.sha256(repr(sorted(d.items())).encode()).hexdigest()[:12])
            for table, fp in fingerprint(engine).items():
                print(f"  {table:<14} {fp}")
        finally:
            engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
