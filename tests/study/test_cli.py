"""`cati study check FILE`."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cati.cli.study import study
from cati.study.loader import DEFAULT_STUDY_PATH

DATA = Path(__file__).parent / "data"


def test_check_ok_prints_a_summary():
    result = CliRunner().invoke(study, ["check", str(DEFAULT_STUDY_PATH)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    assert "csat_contact_center v1: 34 questions (32 with answers), 22 items, 6 indicators" in result.output
    assert "languages zh-CN, en" in result.output


def test_check_lists_every_problem_and_exits_1(tmp_path):
    text = (DATA / "minimal.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace('"X1 in [1, 2]"', '"X9 == 1"').replace("weight: 1,", "weight: 0.7,")
                      .replace("Asia/Shanghai", "Mars/Olympus"), encoding="utf-8")
    result = CliRunner().invoke(study, ["check", str(DEFAULT_STUDY_PATH), str(broken)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("ERROR")]
    assert [line.split(": ")[1] for line in lines] == ["questions[2].ask_if", "indicators",
                                                        "calling_rules.timezone_default"]
    assert all(f"ERROR {broken}: " in line for line in lines)
    assert "unknown question 'X9'" in lines[0]
    assert "FAILED, 3 problem(s)" in result.output
    assert "csat_contact_center v1" in result.output  # the good file is still checked


def test_check_shows_warnings_but_passes(tmp_path):
    text = (DATA / "minimal.yaml").read_text(encoding="utf-8").replace("zh-CN: 接通快", "zh-CN: \"{product}接通快\"")
    file = tmp_path / "warn.yaml"
    file.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(study, ["check", str(file)])
    assert result.exit_code == 0
    assert f"WARNING {file}: questions[1].text.zh-CN: placeholder {{product}}" in result.output
