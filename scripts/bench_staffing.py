"""What following the staffing advice gains: the same world and seed on the world's shift plan and on the plan the
advice gives, with the same paid hours per interviewer-week.

1. Fieldwork on the world's own shift plan (``ours``), as in ``bench_fieldwork.py``.
2. The staffing advice (``cati.services.staffing``) from that study's database: completes per paid interviewer-hour
   for every weekday/weekend part of the day, learned from its own dials, calls and interviews.
3. An advised shift plan: the same weekly paid hours per interviewer as the world's plan, spent on the parts of the
   day with the most completes per paid hour (whole parts; the last one trimmed to the hours left).
4. Fieldwork again on the advised plan, same world, same seed, fresh database.

    python scripts/bench_staffing.py                         # default world, 60 enterprises, seed 1
    python scripts/bench_staffing.py --world config/worlds/office_hours_b2b.yaml --seed 2

Prints both runs' figures and one machine-readable line per plan:
``plan=<world|advised> completes_per_paid_hour=<x> paid_hours=<x> calendar_days=<n> weekly_hours=<x>``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime, time, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def weekly_hours(groups) -> float:
    """Paid hours per interviewer-week of a shift plan (groups weighted by their share)."""
    total = 0.0
    for g in groups:
        for _day, shifts in g["days"].items():
            for a, b in shifts:
                total += g["share"] * ((datetime.combine(datetime.min, b) - datetime.combine(datetime.min, a))
                                       .total_seconds() / 3600)
    return total


def _fmt(t: time) -> str:
    return t.strftime("%H:%M")


def advised_plan(slots, rules, hours_per_week: float) -> tuple[list[dict], float]:
    """One group working the best parts of the day (by completes per paid hour) for ``hours_per_week``.

    A weekday part is worked on all 5 weekdays, a weekend part on both weekend days; its hours are its overlap
    with the calling windows. Parts are taken best first; the last one is shortened to the hours left."""
    weekday: list[tuple[time, time]] = []
    weekend: list[tuple[time, time]] = []
    left = hours_per_week
    parts = {name: (a, b) for name, a, b in rules.day_parts}
    for s in slots:
        if left <= 0.01:
            break
        a, b = parts[s.part]
        windows = rules.weekend_windows if s.weekend else rules.weekday_windows
        pieces = [(max(a, wa), min(b, wb)) for wa, wb in windows if max(a, wa) < min(b, wb)]
        days = 2 if s.weekend else 5
        for pa, pb in pieces:
            hours = days * (datetime.combine(datetime.min, pb) - datetime.combine(datetime.min, pa)).total_seconds() / 3600
            if hours > left:  # trim to the hours left, in whole minutes
                minutes = int(left / days * 60)
                if minutes < 30:
                    left = 0
                    break
                pb = (datetime.combine(datetime.min, pa) + timedelta(minutes=minutes)).time()
                hours = days * minutes / 60
            (weekend if s.weekend else weekday).append((pa, pb))
            left -= hours
    group = {"name": "advised", "share": 1.0,
             "weekday": [[_fmt(a), _fmt(b)] for a, b in sorted(weekday)],
             "weekend": [[_fmt(a), _fmt(b)] for a, b in sorted(weekend)]}
    return [group], hours_per_week - max(left, 0.0)


def run(world, seed: int, n_enterprises: int, path: Path):
    from cati.db import make_engine, make_sessionmaker
    from cati.migrate import upgrade
    from cati.simulation import Simulator

    path.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    factory = make_sessionmaker(engine)
    # the team scaled to the sample as in bench_fieldwork.py (one interviewer per 10 enterprises, at least 4)
    report = Simulator(factory, world, strategy="ours", seed=seed, n_enterprises=n_enterprises,
                       n_interviewers=max(4, n_enterprises // 10)).run()
    return report, engine, factory


def main(argv: list[str] | None = None) -> int:
    from cati.models import Study
    from cati.services.contact_model import reset_contact_models
    from cati.services.scheduling import rules_for
    from cati.services.staffing import slot_yields
    from cati.simulation import World

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--enterprises", type=int, default=60)
    args = ap.parse_args(argv)
    world = World.load(args.world)
    hours = weekly_hours(world.shift_groups())
    with tempfile.TemporaryDirectory(prefix="cati-staffing-") as tmp:
        reset_contact_models()
        base, engine, factory = run(world, args.seed, args.enterprises, Path(tmp) / "world.sqlite")
        with factory() as s:
            study = s.query(Study).first()
            end = world.start() + timedelta(days=base.calendar_days + 1)
            slots = slot_yields(s, study, end)
            plan, planned = advised_plan(slots, rules_for(study), hours)
        engine.dispose()
        reset_contact_models()
        advised_world = world.with_overrides(interviewers={"shift_plan": plan})
        adv, engine2, _ = run(advised_world, args.seed, args.enterprises, Path(tmp) / "advised.sqlite")
        engine2.dispose()
    print(f"world {world.name}, seed {args.seed}, {args.enterprises} enterprises; {hours:.1f} paid hours per "
          "interviewer-week in both plans")
    print("completes per paid hour by part of the day, learned from the first run:")
    for s in slots:
        print(f"  {'weekend' if s.weekend else 'weekday'} {s.part:10} contact {s.contact_rate:6.1%}  "
              f"{s.completes_per_paid_hour:5.2f} completes/paid h  ({s.dials} dials)")
    print(f"advised plan: weekday {plan[0]['weekday']} weekend {plan[0]['weekend']} ({planned:.1f} h/week)")
    print(f"{'plan':10} {'completes/paid h':>17} {'paid hours':>11} {'days':>5} {'idle':>6}")
    for name, r in (("world", base), ("advised", adv)):
        print(f"{name:10} {r.completes_per_paid_hour:17.3f} {r.paid_hours:11.1f} {r.calendar_days:5d} "
              f"{r.idle_share:6.1%}")
    gain = adv.completes_per_paid_hour / base.completes_per_paid_hour if base.completes_per_paid_hour else 0
    print(f"advised / world: {gain:.3f}x completes per paid hour")
    for name, r, h in (("world", base, hours), ("advised", adv, planned)):
        print(f"plan={name} completes_per_paid_hour={r.completes_per_paid_hour:.3f} paid_hours={r.paid_hours:.1f} "
              f"calendar_days={r.calendar_days} weekly_hours={h:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
