"""``runtime_for``: one compiled runtime per stored study version, and the version always names the definition."""

from __future__ import annotations

from cati.models import Study
from cati.services.runtime import runtime_for
from cati.services.scheduling import rules_for
from cati.services.studies import study_spec


def _with(definition: dict, **calling_rules) -> dict:
    return {**definition, "calling_rules": {**definition["calling_rules"], **calling_rules}}


def test_one_runtime_per_version_serves_rules_spec_questionnaire_and_scoring(session, study):
    st = session.get(Study, study.id)
    rt = runtime_for(st)
    assert runtime_for(session.get(Study, study.id)) is rt
    assert rules_for(st) is rt.rules and study_spec(st) is rt.spec
    assert rt.questionnaire is rt.questionnaire and rt.scoring.indicators
    assert rt.timezone == st.definition["calling_rules"]["timezone_default"]
    assert rt.quota.per_enterprise == st.definition["quota"]["per_enterprise"]


def test_replacing_the_definition_makes_a_new_version_and_every_service_sees_it(session, study):
    st = session.get(Study, study.id)
    before, version = runtime_for(st), st.version
    st.definition = _with(st.definition, best_time_ratio=0.5, max_attempts=9)
    assert st.version == version + 1 and st.definition["version"] == st.version
    assert rules_for(st).best_time_ratio == 0.5 and rules_for(st).max_attempts == 9
    assert runtime_for(st) is not before
    session.flush()
    session.expire_all()
    stored = session.get(Study, study.id)
    assert stored.version == version + 1 and runtime_for(stored).rules.max_attempts == 9


def test_a_writer_that_sets_the_version_itself_is_not_bumped_twice_and_an_equal_definition_is_no_change(
        session, study):
    st = session.get(Study, study.id)
    version = st.version
    st.definition = dict(st.definition)  # equal content: the same version
    assert st.version == version
    st.version = version + 5  # e.g. an admin's rules edit or a newer study file chose its version
    st.definition = _with(st.definition, max_attempts=7)
    assert st.version == version + 5
    assert runtime_for(st).rules.max_attempts == 7
