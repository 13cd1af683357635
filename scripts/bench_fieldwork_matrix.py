"""Issue 20's "Done when" table: the strategy benchmark over worlds × seeds, with PASS/FAIL per world.

    python scripts/bench_fieldwork_matrix.py                       # every config/worlds/*.yaml, seeds 1-3
    python scripts/bench_fieldwork_matrix.py --worlds config/worlds/default.yaml --seeds 1 --enterprises 30

Each (world, seed) runs ours, call_list, quexs_style and oracle on fresh SQLite databases (one process per run,
``--jobs`` at a time), with interviewers paid for every planned shift hour. A world PASSES when, for every seed:
ours ≥ 1.20× call_list and ≥ 1.10× quexs_style in completes per paid interviewer-hour; ours' calendar days ≤
quexs_style's; ours' sample used per complete ≤ quexs_style's; zero over-quota; no enterprise short while
sample remains. A failing world is printed with the targets it missed and the seed. Nothing is averaged away:
every run's figures are printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_fieldwork import report_of, run_one, targets  # noqa: E402

STRATEGIES = ("ours", "call_list", "quexs_style", "oracle")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", nargs="*", default=None, help="world files (default: config/worlds/*.yaml)")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--enterprises", type=int, default=60)
    ap.add_argument("--interviewers", type=int, default=None, help="default: 1 per 10 enterprises, at least 4")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--strategies", default=",".join(STRATEGIES),
                    help="the targets need ours, call_list and quexs_style; oracle is the slowest to simulate")
    ap.add_argument("--team", choices=("fixed", "flexible"), default=None)
    ap.add_argument("--deadline-days", type=int, default=None)
    ap.add_argument("--best-time-ratio", type=float, default=None,
                    help="variant: the default study with this calling_rules.best_time_ratio (0: no hold-back)")
    ap.add_argument("--keep", default=None, help="keep the databases in this directory")
    ap.add_argument("--json", default=None, help="write every run's report as JSON here (as the runs come in)")
    ap.add_argument("--from-json", default=None, help="print the tables of a --json file instead of running")
    ns = ap.parse_args(argv)
    worlds = ns.worlds or [str(p) for p in sorted((ROOT / "config" / "worlds").glob("*.yaml"))]
    seeds = [int(x) for x in ns.seeds.split(",") if x.strip()]
    n = ns.enterprises
    k = ns.interviewers or max(4, n // 10)
    directory = ns.keep or tempfile.mkdtemp(prefix="cati-bench-matrix-")
    Path(directory).mkdir(parents=True, exist_ok=True)
    strategies = [x.strip() for x in ns.strategies.split(",") if x.strip()]
    for x in strategies:
        if x not in STRATEGIES:
            ap.error(f"unknown strategy {x!r}")
    jobs = [(s, w, n, k, seed, directory, ns.team, ns.deadline_days, ns.best_time_ratio) for w in worlds
            for seed in seeds for s in strategies]
    t0 = time.perf_counter()
    dicts = []
    if ns.from_json:
        dicts = json.loads(Path(ns.from_json).read_text(encoding="utf-8"))
        jobs = []
    with ProcessPoolExecutor(max_workers=max(1, ns.jobs)) as pool:
        # Each run's contract line as soon as it is in (in job order), and the JSON so far: a long matrix that is
        # stopped keeps what it measured.
        for job, d in zip(jobs, pool.map(run_one, jobs), strict=True):
            dicts.append(d)
            print(f"[{(time.perf_counter() - t0) / 60:5.1f} min] {Path(job[1]).stem} seed {job[4]}: "
                  f"{report_of(d).line()}", flush=True)
            if ns.json:
                Path(ns.json).write_text(json.dumps(dicts, ensure_ascii=False, indent=1, default=str),
                                         encoding="utf-8")
    wall = time.perf_counter() - t0
    reports = [report_of(d) for d in dicts]
    by_world: dict[str, dict[int, list]] = {}
    for r in reports:
        by_world.setdefault(r.world, {}).setdefault(r.seed, []).append(r)

    print(f"{reports[0].enterprises} enterprises, {reports[0].interviewers} interviewers, "
          f"seeds {sorted({r.seed for r in reports})}, team {reports[0].team}"
          + (f", deadline day {ns.deadline_days}" if ns.deadline_days else "")
          + (f", VARIANT best_time_ratio {ns.best_time_ratio}" if ns.best_time_ratio is not None else "")
          + f"; wall {wall / 60:.1f} min")
    print()
    head = ("| world | seed | strategy | completes/paid h | calendar days | idle share | dials/complete | "
            "sample/complete | over-quota | short (sample left) | short (overall) | filled |")
    print(head)
    print("|" + "---|" * 12)
    for world, runs in by_world.items():
        for seed, rs in runs.items():
            for r in rs:
                print(f"| {world} | {seed} | {r.strategy} | {r.completes_per_paid_hour:.3f} | {r.calendar_days} | "
                      f"{r.idle_share:.1%} | {r.dials_per_complete:.2f} | {r.sample_used_per_complete:.2f} | "
                      f"{r.overquota} | {r.short_enterprises} | {r.short_total} | {r.completes}/{r.quota_total} |")
    print()
    print("| world | seed | ours/call_list | ours/quexs_style | days ours vs quexs | sample/c ours vs quexs | "
          "over-quota | short w/ sample | result |")
    print("|" + "---|" * 9)
    verdicts = {}
    for world, runs in by_world.items():
        failures = []
        for seed, rs in runs.items():
            t = targets(rs)
            vals = {name: (value, met) for name, value, met in t}
            missed = [name for name, _v, met in t if not met]
            failures.extend(f"seed {seed}: {m} ({vals[m][0]})" for m in missed)

            def cell(prefix: str, vals=vals) -> str:
                for name, (value, met) in vals.items():
                    if name.startswith(prefix):
                        return f"{value}{'' if met else ' ✗'}"
                return "-"

            print(f"| {world} | {seed} | {cell('ours >= 1.20 x call_list')} | {cell('ours >= 1.10 x quexs_style')} | "
                  f"{cell('calendar days')} | {cell('sample used')} | {cell('zero over-quota')} | "
                  f"{cell('no enterprise short')} | {'PASS' if not missed else 'FAIL'} |")
        verdicts[world] = failures
    print()
    for world, failures in verdicts.items():
        if failures:
            print(f"{world}: FAIL — " + "; ".join(failures))
        else:
            print(f"{world}: PASS (all seeds, all targets)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
