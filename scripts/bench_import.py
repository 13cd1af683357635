"""Benchmark: import 1,000,000 sample rows (and 360 enterprises) into a fresh SQLite file database.

    python scripts/bench_import.py [--rows 1000000] [--enterprises 360] [--reimport] [--keep DIR]

Prints a table: step, rows, seconds, rows/s, imported, rejected. The target (issue 2) is < 60 s for the
1,000,000-row sample import on SQLite. The phone memo is cleared before the import so the generator's work
does not warm it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from cati.db import make_engine, make_sessionmaker, transaction
from cati.migrate import upgrade
from cati.services import phones
from cati.services.imports import (
    import_enterprises,
    import_sample,
    synthetic_enterprises,
    write_synthetic_sample,
)
from cati.services.studies import default_study_file, install_study
from scoring.cells import write_csv_rows  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--enterprises", type=int, default=360)
    ap.add_argument("--reimport", action="store_true", help="import the same file again (all rows rejected)")
    ap.add_argument("--keep", type=Path, default=None, help="work in this directory and keep the files")
    ap.add_argument("--postgres", metavar="URL", default=None,
                    help="run on PostgreSQL instead: a throw-away database is created on this server and dropped")
    args = ap.parse_args()

    tmp = None
    if args.keep:
        work = args.keep
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="cati-bench-")
        work = Path(tmp.name)
    lines: list[tuple[str, int, float, float, int, int]] = []

    t = time.perf_counter()
    ents = synthetic_enterprises(args.enterprises)
    ep = work / "enterprises.csv"
    with ep.open("w", encoding="utf-8", newline="") as fh:
        write_csv_rows(fh, [list(ents[0]), *([e[k] for k in ents[0]] for e in ents)])
    per = -(-args.rows // len(ents))
    sp = work / "sample.csv"
    n = write_synthetic_sample(sp, [e["enterprise_id"] for e in ents], per)
    gen_s = time.perf_counter() - t
    print(f"generated {n:,} sample rows ({sp.stat().st_size / 1e6:.0f} MB) in {gen_s:.1f} s -> {work}")

    admin = dbname = None
    if args.postgres:
        from sqlalchemy import text

        base = args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)
        admin = make_engine(base)
        dbname = f"cati_bench_{os.getpid()}"
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'CREATE DATABASE "{dbname}"'))
        engine = make_engine(f"{base.rpartition('/')[0]}/{dbname}")
        label = "PostgreSQL"
    else:
        db = work / "bench.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        engine = make_engine(f"sqlite:///{db}")
        label = "SQLite file database"
    upgrade(engine)
    factory = make_sessionmaker(engine)
    with transaction(factory) as s:
        study = install_study(s, default_study_file())

    t, c = time.perf_counter(), time.process_time()
    with transaction(factory) as s:
        r = import_enterprises(s, study, ep)
    lines.append(("enterprises", r.read, time.perf_counter() - t, time.process_time() - c, r.imported, r.rejected))

    phones._PREFIX_CACHE.clear()
    t, c = time.perf_counter(), time.process_time()
    with transaction(factory) as s:  # includes the commit
        r = import_sample(s, study, sp, rejects_path=work / "sample.rejects.csv")
    lines.append(("sample", r.read, time.perf_counter() - t, time.process_time() - c, r.imported, r.rejected))

    if args.reimport:
        t, c = time.perf_counter(), time.process_time()
        with transaction(factory) as s:
            r = import_sample(s, study, sp, rejects_path=work / "sample.rejects2.csv")
        lines.append(("sample again", r.read, time.perf_counter() - t, time.process_time() - c, r.imported,
                      r.rejected))
    engine.dispose()
    if admin is not None:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        admin.dispose()

    try:
        load = " (load average {:.1f} {:.1f} {:.1f})".format(*os.getloadavg())
    except OSError:
        load = ""
    print(f"{label}, {os.cpu_count()} CPUs{load}; cpu s = CPU time of this process (all threads)")
    print(f"{'step':<14}{'rows':>11}{'seconds':>10}{'cpu s':>8}{'rows/s':>11}{'imported':>11}{'rejected':>10}")
    for step, rows, secs, cpu, imp, rej in lines:
        print(f"{step:<14}{rows:>11,}{secs:>10.1f}{cpu:>8.1f}{rows / secs:>11,.0f}{imp:>11,}{rej:>10,}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
