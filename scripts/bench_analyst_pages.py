"""Benchmark of the analyst's pages at the demo's scale: p50 / p95 per page, live scores and a frozen release.

    python scripts/bench_analyst_pages.py                          # 360 enterprises, 15 industries, 7,385 completes
    python scripts/bench_analyst_pages.py --enterprises 60 --completes 1200 --repeat 10
    python scripts/bench_analyst_pages.py --db-url postgresql://user:pw@host/emptydb
    python scripts/bench_analyst_pages.py --report-job --repeat 5   # + 360 enterprise PDFs: web job vs CLI

What it does:
1. builds a finished study in a fresh database (SQLite in a temp folder unless ``--db-url``) with
   ``tests.factories.finished_fieldwork`` (answers from ``scoring.synthetic``, provinces, open answers);
2. serves the real app with ``cati serve --no-jobs`` in a subprocess and signs in as an analyst;
3. asks each page once cold (the first live request scores the study: 2,000 bootstrap replicates), freezes a
   release through the page (timed), then asks each page ``--repeat`` times on live scores and on the release;
4. prints, per page, the client's wall time p50 / p95 and the server's own time (``Server-Timing``) p95, in ms;
5. with ``--report-job``: every enterprise's PDF report of the release as a web job (started from the page, run
   by ``cati serve``'s worker, polled like the page does) against ``cati report enterprise --all --release``.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cati.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from cati.migrate import upgrade  # noqa: E402
from cati.models import Enterprise, Role  # noqa: E402
from tests import factories  # noqa: E402

STUDY_FILE = ROOT / "config" / "studies" / "csat_contact_center.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def build(db_url: str, enterprises: int, industries: int, completes: int) -> dict:
    from sqlalchemy import select

    from cati.services.studies import install_study

    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    started = time.perf_counter()
    with transaction(factory) as s:
        study = install_study(s, STUDY_FILE)
        factories.finished_fieldwork(s, study, enterprises=enterprises, industries=industries, completes=completes,
                                     seed=7)
        factories.user(s, Role.ANALYST, username="bench.analyst", password="bench-password-1")
        ent = s.scalars(select(Enterprise).order_by(Enterprise.id)).first()
        out = {"eid": ent.external_id, "industry": ent.industry.name}
    engine.dispose()
    out["build_s"] = time.perf_counter() - started
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=360)
    ap.add_argument("--industries", type=int, default=15)
    ap.add_argument("--completes", type=int, default=7385)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--db-url", default=None, help="An empty database (default: SQLite in a temp folder).")
    ap.add_argument("--report-job", action="store_true",
                    help="Also time every enterprise's PDF report: the web job against the CLI.")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-analyst-"))
    db_url = args.db_url or f"sqlite:///{tmp / 'cati.sqlite'}"
    print(f"building {args.enterprises} enterprises / {args.industries} industries / {args.completes} completes …",
          flush=True)
    world = build(db_url, args.enterprises, args.industries, args.completes)
    print(f"  built in {world['build_s']:.1f} s", flush=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CATI_")}, "CATI_DATABASE_URL": db_url,
           "CATI_INSTANCE_PATH": str(tmp / "instance"), "CATI_SECRET_KEY": "bench-secret",
           "CATI_TELEPHONY": "simulated"}
    log = open(tmp / "serve.log", "w")  # noqa: SIM115 - closed at the end
    serve = [sys.executable, "-m", "cati", "serve", "--port", str(port)] + ([] if args.report_job else ["--no-jobs"])
    proc = subprocess.Popen(serve, cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit((tmp / "serve.log").read_text()[-2000:])
            time.sleep(0.2)
        http = requests.Session()
        token = re.search(r'name="csrf-token" content="([^"]+)"', http.get(url + "/login").text).group(1)
        signed = http.post(url + "/login", data={"username": "bench.analyst", "password": "bench-password-1",
                                                 "csrf_token": token}, allow_redirects=False)
        if signed.headers.get("Location", "").rstrip("/") != "/analyst":
            raise SystemExit(f"sign-in failed: {signed.status_code} {signed.headers.get('Location')}")
        pages = {
            "overall": "/analyst", "industries": "/analyst/industries",
            "one industry": f"/analyst/industries/{world['industry']}",
            "enterprises": "/analyst/enterprises",
            "enterprises filtered+sorted": f"/analyst/enterprises?industry={world['industry']}&sort=composite&dir=desc",
            "one enterprise": f"/analyst/enterprises/{world['eid']}", "drivers": "/analyst/drivers",
            "drivers (items)": "/analyst/drivers?level=item", "releases": "/analyst/releases", "jobs": "/analyst/jobs",
        }

        def get(path: str) -> tuple[float, float]:
            t0 = time.perf_counter()
            r = http.get(url + path, allow_redirects=False)
            wall = (time.perf_counter() - t0) * 1000
            if r.status_code != 200 or 'id="no-completes"' in r.text:
                raise SystemExit(f"{path}: HTTP {r.status_code} (or no completes shown)")
            m = re.search(r"dur=([\d.]+)", r.headers.get("Server-Timing", ""))
            return wall, float(m.group(1)) if m else float("nan")

        cold = {name: get(path)[0] for name, path in pages.items()}
        token = re.search(r'name="csrf-token" content="([^"]+)"', http.get(url + "/analyst/releases").text).group(1)
        t0 = time.perf_counter()
        r = http.post(url + "/analyst/releases", data={"name": "bench", "n_boot": 2000, "seed": 0,
                                                       "csrf_token": token}, allow_redirects=False)
        freeze_s = time.perf_counter() - t0
        rid = re.search(r"release=(\d+)", r.headers["Location"]).group(1)
        print(f"\nfreezing a release (2,000 replicates) through the page: {freeze_s:.1f} s")
        print(f"\n{'page':30} {'cold ms':>9} | {'live p50':>9} {'p95':>8} {'srv p95':>8} | "
              f"{'release p50':>11} {'p95':>8} {'srv p95':>8}")
        worst = 0.0
        for name, path in pages.items():
            cols = []
            for source in ("live", "release"):
                p = path if source == "live" or name in ("releases",) else \
                    path + ("&" if "?" in path else "?") + f"release={rid}"
                get(p)  # warm (a release is unpacked once per process)
                timings = [get(p) for _ in range(args.repeat)]
                walls = [w for w, _ in timings]
                servers = [s for _, s in timings]
                cols.append((statistics.median(walls), _pct(walls, 0.95), _pct(servers, 0.95)))
                worst = max(worst, _pct(walls, 0.95))
            (l50, l95, ls), (r50, r95, rs) = cols
            print(f"{name:30} {cold[name]:9.0f} | {l50:9.1f} {l95:8.1f} {ls:8.1f} | {r50:11.1f} {r95:8.1f} {rs:8.1f}")
        print(f"\nworst p95: {worst:.0f} ms ({args.repeat} requests per page and source; "
              f"{args.enterprises} enterprises, {args.completes} completes; database {db_url.split(':')[0]})")
        if args.report_job:
            token = re.search(r'name="csrf-token" content="([^"]+)"', http.get(url + "/analyst/jobs").text).group(1)
            t0 = time.perf_counter()
            http.post(url + "/analyst/jobs", data={"product": "enterprise", "formats": "pdf", "lang": "zh-CN",
                                                   "release": rid, "csrf_token": token})
            jid = re.search(r'data-job="(\d+)"', http.get(url + f"/analyst/jobs?release={rid}").text).group(1)
            while True:
                state = http.get(url + f"/analyst/jobs/{jid}.json").json()
                if state["status"] in ("done", "failed"):
                    break
                time.sleep(1)
            web_s = time.perf_counter() - t0
            if state["status"] != "done":
                raise SystemExit(f"job failed: {state['error']}")
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "cati", "report", "enterprise", "--all", "--release", "bench",
                            "--format", "pdf", "--workers", "2", "--out", str(tmp / "cli")], cwd=ROOT, env=env,
                           check=True, capture_output=True)
            cli_s = time.perf_counter() - t0
            print(f"\n{len(state['files'])} enterprise PDF reports of the release: web job {web_s:.0f} s "
                  f"(queued → done, polled every second), CLI {cli_s:.0f} s (process start to exit)")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        log.close()


if __name__ == "__main__":
    main()
