"""Supervisor figures worked by hand: quota board and projection, rollups, interviewer shift stats, outcome
tables and AAPOR rates, completes per day against the plan."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import update

from cati.db import transaction
from cati.models import (
    Appointment,
    CallAttempt,
    Case,
    CaseStatus,
    Interview,
    InterviewStatus,
    QCStatus,
    Study,
)
from cati.models.agents import AgentEvent, AgentStatus
from cati.services import frames
from cati.services import supervision as sv
from cati.services.scheduling import projected_shortfalls
from tests import factories as f

NOW = f.MONDAY_10AM  # 10:00 Asia/Shanghai


def _interview(s, study, case_id, iv_id, started, ended, status=InterviewStatus.COMPLETE):
    row = Interview(study_id=study.id, case_id=case_id, interviewer_id=iv_id, status=status, started_at=started,
                    ended_at=ended, disposition="1.1" if status == InterviewStatus.COMPLETE else None)
    s.add(row)
    s.flush()
    return row


@pytest.fixture
def board_world(session_factory, study):
    """Bank A: 10 of 20 done, 30 open released cases (one at the attempt cap), 5 unreleased, 80 final, 2 pending
    appointments, 3 completes in the last 2 hours. Insurer B: 20 of 20."""
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        a = f.enterprise(s, st, name="甲银行", completes=10)
        a.region = "华南"
        b = f.enterprise(s, st, name="乙保险", industry_name="保险", completes=20)
        b.region = "华东"
        ready = f.cases(s, st, a, 30)
        f.cases(s, st, a, 5, status=CaseStatus.UNRELEASED, replicate=2)
        final = f.cases(s, st, a, 80, status=CaseStatus.FINAL)
        f.cases(s, st, b, 3, status=CaseStatus.FINAL)
        s.execute(update(Case).where(Case.id == ready[0]).values(attempts=6))
        s.execute(update(Case).where(Case.id.in_(final)).values(final_disposition="3.13"))
        for cid in ready[1:3]:
            s.add(Appointment(study_id=st.id, case_id=cid, due_at=NOW + timedelta(hours=1)))
        iv = f.user(s)
        for i, cid in enumerate(final[:3]):
            _interview(s, st, cid, iv.id, NOW - timedelta(minutes=30 + 20 * i), NOW - timedelta(minutes=20 + 20 * i))
        _interview(s, st, final[3], iv.id, NOW - timedelta(hours=5), NOW - timedelta(hours=4, minutes=50))
    return dict(study=st, a=a.id, b=b.id)


def test_quota_board_row_by_hand(session_factory, board_world):
    with transaction(session_factory) as s:
        rows = {r.name: r for r in sv.quota_board(s, board_world["study"], NOW)}
        flagged = projected_shortfalls(s, board_world["study"])
    a, b = rows["甲银行"], rows["乙保险"]
    assert (a.completes, a.quota_target, a.callable_left, a.unreleased, a.final_cases, a.appointments) == \
        (10, 20, 29, 5, 80, 2)
    # yield = (10 + 0.08·20) / (80 + 20) = 0.116; projected = 10 + 30 × 0.116 = 13.48 → 6.52 short
    assert a.yield_per_case == pytest.approx(0.116)
    assert a.projected == pytest.approx(13.48) and a.shortfall == pytest.approx(6.52) and a.short
    assert flagged[board_world["a"]] == pytest.approx(a.shortfall)  # same rule as the auto release
    # The last 2 *calling* hours reach back to Sunday 17:00 local (Monday 09:00-10:00 and Sunday 17:00-18:00), so
    # all 4 completes count (the one ended at 05:10 too) → 2 per calling hour; 10 to go → 5 h of calling time
    # from Monday 10:00: 10:00-12:00, then 13:30-16:30 (the lunch break is not calling time) → 08:30 UTC
    assert a.recent_completes == 4 and a.rate_per_hour == 2.0
    assert a.eta == NOW + timedelta(hours=6, minutes=30)
    assert (b.done, b.short, b.eta, b.pct) == (True, False, None, 100.0)
    assert a.as_dict()["pct"] == 50.0 and a.as_dict()["eta"].startswith("2026-11-23T08:30")


def test_rollups_by_industry_and_region(session_factory, board_world):
    with transaction(session_factory) as s:
        rows = sv.quota_board(s, board_world["study"], NOW)
    ind = {g["key"]: g for g in sv.rollup(rows, "industry")}
    assert ind["银行"]["completes"] == 10 and ind["银行"]["short"] == 1 and ind["银行"]["pct"] == 50.0
    assert ind["保险"]["done"] == 1 and ind["保险"]["pct"] == 100.0
    reg = {g["key"]: g for g in sv.rollup(rows, "region")}
    assert set(reg) == {"华南", "华东"} and reg["华南"]["callable_left"] == 29


def test_rollup_caps_each_enterprise_at_its_target():
    def row(name, done, target=20):
        return sv.BoardRow(1, name, name, "银行", "", "", "active", target, done, 0, 0, 0, 0, 0, 0, 0, 0.1, done,
                           0.0, False, 0.0, None, done >= target)

    g = sv.rollup([row("x", 25), row("y", 5)], "industry")[0]
    # 25 + 5 completes of 40, but the second enterprise is 15 short: 20 + 5 = 25 of 40 → 62.5 %
    assert g["completes"] == 30 and g["pct"] == 62.5


def test_filter_search_and_sort(session_factory, board_world):
    with transaction(session_factory) as s:
        rows = sv.quota_board(s, board_world["study"], NOW)
    assert [r.name for r in sv.filter_board(rows, q="保险")] == ["乙保险"]
    assert [r.name for r in sv.filter_board(rows, only="short")] == ["甲银行"]
    assert [r.name for r in sv.filter_board(rows, sort="pct", desc=True)] == ["乙保险", "甲银行"]
    assert [r.name for r in sv.filter_board(rows, sort="eta")] == ["甲银行", "乙保险"]  # no projection last
    with pytest.raises(ValueError, match="unknown column"):
        sv.filter_board(rows, sort="phone")


def test_state_durations_by_hand():
    t = lambda m: NOW + timedelta(minutes=m)  # noqa: E731
    events = [("ready", t(-5)), ("talking", t(10)), ("wrapup", t(25)), ("ready", t(27)), ("paused", t(30))]
    d = sv.state_durations(events, t(0), t(40), initial="offline")
    # window starts at 0 while ready (changed at −5): ready 0–10 and 27–30, talking 10–25, wrap 25–27, pause 30–40
    assert d["ready"] == 780 and d["talking"] == 900 and d["wrapup"] == 120 and d["paused"] == 600
    assert d["signed_in"] == 2400


def test_interviewer_shift_stats_by_hand(session_factory, study):
    t = lambda m: NOW + timedelta(minutes=m)  # noqa: E731
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        e = f.enterprise(s, st)
        cids = f.cases(s, st, e, 5)
        iv = f.user(s, display_name="王芳")
        other = f.user(s)
        calls = [  # (minute, outcome, answered minute, ended minute)
            (0, "3.13", None, 0.5), (2, "2.112", 3, 4), (9, "1.1", 10, 25), (30, "2.21", 31, 31.5),
        ]
        for i, (m, outcome, ans, end) in enumerate(calls):
            s.add(CallAttempt(call_id=f"c{i}", case_id=cids[i], interviewer_id=iv.id, backend="simulated",
                              requested_at=t(m), answered_at=t(ans) if ans is not None else None, ended_at=t(end),
                              outcome=outcome))
        s.add(CallAttempt(call_id="yesterday", case_id=cids[4], interviewer_id=iv.id, backend="simulated",
                          requested_at=t(-60 * 20), outcome="3.13"))
        s.add(CallAttempt(call_id="other", case_id=cids[4], interviewer_id=other.id, backend="simulated",
                          requested_at=t(5), outcome="3.12"))
        _interview(s, st, cids[2], iv.id, t(11), t(25))
        for m, status in [(-5, "ready"), (10, "talking"), (25, "wrapup"), (27, "ready"), (30, "paused")]:
            s.add(AgentEvent(user_id=iv.id, status=AgentStatus(status), at=t(m)))
    with transaction(session_factory) as s:
        start, end = sv.shift_bounds(t(40))
        assert start == NOW - timedelta(hours=10)  # local midnight
        stats = {x.interviewer_id: x for x in sv.interviewer_stats(
            s, st, start, end, agent_times=sv.agent_times(s, start, end))}
    x = stats[iv.id]
    assert (x.dials, x.contacts, x.completes, x.refusals) == (4, 3, 1, 1)
    assert x.talk_s == 900  # the state log: talking from minute 10 to 25
    assert x.avg_interview_s == 14 * 60
    assert x.refusal_rate == pytest.approx(1 / 3)
    # signed in from −5 to 40 = 45 min → 1 complete / 0.75 h
    assert x.hours == pytest.approx(0.75) and x.completes_per_hour == pytest.approx(4 / 3)
    assert (x.wait_s, x.wrap_s, x.paused_s) == (900 + 180, 120, 600)
    assert stats[other.id].dials == 1 and stats[other.id].contacts == 0
    with transaction(session_factory) as s:
        plain = {x.interviewer_id: x for x in sv.interviewer_stats(s, st, start, end)}
    # Without the state log: talk time from the dials (answer to hang-up), hours from first to last activity.
    assert plain[iv.id].talk_s == 60 + 900 + 30 and plain[iv.id].wait_s is None
    assert plain[iv.id].hours == pytest.approx(31.5 / 60)


def test_dispositions_table_and_rates_by_hand(session_factory, study):
    """2 completes, 1 refusal, 1 quota-filled, 1 open case with a no-answer, 1 never dialed, 1 unreleased.
    I = 2, R = 1, NE = 1, UH = 2 → D = 3, U = 2, e = 3 / 4; RR1 = 2/5, RR3 = 2/(3 + 1.5), COOP1 = 2/3,
    REF1 = 1/5, CON1 = 3/5."""
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        e = f.enterprise(s, st, name="丙证券", industry_name="证券")
        ids = f.cases(s, st, e, 6)
        f.cases(s, st, e, 1, status=CaseStatus.UNRELEASED, replicate=2)
        iv = f.user(s, display_name="李雷")
        for cid, code in zip(ids[:4], ["1.1", "1.1", "2.112", "4.80"], strict=True):
            s.execute(update(Case).where(Case.id == cid).values(status=CaseStatus.FINAL, final_disposition=code,
                                                                finalized_at=NOW))
        s.execute(update(Case).where(Case.id == ids[4]).values(attempts=1, last_called_at=NOW))
        s.add(CallAttempt(call_id="x1", case_id=ids[4], interviewer_id=iv.id, backend="simulated",
                          requested_at=NOW, outcome="3.13"))
        s.add(CallAttempt(call_id="x2", case_id=ids[0], interviewer_id=iv.id, backend="simulated",
                          requested_at=NOW, outcome="1.1"))
    with transaction(session_factory) as s:
        frame = frames.dispositions_frame(s, st)
    assert len(frame) == 6
    assert sorted(frame["disposition"]) == ["1.1", "1.1", "2.112", "3.11", "3.13", "4.80"]
    table = sv.disposition_table(frame)
    assert dict(zip(table["code"], table["n"], strict=True)) == {"1.1": 2, "2.112": 1, "3.11": 1, "3.13": 1,
                                                                 "4.80": 1}
    assert table.loc[table["code"] == "3.13", "label"].item() == "无人接听"
    r = frames.rates(frame).iloc[0]
    assert r["e"] == pytest.approx(0.75) and r["RR1"] == pytest.approx(0.4)
    assert r["RR3"] == pytest.approx(2 / 4.5) and r["COOP1"] == pytest.approx(2 / 3)
    assert r["REF1"] == pytest.approx(0.2) and r["CON1"] == pytest.approx(0.6)
    by_iv = frames.rates(frame, by="interviewer").set_index("interviewer")
    assert by_iv.loc["李雷", "n"] == 2 and by_iv.loc["李雷", "I"] == 1
    by_day = frames.rates(frame, by="day")
    assert list(by_day["day"]) == ["2026-11-23"] and by_day["n"].item() == 5  # never dialed: no day
    with pytest.raises(ValueError, match="rates by"):
        frames.rates(frame, by="phone")


def test_completes_per_day_against_a_linear_plan(session_factory, study):
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        e = f.enterprise(s, st, quota=30)
        ids = f.cases(s, st, e, 4)
        iv = f.user(s)
        day2 = NOW + timedelta(days=2)
        rows = [_interview(s, st, cid, iv.id, when - timedelta(minutes=10), when)
                for cid, when in zip(ids, [NOW, NOW + timedelta(hours=1), day2, day2], strict=True)]
        rows[-1].qc_status = QCStatus.REJECTED
    with transaction(session_factory) as s:
        df = sv.completes_per_day(s, st, plan_start=date(2026, 11, 23), plan_days=3, until=date(2026, 11, 25))
    assert list(df["day"]) == ["2026-11-23", "2026-11-24", "2026-11-25"]
    assert list(df["completes"]) == [2, 0, 1]  # one of the two on the 25th was rejected
    assert list(df["cumulative"]) == [2, 2, 3]
    assert list(df["plan_cumulative"]) == [10.0, 20.0, 30.0]


def test_fmt_duration():
    assert [sv.fmt_duration(x) for x in (None, 59, 303, 3903)] == ["—", "0:59", "5:03", "1:05:03"]


def test_live_figures_run_from_each_interviewers_shift_start(session_factory, study):
    from cati.services import agents

    t = lambda m: NOW + timedelta(minutes=m)  # noqa: E731
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        e = f.enterprise(s, st, name="丁基金")
        cids = f.cases(s, st, e, 3)
        iv = f.user(s, display_name="周杰")
        # A dial in an earlier shift (the interviewer signed out for more than an hour), then a new shift.
        s.add(CallAttempt(call_id="old", case_id=cids[0], interviewer_id=iv.id, backend="simulated",
                          requested_at=t(-180), outcome="3.13"))
        agents.begin_shift(s, iv.id, t(-200))
        agents.end_shift(s, iv.id, t(-170))
        agents.begin_shift(s, iv.id, t(-20))
        agents.set_state(s, iv.id, AgentStatus.TALKING, t(-5), case_id=cids[1])
        s.add(CallAttempt(call_id="new", case_id=cids[1], interviewer_id=iv.id, backend="simulated",
                          requested_at=t(-6), answered_at=t(-5)))
    with transaction(session_factory) as s:
        live = sv.interviewers_live(s, st, NOW)
    (x,) = live
    assert (x.display_name, x.status, x.enterprise, x.seconds_in_state) == ("周杰", "talking", "丁基金", 300)
    assert x.stats.dials == 1  # the dial of the earlier shift is not counted
    assert x.stats.wait_s == 15 * 60 and x.stats.talk_s == 5 * 60 and x.stats.hours == pytest.approx(20 / 60)


def _inside_calling_hours(at, rules):
    from cati.services.calling import local, segments

    day = local(at, rules.timezone_default).date()
    return any(a <= at <= b for d in (day - timedelta(days=1), day)
               for a, b, _p in segments(d, rules.timezone_default, rules))


@pytest.mark.parametrize("local_hour, remaining, rate", [
    (2.25, 5, 2.0), (2.25, 0, 2.0), (23.5, 1, 0.5), (12.25, 3, 1.0), (20.9, 40, 3.0), (6.0, 1, 50.0),
    (10.0, 1, 1.0), (21.0, 2, 0.7)])
def test_eta_never_falls_outside_calling_hours(local_hour, remaining, rate):
    """Issue 15 (11): the board showed an ETA of 02:15 at night. The projection runs in calling time, so the ETA
    lands inside a calling window whatever the hour now (night, lunch break, end of day) and whatever is left —
    including nothing left but interviews still running at night (ETA = the next calling moment, not 02:15)."""
    from datetime import UTC, datetime

    from cati.services.calling import CallRules

    rules = CallRules()
    now = (datetime(2026, 11, 23, tzinfo=f.SHANGHAI) + timedelta(hours=local_hour)).astimezone(UTC)
    eta = sv.projected_finish(now, remaining, rate, tz=rules.timezone_default, rules=rules)
    assert eta is not None and eta >= now
    assert _inside_calling_hours(eta, rules), eta.astimezone(f.SHANGHAI)


def test_board_at_night_and_at_the_start_of_fieldwork(session_factory, study):
    """At 02:15 local on the first morning of fieldwork (nothing finalised, nothing complete, every case ready):
    no row is flagged short (预计不足), and every ETA (with a recent yield) falls inside calling hours."""
    from datetime import UTC, datetime

    from cati.services.calling import CallRules

    night = datetime(2026, 11, 24, 2, 15, tzinfo=f.SHANGHAI).astimezone(UTC)
    with transaction(session_factory) as s:
        st = s.get(Study, study.id)
        ents = [f.enterprise(s, st, name=f"新企业{i}") for i in range(5)]
        for e in ents:
            f.cases(s, st, e, 12)  # far fewer than 20 / default yield: the arithmetic alone would say short
        iv = f.user(s)
        ready = f.cases(s, st, ents[0], 2)
        # Two completes yesterday evening (within the last 2 calling hours): a recent rate, hence an ETA.
        for k, cid in enumerate(ready):
            _interview(s, st, cid, iv.id, night - timedelta(hours=6, minutes=10 + k),
                       night - timedelta(hours=6, minutes=k))
        rows = sv.quota_board(s, st, night)
    assert len(rows) == 5 and not any(r.short for r in rows)
    assert sv.filter_board(rows, only="short") == []
    etas = [r.eta for r in rows if r.eta is not None]
    assert etas, "the enterprise with recent completes should have an ETA"
    assert all(_inside_calling_hours(e, CallRules()) for e in etas)
