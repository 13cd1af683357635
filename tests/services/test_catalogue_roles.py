"""What an outcome code does is data in the catalogue (config/dispositions.yaml): which call states offer it and in
what order, refusals, appointments, the attempt cap's precedence. These pin the behaviour the lists in code had."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cati.services.agents import outcome_choices, refusal_codes
from cati.services.dispositions import CATALOGUE_FILE, catalogue, final_disposition, load_catalogue


def test_outcome_choices_after_each_call_state():
    assert outcome_choices("machine", interview_started=False) == ["3.14", "2.221", "2.222", "4.20"]
    assert outcome_choices("no_answer", interview_started=False) == \
        ["3.13", "3.12", "3.15", "3.16", "4.31", "4.32", "4.20", "3.90"]
    answered = outcome_choices("human", interview_started=False)
    assert answered[:4] == ["2.21", "2.113", "2.112", "2.114"] and "2.12" not in answered
    interviewing = outcome_choices("human", interview_started=True)
    assert interviewing[:4] == ["2.12", "2.113", "2.112", "2.114"]
    assert "2.21" not in interviewing and "2.111" not in interviewing
    # never offered: completes, quota closing, never dialed, the attempt cap's codes
    offered = {c for s in ("machine", "no_answer") for c in outcome_choices(s, interview_started=False)} | \
        set(answered) | set(interviewing)
    assert not offered & {"1.1", "1.2", "4.80", "3.11", "2.29", "3.91"}


def test_refusals_and_appointments_come_from_the_catalogue():
    assert refusal_codes() == {"2.111", "2.112", "2.113", "2.114"}
    cat = catalogue()
    assert cat.appointment_codes() == {"2.21", "2.12", "2.113"}
    assert cat.codes_where(appointment="required") == {"2.21"}


def test_cap_precedence_is_catalogue_data():
    assert final_disposition(["3.13", "2.113", "2.21"], cap_reached=True) == "2.112"
    assert final_disposition(["3.13", "3.14"], cap_reached=True) == "3.14"
    assert final_disposition(["3.12", "3.12"], cap_reached=True) == "3.12"


def test_a_catalogue_offering_a_code_after_an_unknown_state_is_refused(tmp_path):
    data = yaml.safe_load(Path(CATALOGUE_FILE).read_text(encoding="utf-8"))
    data["codes"]["3.13"]["offered"] = {"voicemail": 1}
    bad = tmp_path / "dispositions.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="3.13: offered after unknown call state"):
        load_catalogue(bad)


def test_the_codes_the_system_sets_are_named_in_the_catalogue(tmp_path):
    from cati.services.dispositions import CATALOGUE_FILE, ROLES, catalogue, load_catalogue

    cat = catalogue()
    assert {role: cat.code_for(role) for role in ("complete", "quota_full", "not_attempted", "busy")} == {
        "complete": "1.1", "quota_full": "4.80", "not_attempted": "3.11", "busy": "3.12"}
    assert set(cat.roles) == set(ROLES) and all(code in cat for code in cat.roles.values())
    with pytest.raises(ValueError, match="no disposition role 'completed'"):
        cat.code_for("completed")
    broken = tmp_path / "dispositions.yaml"
    broken.write_text(CATALOGUE_FILE.read_text(encoding="utf-8").replace('  quota_full: "4.80"\n', "")
                      .replace('  busy: "3.12"', '  busy: "3.99"'), encoding="utf-8")
    with pytest.raises(ValueError, match=r"missing \['quota_full'\], unknown codes \['busy → 3.99'\]"):
        load_catalogue(broken)
