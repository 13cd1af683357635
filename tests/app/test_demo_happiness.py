"""``cati demo --study happiness_index`` on a small wave: web respondents go through the real pages and land in the
database with their planned answers; the rest are counted apart; the reports cover the whole wave."""

from __future__ import annotations

import json

import pandas as pd
from click.testing import CliRunner
from sqlalchemy import func, select

from cati.db import make_engine, make_sessionmaker
from cati.models import Answer, Interview, InterviewStatus, QuestionTime, WebResponse
from cati.services import frames
from scoring.synthetic import make_happiness_responses


def test_a_small_happiness_demo_answers_through_the_web_pages_then_scores_and_reports(tmp_path):
    from cati.cli import main

    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--study", "happiness_index", "--out", str(out), "--enterprises", "3",
                                       "--respondents", "30", "--web-respondents", "4", "--seed", "5"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["respondents"] == 30 and summary["web_respondents"] == 4 and summary["synthetic_respondents"] == 26
    assert summary["report_errors"] == {}
    assert summary["reports"]["enterprise"]["files"] == 3
    assert "4 of 30 respondents" in result.output

    # the database holds exactly the 4 web responses: complete, mode cawi, timed per question, no interviewer
    s = make_sessionmaker(make_engine(f"sqlite:///{out / 'cati.sqlite'}"))()
    ivs = s.scalars(select(Interview)).all()
    assert len(ivs) == 4 and {iv.mode for iv in ivs} == {"cawi"}
    assert {iv.status for iv in ivs} == {InterviewStatus.COMPLETE} and {iv.interviewer_id for iv in ivs} == {None}
    assert s.scalar(select(func.count()).select_from(WebResponse)) == 4
    assert s.scalar(select(func.count(func.distinct(QuestionTime.interview_id)))) == 4
    assert s.scalar(select(func.count()).select_from(Answer)) > 4 * 30
    # … and their answers are the plan's (round-robin: the first respondent of each enterprise, then the second)
    plan = make_happiness_responses(3, 30, seed=5)
    got = frames.responses_frame(s, ivs[0].study_id).sort_values(["enterprise_id", "respondent_id"])
    order = plan.assign(k=plan.groupby("enterprise_id").cumcount()).sort_values(["k", "enterprise_id"]).head(4)
    want = order.sort_values(["enterprise_id", "respondent_id"])
    for col in ("H1", "H7", "H15", "P1", "P5"):
        assert got[col].astype(float).tolist() == want[col].astype(float).tolist(), col
    assert got["M1"].tolist() == want["M1"].tolist()
    assert got["O1"].astype(str).tolist() == want["O1"].astype(str).tolist()  # 99: prefer not to say, sent as such
    s.close()

    # the scores and reports cover all 30 (4 web + 26 synthetic)
    overall = json.loads((out / "reports" / "scores" / "overall.json").read_text(encoding="utf-8"))
    assert overall["n_respondents"] == 30
    html = (out / "reports" / "happiness_industry_report.zh-CN.html").read_text(encoding="utf-8")
    assert "幸福指数" in html and "按基本信息分组" in html
    ents = sorted(p.name for p in (out / "reports" / "enterprises").iterdir())
    assert ents == [f"enterprise_E000{i}.zh-CN.html" for i in (1, 2, 3)]
    assert pd.read_csv(out / "reports" / "scores" / "enterprise_scores.csv")["n"].sum() == 30
