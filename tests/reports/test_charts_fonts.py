"""No tofu: every character drawn on a chart is in the character map of the CJK font matplotlib used."""

from __future__ import annotations

from pathlib import Path

import pytest

from reports import charts
from reports.enterprise import enterprise_document, prepare
from reports.fieldwork import calls_by_hour
from reports.fonts import cjk_font, missing_glyphs
from reports.industry import industry_document


def test_cjk_font_is_found():
    font = cjk_font()
    assert Path(font.path).exists() and ("CJK" in font.family or "Hei" in font.family)
    assert not missing_glyphs("客户满意度呼叫便利程度沟通愉悦程度应变能力")


def test_coverage_check_can_fail():
    assert missing_glyphs("满意😀") == {"😀"}


def _assert_no_tofu(chart: charts.Chart) -> None:
    assert chart.png.startswith(b"\x89PNG")
    assert chart.texts, "chart without text?"
    font = cjk_font()
    assert chart.font_files == {(str(font.path), font.index)}  # the very face whose cmap is checked below
    assert chart.missing_glyphs() == set(), chart.title


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_industry_charts_use_a_font_covering_every_character(result, study, lang):
    _, _, made = industry_document(result, study, lang=lang)
    assert {"overall", "industries", "heatmap", "quadrant_indicator", "quadrant_item"} <= set(made)
    for chart in made.values():
        _assert_no_tofu(chart)
    if lang == "zh-CN":
        drawn = "".join(made["quadrant_item"].texts)
        assert "重点关注领域" in drawn or "必备条件" in drawn


def test_enterprise_and_fieldwork_charts_cover_their_text(result, study, fieldwork, monkeypatch):
    made: list[charts.Chart] = []
    original = charts._finish

    def spy(*args, **kwargs):
        chart = original(*args, **kwargs)
        made.append(chart)
        return chart

    monkeypatch.setattr(charts, "_finish", spy)
    data = prepare(result, study)
    enterprise_document(data, data.enterprises.index[0])
    _, attempts, _ = fieldwork
    charts.stacked_bars(calls_by_hour(attempts), title="按时段的拨打结果")
    assert len(made) == 3
    for chart in made:
        _assert_no_tofu(chart)
    assert any("本企业" in t for t in made[0].texts)
