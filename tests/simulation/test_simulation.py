"""The fieldwork simulator drives the real scheduler and database to the end of a small fieldwork."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from cati.db import make_engine, make_sessionmaker
from cati.models import CallAttempt, Case, CaseStatus, Enterprise, Interview, InterviewStatus
from cati.services.interviews import questionnaire_for
from cati.simulation import Simulator, World, WorldError
from cati.simulation.answers import AnswerBank
from cati.simulation.world import Population

SMALL = {
    "name": "small",
    "sample": {"enterprises": 4, "quota": 3, "per_enterprise": 12, "replicate_size": 12},
    "interviewers": {"count": 2, "refusal_converters": 1},
}


def small_world(**overrides) -> World:
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in SMALL.items()}
    for k, v in overrides.items():
        data[k] = {**data.get(k, {}), **v} if isinstance(v, dict) else v
    return World.from_mapping(data, "test")


def test_small_world_runs_to_completion(session_factory):
    report = Simulator(session_factory, small_world(), seed=5).run()

    assert report.end_reason == "quotas_filled"
    assert report.quota_total == 12 and report.completes == 12 and report.quotas_filled
    assert report.overquota == 0 and report.short_enterprises == 0
    assert report.dials >= report.completes
    assert report.sample_used <= report.sample_released <= 4 * 12
    assert report.interviewer_hours > 0 and report.calendar_days >= 1
    assert report.completes_per_interviewer_hour == pytest.approx(report.completes / report.interviewer_hours)
    assert report.dials_per_complete == pytest.approx(report.dials / 12)
    assert 0 < report.rates["RR1"] <= report.rates["RR3"] <= 1
    with session_factory() as s:
        # What the report says is what the database holds.
        completes = s.scalar(select(func.count()).select_from(Interview)
                             .where(Interview.status == InterviewStatus.COMPLETE))
        assert completes == 12
        assert s.scalar(select(func.count()).select_from(CallAttempt)) == report.dials
        assert sorted(s.scalars(select(Enterprise.completes))) == [3] * 4
        assert s.scalar(select(func.sum(Enterprise.in_progress))) == 0
        assert s.scalar(select(func.count()).select_from(Case).where(Case.status == CaseStatus.CLAIMED)) == 0
        # Every dial was coded, by the network or by the interviewer.
        assert s.scalar(select(func.count()).select_from(CallAttempt).where(CallAttempt.outcome.is_(None))) == 0
        assert sum(report.dials_by_outcome.values()) == report.dials
        assert report.dials_by_outcome["1.1"] == 12


def test_same_seed_same_fieldwork(sqlite_template, tmp_path):
    def run(name: str, seed: int):
        path = tmp_path / f"{name}.sqlite"
        shutil.copy(sqlite_template, path)
        engine = make_engine(f"sqlite:///{path}")
        try:
            report = Simulator(make_sessionmaker(engine), small_world(), seed=seed).run()
        finally:
            engine.dispose()
        out = report.to_dict()
        out.pop("wall_seconds")
        return out

    first, again = run("a", 11), run("b", 11)
    assert first == again
    other = run("c", 12)
    assert (other["dials"], other["interviewer_hours"]) != (first["dials"], first["interviewer_hours"])


def test_call_list_quota_is_counted_at_completion_only(session_factory):
    # Six interviewers on one enterprise that needs one complete: a plain call list starts interviews in parallel
    # and may overshoot; ours never does (checked above). Here: the baseline's counting is consistent.
    world = small_world(sample={"enterprises": 2, "quota": 1, "per_enterprise": 12}, interviewers={"count": 4})
    report = Simulator(session_factory, world, strategy="call_list", seed=2).run()
    with session_factory() as s:
        done = s.scalar(select(func.count()).select_from(Interview).where(Interview.status == InterviewStatus.COMPLETE))
    assert report.completes == 2
    assert done == report.completes + report.overquota


@pytest.mark.parametrize(("data", "key"), [
    ({"respondents": {"pickupp": 0.8}}, "respondents.pickupp"),
    ({"respondents": {"busy": 1.5}}, "respondents.busy"),
    ({"contact": {"refusal": "many"}}, "contact.refusal"),
    ({"sample": {"quota": 2.5}}, "sample.quota"),
    ({"interviewers": {"weekday_shifts": [["9", "12:00"]]}}, "interviewers.weekday_shifts[0]"),
    ({"interviewers": {"weekday_shifts": [["13:00", "12:00"]]}}, "interviewers.weekday_shifts[0]"),
    ({"respondents": {"types": {"a": {"share": 0.5, "weekday": [0.1, 0.2, 0.3], "weekend": [0.1, 0.2, 0.3]}}}},
     "respondents.types.*.share"),
    ({"respondents": {"types": {"a": {"share": 1.0, "weekday": [0.1, 0.2], "weekend": [0.1, 0.2, 0.3]}}}},
     "respondents.types.a.weekday"),
    ({"timing": {"refusal_seconds": [60, 20]}}, "timing.refusal_seconds"),
    ({"start_date": "next monday"}, "start_date"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"interviewers": {"count": 2, "refusal_converters": 3}}, "interviewers.refusal_converters"),
])
def test_world_errors_name_the_key(data, key):
    with pytest.raises(WorldError) as err:
        World.from_mapping(data, "w.yaml")
    assert f"w.yaml: {key}:" in str(err.value)


def test_shipped_worlds_load_and_differ():
    from cati.simulation.world import DEFAULT_WORLD_FILE

    worlds = {p.stem: World.load(p) for p in sorted(DEFAULT_WORLD_FILE.parent.glob("*.yaml"))}
    assert {"default", "hard_to_reach", "evening_people", "high_refusal_machines", "office_hours_b2b",
            "quexs_shift_template"} <= set(worlds)
    assert worlds["default"].params == World.from_mapping({"name": "default"}).params | {
        "description": worlds["default"]["description"]}
    # Every world differs from every other in what it simulates (not only in name and description).
    sim_params = {repr({k: v for k, v in w.params.items() if k not in ("name", "description")})
                  for w in worlds.values()}
    assert len(sim_params) == len(worlds)
    for name, w in worlds.items():
        assert w.name == name and w["description"]
        assert w.shift_groups() and len(w.assign_shift_groups(w["interviewers"]["count"])) == w["interviewers"]["count"]


def test_availability_is_a_fixed_draw_per_part_of_day():
    world = World.from_mapping({"respondents": {"types": {
        "evening": {"share": 1.0, "weekday": [0.0, 0.0, 0.98], "weekend": [0.0, 0.0, 0.0]}},
        "availability_sd": 0.0}, "enterprises": {"reach_sd": 0.0}})
    pop = Population(world, [50], seed=1)
    monday_morning = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 Shanghai
    monday_evening = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # 19:00
    saturday_evening = datetime(2026, 11, 28, 11, 0, tzinfo=UTC)
    assert not any(pop.available(r, monday_morning) for r in pop.respondents)
    assert not any(pop.available(r, saturday_evening) for r in pop.respondents)
    evening = [pop.available(r, monday_evening) for r in pop.respondents]
    assert sum(evening) >= 45
    # The same part of the same day gives the same answer half an hour later.
    later = datetime(2026, 11, 23, 11, 30, tzinfo=UTC)
    assert evening == [pop.available(r, later) for r in pop.respondents]


def test_simulated_answers_complete_the_questionnaire(study):
    bank = AnswerBank(n_enterprises=4, quota=5, seed=3)
    q = questionnaire_for(study)
    d0_yes = 0
    for k in range(40):
        answers = bank.draw(k % 4)
        assert q.is_complete({c: v for c, v in answers.items() if v is not None})
        assert isinstance(answers["OPEN1"], str) and answers["OPEN1"]
        d0_yes += answers["D0"] == 1
    assert 10 <= d0_yes <= 35  # ≈ 60 % need follow-up


def test_simulator_never_reloads_the_study_and_writes_an_attempt_row_once(session_factory):
    # The study row (a large JSON definition) stays in every event's session instead of being fetched and parsed
    # on every dial; a dial's call events are folded into its attempt before the row is written.
    from sqlalchemy import event

    sim = Simulator(session_factory, small_world(), seed=5)
    engine = session_factory.kw["bind"]
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_a):
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        report = sim.run()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert report.quotas_filled
    assert not [q for q in seen if q.startswith("SELECT") and "FROM studies" in q]
    inserts = sum(1 for q in seen if q.startswith("INSERT INTO call_attempts"))
    assert inserts == report.dials
    assert sum(1 for q in seen if q.startswith("UPDATE call_attempts")) < report.dials  # not one per event


def test_simulated_interviewers_share_one_password_hash_and_can_log_in(session_factory, monkeypatch):
    from cati.services import users
    from cati.simulation.engine import SIM_PASSWORD, ensure_interviewers

    hashed = []
    real = users.hash_password
    monkeypatch.setattr(users, "hash_password", lambda pw: hashed.append(pw) or real(pw))
    made = ensure_interviewers(session_factory, 4, 1)
    assert [name for _id, name, _c in made] == ["sim01", "sim02", "sim03", "sim04"]
    assert [conv for _id, _n, conv in made] == [True, False, False, False]
    assert hashed == [SIM_PASSWORD]  # argon2 once, not once per interviewer
    with session_factory() as s:
        for _id, name, _c in made:
            u = users.authenticate(s, name, SIM_PASSWORD)
            assert u is not None and u.role.value == "interviewer" and u.extension.startswith("8")
            assert users.authenticate(s, name, "wrong-password") is None
    assert ensure_interviewers(session_factory, 4, 2)[1][2] is True  # existing users are kept, flags updated


def test_industry_quotas_hold_through_a_whole_fieldwork(session_factory, tmp_path):
    """Industry quotas of 2 (below the enterprises' own 3): the virtual fieldwork stops each industry at exactly 2,
    dials no case after its industry filled, and ends."""
    import yaml

    from cati.db import transaction
    from cati.models import Study
    from cati.services.imports import load_industries
    from cati.services.quotas import cell_progress
    from cati.services.studies import default_study_file, install_study

    data = yaml.safe_load(default_study_file().read_text(encoding="utf-8"))
    data["version"] += 1  # the simulator's install of the shipped file keeps this newer one
    data["quota"]["per_industry"] = {i["name"]: 2 for i in load_industries()}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with transaction(session_factory) as s:
        install_study(s, tmp_path / "study.yaml")

    report = Simulator(session_factory, small_world(), seed=5).run()

    with session_factory() as s:
        cells = cell_progress(s, s.scalars(select(Study)).one())
        industries = s.scalar(select(func.count(func.distinct(Enterprise.industry_id))))
        assert len(cells) == industries
        assert all((c.completes, c.in_progress, c.open_cases) == (2, 0, 0) for c in cells)
        assert report.completes == 2 * industries and report.overquota == 0
        # Nothing was dialed once closed as quota filled.
        late = (select(func.count()).select_from(CallAttempt).join(Case, Case.id == CallAttempt.case_id)
                .where(Case.final_disposition == "4.80", CallAttempt.requested_at > Case.finalized_at))
        assert s.scalar(late) == 0
    assert report.end_reason == "sample_exhausted"
