"""Enterprise reports: scores against last wave / province / industry / all equal the scoring output; verbatims
shown with phone numbers masked; parallel workers; significance and priority rules."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from reports.enterprise import (
    _priorities,
    build_enterprise_reports,
    comparison_frame,
    prepare,
    report_stem,
)


@pytest.fixture(scope="module")
def target(result):
    return str(result.enterprises.enterprise_id.iloc[0])


@pytest.fixture(scope="module")
def verbatims(target):
    return pd.DataFrame({"enterprise_id": [target, target, target],
                         "OPEN1": ["希望接通再快一点，我手机13812341234随时可以联系", "客服态度很好", None]})


@pytest.fixture(scope="module")
def files(result, study, previous, verbatims, target, tmp_path_factory):
    out = tmp_path_factory.mktemp("enterprise")
    paths = build_enterprise_reports(result, study, enterprise_ids=[target], previous=previous, verbatims=verbatims,
                                     out_dir=out, formats=("html", "pdf", "xlsx"), workers=1)
    return {p.suffix.lstrip("."): p for p in paths}


def _records(ws):
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:] if r[0] is not None]


def test_xlsx_first_level_equals_scoring_and_benchmarks(files, result, previous, target):
    ent = result.enterprises.set_index("enterprise_id")
    me = ent.loc[target]
    ind = result.industries.set_index("industry").loc[me.industry]
    prov = ent[ent.province == me.province]
    prev = previous.enterprises.set_index("enterprise_id").loc[target]
    rows = {r["代码"]: r for r in _records(load_workbook(files["xlsx"])["一级指标"])}
    for code in ("A", "B", "C", "D", "E", "F", "composite"):
        r = rows[code]
        assert r["本企业"] == pytest.approx(me[code], abs=1e-9)
        assert r["本行业"] == pytest.approx(ind[code], abs=1e-9)
        assert r["全行业"] == pytest.approx(result.overall[code], abs=1e-9)
        assert r["本企业去年"] == pytest.approx(prev[code], abs=1e-9)
        assert r["本省份"] == pytest.approx(prov[code].mean(), abs=1e-9)
    assert rows["A"]["区间下限"] == pytest.approx(me["A_ci_low"], abs=1e-9)
    assert rows["composite"]["有效基数"] == me["n"]


def test_xlsx_items_equal_enterprise_item_means(files, result, target):
    me = result.enterprises.set_index("enterprise_id").loc[target]
    rows = {r["代码"]: r for r in _records(load_workbook(files["xlsx"])["二级指标"])}
    assert list(rows) == list(result.spec.item_codes)
    for code in result.spec.item_codes:
        assert rows[code]["本企业"] == pytest.approx(me[code], abs=1e-9, nan_ok=True)
        assert rows[code]["有效基数"] == me[f"n_{code}"]


def test_verbatims_shown_with_phone_masked(files):
    html = files["html"].read_text(encoding="utf-8")
    assert "希望接通再快一点" in html and "客服态度很好" in html
    assert "138****1234" in html and "13812341234" not in html
    wb = load_workbook(files["xlsx"])
    texts = [r[0] for r in wb["开放题"].iter_rows(min_row=2, values_only=True)]
    assert len([x for x in texts if x]) == 2 and not any("13812341234" in x for x in texts if x)


def test_html_and_pdf_name_the_enterprise_in_chinese(files, result, target):
    name = result.enterprises.set_index("enterprise_id").loc[target, "enterprise_name"]
    html = files["html"].read_text(encoding="utf-8")
    assert name in html and "本企业去年" in html and "本省份" in html
    text = re.sub(r"\s+", "", "".join(p.extract_text() for p in PdfReader(files["pdf"]).pages))
    assert name in text and "一级指标得分" in text and "优先改进领域" in text
    me = result.enterprises.set_index("enterprise_id").loc[target]
    assert f"{me['composite']:.2f}" in text


def test_significance_flags_follow_the_interval_rule(result, study):
    data = prepare(result, study)
    for eid in data.enterprises.index:
        for level in (1, 2):
            f = comparison_frame(data, eid, level)
            if level == 1:  # the composite row follows scoring's corrected tier
                tier = data.enterprises.loc[eid, "tier"]
                assert f.set_index("code").loc["composite", "sig"] == {"not_different": "none"}.get(tier, tier)
                f = f[f.code != "composite"]
            ok = f.dropna(subset=["ci_low", "ci_high", "industry"])
            assert (ok.loc[ok.sig == "above", "ci_low"] > ok.loc[ok.sig == "above", "industry"]).all()
            assert (ok.loc[ok.sig == "below", "ci_high"] < ok.loc[ok.sig == "below", "industry"]).all()
            none = ok[ok.sig == "none"]
            assert ((none.ci_low <= none.industry) & (none.ci_high >= none.industry)).all()


def test_priorities_are_important_and_below_industry(result, study):
    data = prepare(result, study)
    seen = 0
    for eid in data.enterprises.index:
        lv1, lv2 = comparison_frame(data, eid, 1), comparison_frame(data, eid, 2)
        pri = _priorities(data, lv2, lv1)
        gaps = pd.concat([lv1.set_index("code")["diff"], lv2.set_index("code")["diff"]])
        important = set(data.drivers.loc[data.drivers.importance_high.astype(bool), "code"])
        assert set(pri.code) == {c for c in important if gaps.get(c, np.nan) < 0}
        assert list(pri.priority) == sorted(pri.priority, reverse=True)
        seen += len(pri)
    assert seen > 0


def test_parallel_workers_write_every_requested_enterprise(result, study, tmp_path):
    ids = list(result.enterprises.enterprise_id[:4])
    done = []
    paths = build_enterprise_reports(result, study, enterprise_ids=ids, out_dir=tmp_path, formats=("html",),
                                     workers=2, progress=done.append)
    assert [p.name for p in paths] == [f"{report_stem(i)}.zh-CN.html" for i in ids]
    assert sum(done) == len(ids)
    names = result.enterprises.set_index("enterprise_id").enterprise_name
    for i, p in zip(ids, paths, strict=True):
        assert names[i] in p.read_text(encoding="utf-8")


def test_english_enterprise_report(result, study, tmp_path):
    eid = result.enterprises.enterprise_id.iloc[1]
    (p,) = build_enterprise_reports(result, study, enterprise_ids=[eid], lang="en", out_dir=tmp_path,
                                    formats=("html",))
    html = p.read_text(encoding="utf-8")
    assert "First-level indicator scores" in html and "Priority improvement areas" in html
    assert "本企业" not in html


def test_unknown_enterprise_is_refused(result, study, tmp_path):
    with pytest.raises(ValueError, match="NOPE"):
        build_enterprise_reports(result, study, enterprise_ids=["NOPE"], out_dir=tmp_path, formats=("html",))
