"""Strategy comparison on simulated fieldwork (issue 3 §6): our scheduler against a plain call list, queXS-style
ordering and an oracle, same world, same seed, each strategy on a fresh SQLite database.

    python scripts/bench_fieldwork.py                          # default world, 60 enterprises
    python scripts/bench_fieldwork.py --world config/worlds/hard_to_reach.yaml --enterprises 120
    python scripts/bench_fieldwork.py --full                   # 360 enterprises (slow)
    python scripts/bench_fieldwork.py --deadline-days 10       # the study must finish by day 10: shortfall
    python scripts/bench_fieldwork.py --team flexible          # variant: idle interviewers sent home unpaid

Interviewers are paid for every planned shift hour of the world's shift plan (interviewers.shift_plan, or the
legacy weekday_shifts / weekend_shifts / weekend_share), whether they dial, talk or wait. The headline figure is
completes per paid interviewer-hour. Prints each strategy's report, a comparison table, the targets of issue 20
(ours ≥ 1.20× call_list and ≥ 1.10× quexs_style in completes per paid hour; calendar days and sample used per
complete no more than quexs_style's; zero over-quota; no enterprise short while sample remains), then exactly one
machine-readable line per strategy:

    strategy=<name> completes_per_paid_hour=<x> calendar_days=<n> idle_share=<x> overquota=<n> short_enterprises=<n> dials_per_complete=<x>

scripts/bench_fieldwork_matrix.py runs this over worlds × seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_one(args: tuple) -> dict:
    """One strategy on one world and seed, on a fresh SQLite database (a tuple, for ProcessPoolExecutor.map)."""
    strategy, world_file, n_enterprises, n_interviewers, seed, directory, *rest = args
    team, deadline_days, best_time_ratio = (list(rest) + [None, None, None])[:3]
    from cati.db import make_engine, make_sessionmaker, transaction
    from cati.migrate import upgrade
    from cati.simulation import Simulator, World

    world = World.load(world_file)
    tag = f"-btr{best_time_ratio}" if best_time_ratio is not None else ""
    path = Path(directory) / f"{world.name}-{strategy}-s{seed}-{team or 'world'}-d{deadline_days or 0}{tag}.sqlite"
    path.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    if best_time_ratio is not None:
        # A variant of the default study with another calling_rules.best_time_ratio (a newer version, which the
        # simulator's install of the shipped study keeps).
        import yaml

        from cati.services.studies import default_study_file, install_study

        data = yaml.safe_load(default_study_file().read_text(encoding="utf-8"))
        data["version"] += 1
        data["calling_rules"]["best_time_ratio"] = best_time_ratio
        variant = path.with_suffix(".study.yaml")
        variant.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        with transaction(make_sessionmaker(engine)) as s:
            install_study(s, variant)
    try:
        report = Simulator(make_sessionmaker(engine), world, strategy=strategy, seed=seed,
                           n_enterprises=n_enterprises, n_interviewers=n_interviewers, team=team,
                           deadline_days=deadline_days).run()
    finally:
        engine.dispose()
    return report.to_dict()


def report_of(d: dict):
    from cati.simulation import FieldworkReport

    return FieldworkReport(**{f: d[f] for f in FieldworkReport.__dataclass_fields__})


def targets(reports) -> list[tuple[str, str, bool]]:
    """Issue 20's targets for one world and seed: (name, measured, met)."""
    by = {r.strategy: r for r in reports}
    ours = by.get("ours")
    out: list[tuple[str, str, bool]] = []
    if ours is None:
        return out
    for other, need in (("call_list", 1.20), ("quexs_style", 1.10)):
        r = by.get(other)
        if r is not None and r.completes_per_paid_hour:
            x = ours.completes_per_paid_hour / r.completes_per_paid_hour
            out.append((f"ours >= {need:.2f} x {other} (completes per paid hour)", f"{x:.3f}", x >= need))
    q = by.get("quexs_style")
    if q is not None:
        out.append(("calendar days <= quexs_style", f"{ours.calendar_days} vs {q.calendar_days}",
                    ours.calendar_days <= q.calendar_days and ours.quotas_filled >= q.quotas_filled))
        out.append(("sample used per complete <= quexs_style",
                    f"{ours.sample_used_per_complete:.2f} vs {q.sample_used_per_complete:.2f}",
                    ours.sample_used_per_complete <= q.sample_used_per_complete))
    out.append(("zero over-quota", str(ours.overquota), ours.overquota == 0))
    out.append(("no enterprise short while sample remains", str(ours.short_enterprises), ours.short_enterprises == 0))
    return out


def main(argv: list[str] | None = None) -> int:
    from cati.simulation import STRATEGIES, comparison_table

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", default=None, help="world file (default config/worlds/default.yaml)")
    ap.add_argument("--enterprises", type=int, default=60)
    ap.add_argument("--interviewers", type=int, default=None,
                    help="virtual interviewers (default: 1 per 10 enterprises, at least 4)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--full", action="store_true", help="360 enterprises, 36 interviewers")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--team", choices=("fixed", "flexible"), default=None,
                    help="fixed: paid for every planned hour (the world's default); flexible: a variant whose idle "
                         "interviewers are sent home unpaid (reports the hours cut)")
    ap.add_argument("--deadline-days", type=int, default=None,
                    help="the study must finish by the end of day N; the shortfall at N is reported")
    ap.add_argument("--best-time-ratio", type=float, default=None,
                    help="variant: run the default study with this calling_rules.best_time_ratio (0: no hold-back)")
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
    if ns.deadline_days is not None and ns.deadline_days < 1:
        ap.error("--deadline-days must be at least 1")
    jobs = [(s, ns.world, n, k, ns.seed, directory, ns.team, ns.deadline_days, ns.best_time_ratio)
            for s in strategies]
    if ns.jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=ns.jobs) as pool:
            dicts = list(pool.map(run_one, jobs))
    else:
        dicts = [run_one(j) for j in jobs]
    reports = [report_of(d) for d in dicts]
    for r in reports:
        print(r.table())
        print()
    team = reports[0].team
    print(f"world {reports[0].world}, {n} enterprises, {k} interviewers, seed {ns.seed}, team {team}"
          + (" (VARIANT: idle interviewers sent home unpaid)" if team == "flexible" else " (paid for every planned hour)"))
    print(comparison_table(reports))
    if team == "flexible":
        print("hours cut (flexible team): " + ", ".join(f"{r.strategy} {r.hours_cut:.1f} h of {r.planned_hours:.1f}"
                                                        for r in reports))
    if ns.best_time_ratio is not None:
        print(f"VARIANT: the default study with calling_rules.best_time_ratio = {ns.best_time_ratio}")
    if ns.deadline_days:
        print(f"deadline: day {ns.deadline_days}; shortfall at the deadline (completes missing): "
              + ", ".join(f"{r.strategy} {r.shortfall} ({r.short_total} enterprises short)" for r in reports))
    for name, value, met in targets(reports):
        print(f"target {name}: {value} {'met' if met else 'MISSED'}")
    if ns.json:
        Path(ns.json).write_text(json.dumps(dicts, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    for r in reports:
        print(r.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
