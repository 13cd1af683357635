"""Issue 20 items 1-2: the simulator pays for every planned shift hour; the flexible team is a labelled variant
that reports the hours cut; the deadline variant; the benchmark's contract line."""

from __future__ import annotations

import re
from datetime import time

import pytest

from cati.simulation import Simulator, World, WorldError

# Two interviewers on one shift group whose shift opens an hour before the study's weekday calling window (09:00):
# every working day each of them waits (paid) from 08:00 to 09:00 whatever the strategy does. The quota is far
# more than two days can fill, so a 2-day deadline ends the fieldwork at midnight of day 2 (a Tuesday).
PLAN = [{"name": "early", "share": 1.0, "weekday": [["08:00", "12:00"], ["13:30", "17:00"]]}]
SHIFT_HOURS = 4 + 3.5  # per interviewer and weekday
LONG = {
    "name": "paid",
    "sample": {"enterprises": 3, "quota": 60, "per_enterprise": 100, "replicate_size": 100},
    "interviewers": {"count": 2, "refusal_converters": 1, "shift_plan": PLAN},
}


def test_every_planned_hour_is_paid_and_waiting_counts_as_idle(session_factory):
    world = World.from_mapping(LONG, "test")
    report = Simulator(session_factory, world, seed=3, deadline_days=2).run()

    assert report.team == "fixed"
    assert report.end_reason == "deadline" and report.deadline_days == 2 and report.calendar_days == 2
    # Planned hours: 2 interviewers × 2 weekdays × 7.5 h, computed here from the plan, not read from the engine.
    assert report.planned_hours == pytest.approx(2 * 2 * SHIFT_HOURS)
    # Paid = every planned hour (plus any interview that ran past a shift's end); nothing was cut.
    assert report.hours_cut == pytest.approx(0.0, abs=0.01)
    assert report.interviewer_hours == pytest.approx(report.planned_hours + report.overtime_hours, abs=0.01)
    assert 0 <= report.overtime_hours < 2 * 2 * 0.5
    # The 08:00-09:00 hour before the calling window is paid and idle: at least 1 h × 2 interviewers × 2 days.
    assert report.idle_hours >= 4.0 - 0.01
    assert report.idle_share == pytest.approx(report.idle_hours / report.interviewer_hours)
    assert report.completes_per_paid_hour == pytest.approx(report.completes / report.interviewer_hours)
    # The deadline variant: the quota cannot be filled in two days; the shortfall is what is missing.
    assert report.completes < report.quota_total
    assert report.shortfall == report.quota_total - report.completes
    assert report.short_total == 3


def test_flexible_team_is_a_variant_that_reports_the_hours_cut(sqlite_template, tmp_path):
    import shutil

    from cati.db import make_engine, make_sessionmaker

    def run(team: str):
        path = tmp_path / f"{team}.sqlite"
        shutil.copy(sqlite_template, path)
        engine = make_engine(f"sqlite:///{path}")
        try:
            return Simulator(make_sessionmaker(engine), World.from_mapping(LONG, "test"), seed=3, team=team,
                             deadline_days=2).run()
        finally:
            engine.dispose()

    fixed, flexible = run("fixed"), run("flexible")
    assert flexible.team == "flexible" and "sent home" in flexible.table()
    assert flexible.planned_hours == pytest.approx(fixed.planned_hours)
    # Sent home before 09:00 each day at least (nothing is callable for an hour): > 2 interviewers × 2 days × 45 min.
    assert flexible.hours_cut > 3.0
    # Cut + paid = planned (+ overtime): no hour disappears from the accounts.
    assert flexible.interviewer_hours + flexible.hours_cut == pytest.approx(
        flexible.planned_hours + flexible.overtime_hours, abs=0.03)  # each figure is rounded to 0.01 h
    assert flexible.interviewer_hours < fixed.interviewer_hours
    assert fixed.hours_cut == pytest.approx(0.0, abs=0.01)


CONTRACT = re.compile(
    r"^strategy=(ours|call_list|quexs_style|oracle) completes_per_paid_hour=(\d+\.\d{3}) calendar_days=(\d+) "
    r"idle_share=(\d\.\d{3}) overquota=(\d+) short_enterprises=(\d+) dials_per_complete=(\d+\.\d{2}|inf)$")


