"""The happiness index reports on a tiny hand-computed dataset: the numbers a reader sees, and that an enterprise
report never shows a breakdown cell of fewer than 5 respondents (HTML and XLSX)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from openpyxl import load_workbook
from scipy import stats

from reports.happiness import build_happiness_enterprise_reports, build_happiness_industry_report
from scoring.happiness import IndexSpec, score_index_study

ROOT = Path(__file__).resolve().parents[2]
STUDY_FILE = ROOT / "config" / "studies" / "happiness_index.yaml"

# enterprise → (H1 answers, P2 gender answers); A: 5 women + 1 man, B: 5 women, C: 3 people (below 5)
PLAN = {"A": ([5, 5, 4, 4, 3, 3], [2, 2, 2, 2, 2, 1]),
        "B": ([5, 4, 4, 4, 2], [2, 2, 2, 2, 2]),
        "C": ([1, 1, 2], [1, 2, 2])}
SCORE = {1: 20, 2: 40, 3: 60, 4: 80, 5: 100}


def _tiny() -> pd.DataFrame:
    rows = []
    for e, (h1s, genders) in PLAN.items():
        for i, (h1, g) in enumerate(zip(h1s, genders, strict=True)):
            row = {"respondent_id": f"{e}{i}", "enterprise_id": e, "enterprise_name": f"企业{e}", "industry": "银行业",
                   "province": "广东" if e != "B" else "北京", "P1": 1 + i % 2, "P2": g, "P3": 1, "P4": 4, "P5": 3,
                   "P6": 1, "P7": 1, "P8": 44, "P9": 2, "P10": 3, "P11": 2, "P12": 1, "P13": 1, "P14": 1,
                   "H1": h1, "H2": 4, "H3": 3, "M1": "1,2", "M2": "3", "M3": "1", "M4": "2",
                   "O1": f"{e}的秘密{i}", "O2": "<script>alert(1)</script>" if e == "A" and i == 0 else ""}
            for j in range(4, 8):
                row[f"H{j}"] = 4
            for j in range(8, 16):
                row[f"H{j}"] = h1 if j % 2 else min(5, h1 + 1)
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def study() -> dict:
    return yaml.safe_load(STUDY_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def scored(study):
    df = _tiny()
    return df, score_index_study(df, IndexSpec.from_study(study), n_boot=20, seed=1)


def _mean(codes):
    return sum(SCORE[c] for c in codes) / len(codes)


def _t_interval(values):
    n = len(values)
    m = sum(values) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return m - half, m + half


def _section(html: str, sid: str) -> str:
    start = html.index(f'id="{sid}"')
    nxt = html.find('<section', start + 1)
    return html[start: nxt if nxt > 0 else len(html)]


def _rows(fragment: str) -> list[list[str]]:
    return [re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S) for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", fragment, re.S)
            if "<td" in tr]


def test_industry_report_shows_the_hand_computed_index_sections_and_breakdown(scored, study, tmp_path):
    df, result = scored
    paths = build_happiness_industry_report(result, df, study, lang="zh-CN", out_dir=tmp_path,
                                            formats=("html", "xlsx"))
    html = paths["html"].read_text(encoding="utf-8")
    all_h1 = [c for h1s, _ in PLAN.values() for c in h1s]
    index = _mean(all_h1)                                  # 940 / 14 = 67.142857…
    assert f"{index:.2f}" == "67.14"
    scores = _rows(_section(html, "scores"))
    by_label = {r[0]: r for r in scores}
    assert by_label["幸福指数"][1:3] == ["14", "67.14"]
    lo, hi = _t_interval([SCORE[c] for c in all_h1])
    assert by_label["幸福指数"][3] == f"{lo:.2f}–{hi:.2f}"
    ovr = (index + 80 + 60) / 3                            # 综合评价 = mean of H1, H2 (all 4 → 80), H3 (all 3 → 60)
    assert by_label["综合评价"][2] == f"{ovr:.2f}" == "69.05"
    assert by_label["企业管理因素"][2] == "80.00"
    # gender breakdown over everyone: men = A's last + C's first (2 people, suppressed); women 12
    gender = _rows(_section(html, "breakdowns").split("P2 ")[1].split("<h3>")[0])
    women = [SCORE[c] for e, (h1s, gs) in PLAN.items() for c, g in zip(h1s, gs, strict=True) if g == 2]
    lo, hi = _t_interval(women)
    assert gender == [["男", "n&lt;5", "—", "—"],
                      ["女", str(len(women)), f"{sum(women) / len(women):.2f}", f"{lo:.2f}–{hi:.2f}"]]
    # enterprise C (3 people) is listed without scores
    ents = {r[0]: r for r in _rows(_section(html, "enterprises"))}
    assert ents["企业C"][2:4] == ["n&lt;5", "—"] and ents["企业A"][3] == "80.00" and ents["企业B"][3] == "76.00"
    wb = load_workbook(paths["xlsx"])
    sheet = [[c.value for c in row] for row in wb["得分"].iter_rows(min_row=2)]
    assert sheet[0][:4] == ["index", "幸福指数", 14, pytest.approx(index)]


def test_enterprise_report_columns_last_year_and_hand_computed_scores(scored, study, tmp_path):
    df, result = scored
    previous = df[df["enterprise_id"] == "A"].assign(H1=3)          # last year: A's index 60
    paths = build_happiness_enterprise_reports(result, df, study, enterprise_ids=["A", "B"], previous=previous,
                                               lang="zh-CN", out_dir=tmp_path, formats=("html", "xlsx"))
    html_a = (tmp_path / "enterprise_A.zh-CN.html").read_text(encoding="utf-8")
    table = _section(html_a, "scores")
    assert "本企业去年" in table and "本企业" in table and "本省份" in table and "全行业" in table
    row = next(r for r in _rows(table) if r[0] == "幸福指数")
    province = _mean(PLAN["A"][0] + PLAN["C"][0])       # A and C are in 广东: 9 people
    assert row[:4] == ["幸福指数", "60.00", "80.00", "6"]
    assert row[5] == f"{province:.2f}" and row[6] == "67.14"
    html_b = (tmp_path / "enterprise_B.zh-CN.html").read_text(encoding="utf-8")
    assert "没有上一期调查数据" in html_b and "本企业去年" not in _section(html_b, "scores").split("</p>")[-1]
    # the enterprise's own open answers, escaped; none of another enterprise's
    assert "A的秘密1" in html_a and "B的秘密" not in html_a
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_a and "<script>alert" not in html_a
    assert len([p for p in paths if p.suffix == ".xlsx"]) == 2


def _assert_no_small_cells_html(html: str) -> int:
    checked = 0
    for row in _rows(_section(html, "breakdowns")):
        if row[1].isdigit():
            assert int(row[1]) >= 5, row
            checked += 1
        else:
            assert row[1:] == ["n&lt;5", "—", "—"], row
    return checked


def _assert_no_small_cells_xlsx(path: Path) -> tuple[int, int]:
    ws = load_workbook(path)["分组"]
    head = [c.value for c in ws[1]]
    n_col = head.index("n")
    shown = hidden = 0
    for row in ws.iter_rows(min_row=2, values_only=True):
        if row[1] is None:
            continue  # the note under the table (and the blank row before it)
        n, rest = row[n_col], row[n_col + 1:]
        if n == "n<5":
            assert rest == (None, None, None), row
            hidden += 1
        else:
            assert isinstance(n, int) and n >= 5 and all(isinstance(v, int | float) for v in rest), row
            shown += 1
    return shown, hidden


def test_enterprise_report_hides_every_breakdown_cell_under_the_minimum(scored, study, tmp_path):
    df, result = scored
    build_happiness_enterprise_reports(result, df, study, lang="zh-CN", out_dir=tmp_path, formats=("html", "xlsx"))
    # A: 5 women shown, 1 man hidden; P1 splits 3/3: both hidden
    html_a = (tmp_path / "enterprise_A.zh-CN.html").read_text(encoding="utf-8")
    assert _assert_no_small_cells_html(html_a) > 0
    gender = _rows(_section(html_a, "breakdowns").split("P2 ")[1].split("<h3>")[0])
    assert gender[0] == ["男", "n&lt;5", "—", "—"] and gender[1][:3] == ["女", "5", "84.00"]
    shown, hidden = _assert_no_small_cells_xlsx(tmp_path / "enterprise_A.zh-CN.xlsx")
    assert shown > 0 and hidden > 0
    # C (3 people): no score anywhere, no open answer, every breakdown cell hidden
    html_c = (tmp_path / "enterprise_C.zh-CN.html").read_text(encoding="utf-8")
    assert _assert_no_small_cells_html(html_c) == 0
    assert "C的秘密" not in html_c and "26.67" not in html_c and "少于5人" in html_c
    wb = load_workbook(tmp_path / "enterprise_C.zh-CN.xlsx")
    assert _assert_no_small_cells_xlsx(tmp_path / "enterprise_C.zh-CN.xlsx")[0] == 0
    own = [r for r in wb["得分"].iter_rows(min_row=2, values_only=True) if r[0] == "index"][0]
    assert own[2] is None and own[3] == "n<5"
    assert all("C的秘密" not in str(c) for ws in wb for row in ws.iter_rows(values_only=True) for c in row)


def test_english_reports_and_pdf(scored, study, tmp_path):
    df, result = scored
    paths = build_happiness_industry_report(result, df, study, lang="en", out_dir=tmp_path, formats=("html", "pdf"))
    html = paths["html"].read_text(encoding="utf-8")
    assert "Happiness index" in html and "Breakdowns by basic information" in html and "67.14" in html
    assert paths["pdf"].read_bytes()[:5] == b"%PDF-"
    got = build_happiness_enterprise_reports(result, df, study, enterprise_ids=["B"], lang="en", out_dir=tmp_path,
                                             formats=("html",))
    text = got[0].read_text(encoding="utf-8")
    assert "This enterprise" in text and "No previous wave" in text and "76.00" in text
    with pytest.raises(ValueError, match="unknown enterprise"):
        build_happiness_enterprise_reports(result, df, study, enterprise_ids=["Z"], out_dir=tmp_path)


def test_cati_report_from_a_responses_file_of_the_happiness_study(tmp_path):
    from click.testing import CliRunner

    from cati.cli.report import report

    csv = tmp_path / "responses.csv"
    _tiny().to_csv(csv, index=False)
    last = tmp_path / "last.csv"
    _tiny()[lambda d: d["enterprise_id"] == "A"].assign(H1=3).to_csv(last, index=False)
    res = CliRunner().invoke(report, ["industry", "--responses", str(csv), "--study", str(STUDY_FILE), "--out",
                                      str(tmp_path / "out"), "--format", "html", "--n-boot", "10"])
    assert res.exit_code == 0, res.output
    assert "67.14" in (tmp_path / "out" / "happiness_industry_report.zh-CN.html").read_text(encoding="utf-8")
    res = CliRunner().invoke(report, ["enterprise", "A", "--responses", str(csv), "--study", str(STUDY_FILE),
                                      "--previous-responses", str(last), "--out", str(tmp_path / "ent"),
                                      "--format", "xlsx", "--n-boot", "10"])
    assert res.exit_code == 0, res.output
    ws = load_workbook(tmp_path / "ent" / "enterprise_A.zh-CN.xlsx")["得分"]
    head = [c.value for c in ws[1]]
    first = [c.value for c in ws[2]]
    assert head[2:4] == ["本企业去年", "本企业"] and first[2:4] == [60, 80]
