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


def test_enterprise_and_fieldwork_charts_cover_their_text(result, study, fieldwork):
    data = prepare(result, study)
    doc, _ = enterprise_document(data, data.enterprises.index[0])
    made = list(doc.meta["charts"])
    _, attempts, _ = fieldwork
    made.append(charts.stacked_bars(calls_by_hour(attempts, tz="Asia/Shanghai"), title="按时段的拨打结果"))
    assert len(made) == 3
    for chart in made:
        _assert_no_tofu(chart)
    assert "本企业" in made[0].texts and any(t.startswith("A1 ") for t in made[1].texts)


def test_bar_template_draws_each_enterprise_differently(result, study):
    data = prepare(result, study)
    a, _ = enterprise_document(data, data.enterprises.index[0])
    b, _ = enterprise_document(data, data.enterprises.index[1])
    assert a.meta["charts"][0].png != b.meta["charts"][0].png  # blitted bars, not a stale background
    e0 = data.enterprises.iloc[0]
    assert f"{e0['A']:.1f}" in a.meta["charts"][0].texts  # the value labels drawn are this enterprise's