def test_benchmark_prints_one_contract_line_per_strategy(tmp_path, capsys, monkeypatch):
    """scripts/bench_fieldwork.py on a tiny world: the table, then exactly one contract line per strategy whose
    figures are the report's."""
    import json
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    monkeypatch.syspath_prepend(str(root / "scripts"))
    sys.modules.pop("bench_fieldwork", None)
    import bench_fieldwork

    wf = tmp_path / "tiny.yaml"
    wf.write_text("name: tiny\nsample: {enterprises: 3, quota: 2, per_enterprise: 10, replicate_size: 10}\n"
                  "interviewers: {count: 2, refusal_converters: 1}\n", encoding="utf-8")
    out_json = tmp_path / "r.json"
    assert bench_fieldwork.main(["--world", str(wf), "--enterprises", "3", "--interviewers", "2", "--seed", "4",
                                 "--strategies", "ours,quexs_style", "--jobs", "1", "--keep", str(tmp_path),
                                 "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    lines = [ln for ln in printed.splitlines() if ln.startswith("strategy=")]
    assert [CONTRACT.match(ln).group(1) for ln in lines] == ["ours", "quexs_style"]
    assert "completes per paid interviewer-hour" in printed and "target zero over-quota" in printed
    reports = {d["strategy"]: d for d in json.loads(out_json.read_text(encoding="utf-8"))}
    for ln in lines:
        m = CONTRACT.match(ln)
        d = reports[m.group(1)]
        assert float(m.group(2)) == pytest.approx(d["completes"] / d["interviewer_hours"], abs=5e-4)
        assert int(m.group(3)) == d["calendar_days"]
        assert float(m.group(4)) == pytest.approx(d["idle_hours"] / d["interviewer_hours"], abs=5e-4)
        assert int(m.group(5)) == d["overquota"] and int(m.group(6)) == d["short_enterprises"]


def test_shift_plan_groups_and_assignment():
    world = World.from_mapping({"interviewers": {"shift_plan": [
        {"name": "day", "share": 0.5, "weekday": [["09:00", "17:00"]]},
        {"name": "evening", "share": 0.25, "weekday": [["13:30", "21:00"]], "sat": [["10:00", "18:00"]]},
        {"name": "weekend", "share": 0.25, "weekend": [["10:00", "18:00"]], "sun": [["12:00", "18:00"]]},
    ]}}, "w.yaml")
    groups = world.shift_groups()
    assert [g["name"] for g in groups] == ["day", "evening", "weekend"]
    assert groups[1]["days"][5] == [(time(10), time(18))] and groups[1]["days"][6] == []
    assert groups[2]["days"][6] == [(time(12), time(18))] and groups[2]["days"][0] == []
    assign = world.assign_shift_groups(8)
    assert sorted(assign) == [0, 0, 0, 0, 1, 1, 2, 2]
    assert assign[:3] == [0, 1, 2]  # the first interviewers (the refusal converters) are spread over the groups
    # The legacy keys still describe a plan: everybody on weekdays, weekend_share also at weekends.
    legacy = World.from_mapping({}, "d")
    g = legacy.shift_groups()
    assert [x["share"] for x in g] == [pytest.approx(0.4), pytest.approx(0.6)]
    assert legacy.assign_shift_groups(6).count(0) == 2


@pytest.mark.parametrize(("plan", "key", "words"), [
    ([{"share": 0.5, "weekday": [["09:00", "12:00"]]}], "interviewers.shift_plan[*].share", "sum to 1"),
    ([{"share": 1.0, "weekdays": [["09:00", "12:00"]]}], "interviewers.shift_plan[0].weekdays", "unknown key"),
    ([{"weekday": [["09:00", "12:00"]]}], "interviewers.shift_plan[0].share", "missing"),
    ([{"share": 1.0}], "interviewers.shift_plan[0]", "without any shift"),
    ([{"share": 1.0, "weekday": [["09:00", "13:00"], ["12:00", "15:00"]]}], "interviewers.shift_plan[0].weekday",
     "overlap"),
    ([{"share": 1.0, "sat": [["9", "12:00"]]}], "interviewers.shift_plan[0].sat[0]", "a time like"),
    ([{"share": 1.0, "weekend": [["18:00", "10:00"]]}], "interviewers.shift_plan[0].weekend[0]", "before"),
    ("evenings", "interviewers.shift_plan", "expected a list"),
])
def test_shift_plan_errors_name_the_key(plan, key, words):
    with pytest.raises(WorldError) as err:
        World.from_mapping({"interviewers": {"shift_plan": plan}}, "w.yaml")
    assert f"w.yaml: {key}:" in str(err.value) and words in str(err.value)


def test_team_must_be_fixed_or_flexible():
    with pytest.raises(WorldError, match="interviewers.team: expected one of fixed, flexible"):
        World.from_mapping({"interviewers": {"team": "zero-hours"}}, "w.yaml")
