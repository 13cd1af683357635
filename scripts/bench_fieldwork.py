"""Strategy comparison on simulated fieldwork (issue 3 §6): our scheduler against a plain call list, queXS-style
ordering and an oracle, same world, same seed, each strategy on a fresh SQLite database.

    python scripts/bench_fieldwork.py                          # default world, 60 enterprises
    python scripts/bench_fieldwork.py --world config/worlds/hard_to_reach.yaml --enterprises 120
    python scripts/bench_fieldwork.py --full                   # 360 enterprises (slow)

Prints each strategy's report, a comparison table, the targets (ours ≥ 1.25× call_list, ≥ 1.10× quexs_style,
≥ 75 % of oracle in completes per interviewer-hour; zero over-quota; no enterprise short while sample remains),
then exactly one machine-readable line per strategy:

    strategy=<name> completes_per_interviewer_hour=<x> overquota=<n> short_enterprises=<n> dials_per_complete=<x>
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_one(args: tuple[str, str | None, int, int | None, int, str]) -> dict:
    strategy, world_file, n_enterprises, n_interviewers, seed, directory = args
    from cati.db import make_engine, make_sessionmaker
    from cati.migrate import upgrade
    from cati.simulation import Simulator, World

    world = World.load(world_file)
    path = Path(directory) / f"{world.name}-{strategy}.sqlite"
    path.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    try:
        report = Simulator(make_sessionmaker(engine), world, strategy=strategy, seed=seed,
                           n_enterprises=n_enterprises, n_interviewers=n_interviewers).run()
    finally:
        engine.dispose()
    return report.to_dict()


def main(argv: list[str] | None = None) -> int:
    from cati.simulation import STRATEGIES, FieldworkReport, comparison_table

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", default=None, help="world file (default config/worlds/default.yaml)")
    ap.add_argument("--enterprises", type=int, default=60)
    ap.add_argument("--interviewers", type=int, default=None,
                    help="virtual interviewers (default: 1 per 10 enterprises, at least 4)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--full", action="store_true", help="360 enterprises, 36 interviewers")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--jobs", type=int, default=2, help="strategies run in parallel processes")
    ap.add_argument("--keep", default=None, help="keep the databases in this directory")
    ap.add_argument("--json", default=None, help="also write the reports as JSON here")
    ns = ap.parse_args(argv)
    n = 360 if ns.full else ns.enterprises
    k = ns.interviewers or max(4, n // 10)
    strategies = [s.strip() for s in ns.strategies.split(",") if s.strip()]
    for s in strategies:
        if s not in STRATEGIES:
            ap.error(f"unknown strategy {s!r}; one of {', '.join(STRATEGIES)}")
    directory = ns.keep or tempfile.mkdtemp(prefix="cati-bench-fieldwork-")
    Path(directory).mkdir(parents=True, exist_ok=True)
    jobs = [(s, ns.world, n, k, ns.seed, directory) for s in strategies]
    with ProcessPoolExecutor(max_workers=max(1, ns.jobs)) as pool:
        dicts = list(pool.map(run_one, jobs))
    reports = []
    for d in dicts:
        fields = {f: d[f] for f in FieldworkReport.__dataclass_fields__}
        reports.append(FieldworkReport(**fields))
    for r in reports:
        print(r.table())
        print()
    print(f"world {reports[0].world}, {n} enterprises, {k} interviewers, seed {ns.seed}")
    print(comparison_table(reports))
    by = {r.strategy: r.completes_per_interviewer_hour for r in reports}
    ours = next((r for r in reports if r.strategy == "ours"), None)
    if ours is not None:
        checks = []
        if by.get("call_list"):
            checks.append(("ours >= 1.25 x call_list", by["ours"] / by["call_list"], 1.25))
        if by.get("quexs_style"):
            checks.append(("ours >= 1.10 x quexs_style", by["ours"] / by["quexs_style"], 1.10))
        if by.get("oracle"):
            checks.append(("ours >= 0.75 x oracle", by["ours"] / by["oracle"], 0.75))
        for name, value, target in checks:
            print(f"target {name}: {value:.3f} {'met' if value >= target else 'MISSED'}")
        print(f"target zero over-quota: {ours.overquota} {'met' if ours.overquota == 0 else 'MISSED'}")
        print(f"target no enterprise short while sample remains: {ours.short_enterprises} "
              f"{'met' if ours.short_enterprises == 0 else 'MISSED'}")
    if ns.json:
        Path(ns.json).write_text(json.dumps(dicts, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    for r in reports:
        print(r.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
