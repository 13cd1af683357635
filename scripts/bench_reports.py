"""Benchmark: one report per enterprise for a study shaped like the reference (360 enterprises, 15 industries,
7,385 respondents), as HTML and as PDF, with parallel workers; plus the industry report.

Targets (issue 8): 360 HTML reports ≤ 60 s, 360 PDF reports ≤ 5 min on this machine.

    python scripts/bench_reports.py                 # full run (HTML, PDF, industry)
    python scripts/bench_reports.py --skip-pdf      # HTML only
    python scripts/bench_reports.py --enterprises 60 --workers 2
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--enterprises", type=int, default=360)
    ap.add_argument("--industries", type=int, default=15)
    ap.add_argument("--respondents", type=int, default=7385)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--n-boot", type=int, default=200, help="bootstrap replicates for the scoring step")
    ap.add_argument("--skip-pdf", action="store_true")
    ap.add_argument("--keep", type=Path, default=None, help="keep the reports in this folder")
    args = ap.parse_args()

    from reports.enterprise import build_enterprise_reports
    from reports.industry import build_industry_report
    from scoring import score_study
    from scoring.spec import ScoringSpec
    from scoring.synthetic import make_synthetic_responses

    study = yaml.safe_load((ROOT / "config/studies/csat_contact_center.yaml").read_text(encoding="utf-8"))
    out = args.keep or Path(tempfile.mkdtemp(prefix="bench_reports_"))
    rows: list[tuple[str, int, float, float, str]] = []

    def cpu() -> float:
        """CPU seconds of this process and its (finished) worker processes: independent of other load."""
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    load = os.getloadavg()[0]

    t, c = time.perf_counter(), cpu()
    df = make_synthetic_responses(args.enterprises, args.industries, args.respondents, seed=1)
    df["OPEN1"] = "希望接通更快一些，转人工不要等太久"
    result = score_study(df, ScoringSpec.from_study(study), n_boot=args.n_boot, seed=0)
    rows.append((f"score (n_boot={args.n_boot})", len(df), time.perf_counter() - t, cpu() - c, "-"))
    verbatims = df[["enterprise_id", "OPEN1"]]

    for fmt, target in (("html", 60.0), ("pdf", 300.0)):
        if fmt == "pdf" and args.skip_pdf:
            continue
        folder = out / fmt
        t, c = time.perf_counter(), cpu()
        paths = build_enterprise_reports(result, study, verbatims=verbatims, out_dir=folder, formats=(fmt,),
                                         workers=args.workers)
        dt, dc = time.perf_counter() - t, cpu() - c
        ok = "yes" if dt <= target * args.enterprises / 360 else "NO"
        rows.append((f"enterprise reports {fmt} ({args.workers} workers)", len(paths), dt, dc,
                     f"<= {target * args.enterprises / 360:.0f} s: {ok}"))
        size = sum(p.stat().st_size for p in paths) / max(1, len(paths)) / 1024
        rows.append((f"  mean file size {fmt}", len(paths), float("nan"), float("nan"), f"{size:.0f} KiB"))

    t, c = time.perf_counter(), cpu()
    build_industry_report(result, study, out_dir=out / "industry", formats=("html", "pdf", "xlsx"))
    rows.append(("industry report html+pdf+xlsx", 1, time.perf_counter() - t, cpu() - c, "-"))

    print(f"\nreports benchmark — {args.enterprises} enterprises, {args.industries} industries, "
          f"{args.respondents} respondents; {os.cpu_count()} CPUs, load average at start {load:.2f}")
    print(f"{'step':44} {'files/rows':>10} {'wall s':>8} {'CPU s':>8} {'wall/item':>9}  target (wall)")
    for name, n, sec, cpu_s, note in rows:
        per = "" if sec != sec else f"{sec / max(1, n):.3f}"
        secs = "" if sec != sec else f"{sec:.1f}"
        cpus = "" if cpu_s != cpu_s else f"{cpu_s:.1f}"
        print(f"{name:44} {n:>10} {secs:>8} {cpus:>8} {per:>9}  {note}")
    print("CPU s counts this process and its workers; with the cores free, wall ≈ CPU / workers + start-up.")
    if args.keep is None:
        shutil.rmtree(out, ignore_errors=True)
    else:
        print(f"reports kept in {out}")


if __name__ == "__main__":
    main()
