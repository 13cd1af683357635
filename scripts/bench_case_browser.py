"""Benchmark of the supervisor's screens (the case browser, DNC list, appointments, quotas and the rest) at the
reference study's size:
360 enterprises, 200,000 cases (one number each), 60,000 dials by 40 interviewers, 4,000 appointments.

    python scripts/bench_case_browser.py                        # SQLite in a temp folder
    python scripts/bench_case_browser.py --db-url postgresql://postgres@127.0.0.1:5432/bench_cases   # an empty db

Times each screen through the real app (Flask test client in process: the server's time plus the client's), 7 runs
each after one warm-up, and prints the median and the worst in milliseconds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cati.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from cati.migrate import upgrade  # noqa: E402
from cati.models import (  # noqa: E402
    Appointment,
    AppointmentStatus,
    CallAttempt,
    Case,
    CasePhone,
    DoNotCall,
    Enterprise,
    Industry,
    Role,
    User,
)
from cati.services.studies import default_study_file, install_study  # noqa: E402
from cati.services.users import hash_password  # noqa: E402


def build(db_url: str, *, enterprises: int, cases: int, interviewers: int) -> dict:
    engine = make_engine(db_url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    rng = random.Random(7)
    now = datetime.now(UTC)
    statuses = ["ready"] * 6 + ["final"] * 2 + ["unreleased", "stopped"]
    with transaction(factory) as s:
        study = install_study(s, default_study_file())
        ind = Industry(name="银行")
        s.add(ind)
        s.flush()
        s.execute(insert(Enterprise), [dict(id=e + 1, study_id=study.id, external_id=f"E{e + 1:04d}",
                                            name=f"企业{e + 1}", industry_id=ind.id, quota_target=20,
                                            attributes={}) for e in range(enterprises)])
        pw = hash_password("password-123")
        users = [User(username=f"i{k}", display_name=f"访员{k}", password_hash=pw, role=Role.INTERVIEWER)
                 for k in range(interviewers)]
        users.append(User(username="sup", display_name="督导", password_hash=pw, role=Role.SUPERVISOR))
        s.add_all(users)
        s.flush()
        uids = [u.id for u in users[:-1]]
        batch = 20_000
        for start in range(1, cases + 1, batch):
            ids = range(start, min(start + batch, cases + 1))
            rows = []
            for i in ids:
                st = rng.choice(statuses)
                rows.append(dict(id=i, study_id=study.id, enterprise_id=1 + i % enterprises, case_ref=f"C{i:08d}",
                                 replicate=1, status=st, timezone="Asia/Shanghai",
                                 next_call_at=now + timedelta(minutes=rng.randint(-600, 600)),
                                 attempts=rng.randint(0, 4), tried_day_parts=0, needs_converter=False,
                                 final_disposition=rng.choice(["1.1", "2.112", "2.29", "4.80"]) if st == "final"
                                 else None, last_outcome=rng.choice([None, "3.13", "2.111", "3.12"]),
                                 assigned_to_id=rng.choice(uids) if rng.random() < 0.02 else None,
                                 attributes={"service_type": "投诉", "last_call_date": "2026-10-17"},
                                 imported_at=now))
            s.execute(insert(Case), rows)
            s.execute(insert(CasePhone), [dict(study_id=study.id, case_id=i, position=1,
                                               e164=f"+86139{i:08d}", kind="mobile", status="ok", attempts=0)
                                          for i in ids])
        s.execute(insert(CallAttempt), [dict(call_id=f"a{k}", case_id=rng.randint(1, cases),
                                             interviewer_id=rng.choice(uids), backend="simulated",
                                             status="ended", requested_at=now - timedelta(minutes=k % 5000),
                                             outcome="3.13", amd_requested=False)
                                        for k in range(60_000)])
        s.execute(insert(Appointment), [dict(study_id=study.id, case_id=rng.randint(1, cases),
                                             interviewer_id=rng.choice(uids + [None]),
                                             due_at=now + timedelta(minutes=rng.randint(-3000, 3000)),
                                             status=rng.choice([AppointmentStatus.PENDING] * 3
                                                               + [AppointmentStatus.BROKEN]))
                                        for _ in range(4_000)])
        s.execute(insert(DoNotCall), [dict(e164=f"+86139{i:08d}", source="supervisor",
                                           reason="respondent asked", added_at=now)
                                      for i in rng.sample(range(1, cases + 1), 500)])
    engine.dispose()
    return {"interviewer": uids[3]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db-url")
    ap.add_argument("--cases", type=int, default=200_000)
    ap.add_argument("--enterprises", type=int, default=360)
    ap.add_argument("--no-build", action="store_true", help="time an already built --db-url again")
    ap.add_argument("--only", help="comma-separated screen names to time (e.g. outcomes,staffing)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    url = a.db_url or f"sqlite:///{tmp / 'bench.sqlite'}"
    t0 = time.perf_counter()
    if a.no_build:
        with make_sessionmaker(make_engine(url))() as s:
            ids = {"interviewer": s.scalar(select(User.id).where(User.username == "i3"))}
    else:
        ids = build(url, enterprises=a.enterprises, cases=a.cases, interviewers=40)
        print(f"built {a.cases} cases in {time.perf_counter() - t0:.0f} s ({url.split(':')[0]}: {url})")

    from cati.app import create_app

    app = create_app({"database_url": url, "instance_path": tmp / "instance", "secret_key": "bench"})
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = html.split('name="csrf-token" content="')[1].split('"')[0]
    client.post("/login", data={"username": "sup", "password": "password-123", "csrf_token": token})
    uid = ids["interviewer"]
    with make_sessionmaker(make_engine(url))() as s:
        mid = s.scalar(select(Case.id).order_by(Case.id).offset(a.cases // 2).limit(1))
    pages = {
        "cases (first page)": "/supervisor/cases",
        "cases, deep page (after id n/2)": f"/supervisor/cases?after={mid}",
        "cases by enterprise": "/supervisor/cases?enterprise=17",
        "cases by enterprise + status": "/supervisor/cases?enterprise=17&status=ready",
        "cases by status": "/supervisor/cases?status=stopped",
        "cases by outcome 2.11": "/supervisor/cases?outcome=2.11",
        "cases by interviewer": f"/supervisor/cases?interviewer={uid}",
        "cases by whole phone": "/supervisor/cases?phone=139 0012 3456",
        "cases by phone digits (6)": "/supervisor/cases?phone=123456",
        "cases by missed appointment": "/supervisor/cases?appointment=missed",
        "case page": f"/supervisor/case/{mid}",
    }
    extra = [("/supervisor/dnc", "dnc list"), ("/supervisor/dnc?q=4567", "dnc search"),
             ("/supervisor/appointments", "appointments (missed + calendar)"),
             ("/supervisor/quotas", "quotas"),
             (f"/supervisor/interviewers?uid={uid}&period=30d", "interviewers + hourly (30 days)"),
             ("/supervisor/", "quota board"), ("/supervisor/sample", "sample"), ("/supervisor/outcomes", "outcomes"),
             ("/supervisor/qc", "qc"), ("/supervisor/staffing", "staffing")]
    for path, name in extra:
        pages[name] = path
    if a.only:
        pages = {k: v for k, v in pages.items() if k in a.only.split(",")}
    print(f"{'screen':40} {'first ms':>9} {'median ms':>10} {'max ms':>8}")
    first: dict[str, float] = {}
    missing = []
    for name, path in pages.items():  # the first open of each screen in a fresh process (cold caches)
        t = time.perf_counter()
        if client.get(path).status_code != 200:
            missing.append(name)
        first[name] = (time.perf_counter() - t) * 1000
    for name in missing:
        print(f"{name:40} not served ({client.get(pages[name]).status_code})")
        del pages[name]
    for name, path in pages.items():
        times = []
        for _ in range(7):
            t = time.perf_counter()
            r = client.get(path)
            assert r.status_code == 200, (path, r.status_code)
            times.append((time.perf_counter() - t) * 1000)
        print(f"{name:40} {first[name]:9.1f} {statistics.median(times):10.1f} {max(times):8.1f}")


if __name__ == "__main__":
    main()
