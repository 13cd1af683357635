"""`cati score` on files: summary, files written, clean errors."""

from __future__ import annotations

import json

import pandas as pd
from click.testing import CliRunner
from scoring_helpers import STUDY_FILE

from cati.cli.score import score
from scoring import make_synthetic_responses


def test_score_command_writes_the_contract(tmp_path):
    src = tmp_path / "responses.csv"
    make_synthetic_responses(30, 3, 620, seed=8).to_csv(src, index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(score, [str(src), "--study", str(STUDY_FILE), "--out", str(out), "--n-boot", "100",
                                        "--seed", "4", "--industry-aggregation", "respondent_mean"])
    assert result.exit_code == 0, result.output
    assert "总体 overall" in result.output and "enterprise_scores.csv" in result.output
    overall = json.loads((out / "overall.json").read_text(encoding="utf-8"))
    assert overall["n_respondents"] == 620 and overall["n_enterprises"] == 30
    assert f"{overall['composite']:.2f}" in result.output
    method = json.loads((out / "method.json").read_text(encoding="utf-8"))
    assert method["n_boot"] == 100 and method["seed"] == 4 and method["industry_aggregation"] == "respondent_mean"
    assert len(pd.read_csv(out / "enterprise_scores.csv")) == 30


def test_bad_file_is_a_clean_error(tmp_path):
    src = tmp_path / "bad.csv"
    df = make_synthetic_responses(5, 1, 50, seed=1)
    df["A1"] = df["A1"].astype(object)
    df.loc[2, "A1"] = 6
    df.to_csv(src, index=False)
    result = CliRunner().invoke(score, [str(src), "--study", str(STUDY_FILE), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "bad.csv: line 4, column A1: answer '6' is outside the scale" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_usage_errors(tmp_path):
    r = CliRunner().invoke(score, ["--out", str(tmp_path)])
    assert r.exit_code == 2 and "either RESPONSES.csv or --study-id" in r.output
    r = CliRunner().invoke(score, [str(tmp_path / "missing.csv"), "--study", str(STUDY_FILE)])
    assert r.exit_code == 1 and "responses file not found" in r.output
