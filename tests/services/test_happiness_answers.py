"""The web study's answers in the answers tables: an "other, please specify" text is stored beside its answer
(``<code>_other``), read back, and dropped with a revision when the option is unticked; prefer-not-to-say is a code."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from cati.db import transaction
from cati.models import AnswerRevision, Interview
from cati.services.frames import responses_frame
from cati.services.interviews import answers_of, questionnaire_for, save_answer
from cati.services.runtime import runtime_for
from cati.services.studies import install_study
from tests import factories as f

HAPPY = Path(__file__).resolve().parents[2] / "config" / "studies" / "happiness_index.yaml"
NOW = f.MONDAY_10AM


def test_other_text_and_prefer_not_to_say_round_trip(session_factory):
    with transaction(session_factory) as s:
        st = install_study(s, HAPPY)
        runtime = runtime_for(st)
        assert runtime.spec.mode == "cawi" and runtime.timezone == "Asia/Shanghai"
        assert runtime.rules.timezone_default == "Asia/Shanghai"
        e = f.enterprise(s, st)
        case_id = f.cases(s, st, e, 1)[0]
        iv = Interview(study_id=st.id, case_id=case_id, current_question="INTRO")
        s.add(iv)
        s.flush()
        q = questionnaire_for(st)
        answers = {"INTRO": None, **{f"P{i}": 1 for i in range(1, 15)}, "P8": 44, "P5": 99,
                   **{f"H{i}": 4 for i in range(1, 16)}, "H10": 99,
                   "M1": {"value": [1, 97], "other": "弹性休假"}, "M2": [1], "M3": [2], "M4": [3], "O1": 99,
                   "O2": "帮助客户", "END": None}
        code = "INTRO"
        while code is not None:
            code = save_answer(s, iv, code, answers[code], user_id=None, now=NOW).step.next_code
        stored = answers_of(s, iv, q)
        assert stored["M1"] == [1, 97] and stored["M1_other"] == "弹性休假"
        assert stored["P5"] == 99 and stored["H10"] == 99 and stored["O1"] == 99
        assert q.is_complete(stored)
        frame = responses_frame(s, st.id, complete_only=False)
        row = frame.iloc[0]
        assert (row["M1"], row["M1_other"], row["M2"], row["P5"], row["H10"], row["O1"], row["O2"]) == (
            "1,97", "弹性休假", "1", 99.0, 99.0, 99, "帮助客户")
        cols = list(frame.columns)
        assert cols.index("M1_other") == cols.index("M1") + 1 and cols.index("P9_other") == cols.index("P9") + 1
        save_answer(s, iv, "M1", [1], user_id=None, now=NOW)
        stored = answers_of(s, iv, q)
        assert stored["M1"] == [1] and "M1_other" not in stored
        dropped = s.scalars(select(AnswerRevision).where(AnswerRevision.question_code == "M1_other")).all()
        assert [(r.old_text, r.new_text) for r in dropped] == [("弹性休假", None)]
