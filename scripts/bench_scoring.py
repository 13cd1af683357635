"""Benchmark of the scoring package (issue 4 targets) on synthetic data shaped like the reference study.

1. Reference shape: 360 enterprises, 15 industries, 7,385 respondents (ICC ≈ 0.1, D block ~40 % not asked, some
   8/9 answers), ``score_study`` with 2,000 bootstrap replicates: target ≤ 5 s.
2. 1,000,000 respondents, point estimates (``n_boot=0``): target ≤ 10 s and peak memory ≤ 2 GB. Run in a fresh
   child process so its memory is measured alone: the peak resident set of the whole process (``VmHWM``, includes
   the input DataFrame) and the increase during scoring (peak reset just before scoring via
   ``/proc/self/clear_refs``).

Usage: ``python scripts/bench_scoring.py [--repeat 3] [--big-n 1000000] [--big-enterprises 50000]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scoring import ScoringSpec, make_synthetic_responses, score_study  # noqa: E402

STUDY = ROOT / "config" / "studies" / "csat_contact_center.yaml"


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child_big(n: int, n_ent: int, n_ind: int) -> dict:
    spec = ScoringSpec.from_yaml(STUDY)
    t0 = time.perf_counter()
    df = make_synthetic_responses(n_ent, n_ind, n, seed=1)
    gen_s = time.perf_counter() - t0
    rss_before = _status_kb("VmRSS")
    reset = _reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    res = score_study(df, spec, n_boot=0)
    score_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    hwm = _status_kb("VmHWM")
    return {
        "n": n, "n_enterprises": n_ent, "generate_s": gen_s, "score_s": score_s, "cpu_s": cpu_s,
        "rss_before_mb": (rss_before or 0) / 1024, "peak_during_scoring_mb": (hwm or 0) / 1024 if reset else None,
        "process_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "composite": res.overall["composite"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs of the reference-shape case (best and median)")
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--big-n", type=int, default=1_000_000)
    ap.add_argument("--big-enterprises", type=int, default=50_000,
                    help="enterprises in the big case (default 50,000 = 20 per enterprise, like the study)")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child_big(*args.child)))
        return

    spec = ScoringSpec.from_yaml(STUDY)
    df = make_synthetic_responses(360, 15, 7385, seed=0)
    times, cpus = [], []
    res = None
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        res = score_study(df, spec, n_boot=args.n_boot, seed=0)
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    times.sort()
    best, median = times[0], times[len(times) // 2]
    cpu_median = sorted(cpus)[len(cpus) // 2]
    ent = res.enterprises
    rank_span = (ent["rank_high"] - ent["rank_low"]).median()
    ci_half = ((ent["composite_ci_high"] - ent["composite_ci_low"]) / 2).median()
    r = res.respondents
    g = r.groupby("enterprise_id")["composite"]
    icc = (g.mean().var() - (g.var() / g.count()).mean()) / r["composite"].var()

    rows = [("reference shape: 360 ent / 15 ind / 7,385 resp, "
             f"{args.n_boot} bootstrap", f"best {best:.2f} s, median {median:.2f} s (of {args.repeat})", "≤ 5 s",
             "PASS" if median <= 5 else "FAIL"),
            ("  CPU time (all threads) of the median run", f"{cpu_median:.2f} s", "", "")]
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
          "(wall times stretch when other work shares the CPUs; CPU times less so)")
    print(f"synthetic data: overall composite {res.overall['composite']:.2f} "
          f"(reference study 83.71), ICC of composite {icc:.3f}, D block answered by "
          f"{r['D'].notna().mean():.0%}")
    print(f"  enterprise 95% CI half-width (median) {ci_half:.2f} points; rank interval span (median) "
          f"{rank_span:.0f} places of 360; tiers vs industry: "
          + ", ".join(f"{k} {v}" for k, v in ent["tier"].value_counts().items()))
    if not args.skip_big:
        out = subprocess.run([sys.executable, __file__, "--child", str(args.big_n), str(args.big_enterprises), "15"],
                             capture_output=True, text=True, check=True)
        big = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append((f"{big['n']:,} respondents / {big['n_enterprises']:,} ent, point estimates",
                     f"{big['score_s']:.2f} s", "≤ 10 s", "PASS" if big["score_s"] <= 10 else "FAIL"))
        rows.append(("  CPU time (all threads)", f"{big['cpu_s']:.2f} s", "", ""))
        peak = big["peak_during_scoring_mb"]
        rows.append(("  peak RSS of the process (input frame + scoring)", f"{big['process_peak_mb']:.0f} MB",
                     "≤ 2048 MB", "PASS" if big["process_peak_mb"] <= 2048 else "FAIL"))
        if peak is not None:
            rows.append(("  peak RSS while scoring (incl. input already resident "
                         f"{big['rss_before_mb']:.0f} MB)", f"{peak:.0f} MB", "≤ 2048 MB",
                         "PASS" if peak <= 2048 else "FAIL"))
    w = max(len(r[0]) for r in rows)
    print()
    print(f"{'case':<{w}}  {'measured':<34}  {'target':<10}  result")
    print("-" * (w + 58))
    for case, measured, target, verdict in rows:
        print(f"{case:<{w}}  {measured:<34}  {target:<10}  {verdict}")


if __name__ == "__main__":
    main()
