"""Index studies (the contact-centre staff happiness index, 客服人幸福指数): pure functions on pandas DataFrames.

Over 600 lines on purpose: the index study's spec, index, sections, breakdowns with suppression, drivers and
shares are one pure pipeline (scoring/study.py is its CSAT counterpart).

An index study (``scoring.kind: index`` in the study file) reports one headline number, the mean score of one rated
item, next to the scores of all its items and sections, breakdowns by basic information, a driver model and the
shares of its multiple-choice answers. With answer code :math:`c_{rj}` of respondent :math:`r` on item :math:`j`
and the 5-point scale mapped to 20–100 (``item_scores``; missing codes such as 99 "prefer not to say" → NaN):

.. math::

    s_{rj} = \\text{item\\_scores}[c_{rj}], \\qquad
    \\text{index} = \\bar s_{\\cdot,\\text{index item}} = \\frac{1}{n}\\sum_{r} s_{r,\\text{index item}}, \\qquad
    \\text{item}_j = \\frac{1}{n_j}\\sum_r s_{rj}, \\qquad
    \\text{section}_k = \\frac{1}{|k|}\\sum_{j \\in k} \\text{item}_j

(sums over respondents with a scored answer). Intervals are Student t intervals
:math:`\\bar s \\pm t_{(1+\\gamma)/2,\\,n-1}\\, s/\\sqrt{n}`. A breakdown cell (a group of a basic-information
question) with fewer than ``min_cell_size`` respondents is *suppressed*: its scores and interval are NaN and
``suppressed`` is True, so no report can show the answers of a handful of identifiable staff.

Drivers (2024 report): each driver item's *correlation* with the index item (Pearson, pairwise-complete) and its
*volatility*, the noise-corrected spread of enterprise means
:math:`\\hat\\tau = \\sqrt{\\max(0, \\operatorname{Var}_e(\\bar y_e) - \\overline{s_e^2/n_e})}` (as for the CSAT
drivers, :func:`scoring.drivers.noise_corrected_tau`). Cut points are the means over the driver items; the
quadrants are 重点关注领域 (high, high), 幸福必备条件 (high correlation, low volatility), 卓越企业需关注 (low, high) and
行业基本达标 (low, low), and a bootstrap over enterprises gives each item's probability of each quadrant.

This module imports nothing of the application (the study file is read as a plain mapping).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .drivers import _corr_from_sums, _enterprise_pair_sums, _pair_sums, _tau_from_group_stats, quadrant
from .scores import recode_items
from .spec import ScoringSpec, _text, spec_from_yaml
from .study import _json_value
from .uncertainty import cluster_counts

__all__ = [
    "HAPPINESS_QUADRANTS",
    "IndexResult",
    "IndexSpec",
    "benchmark_table",
    "breakdown",
    "breakdowns",
    "choice_sets",
    "driver_quadrants",
    "index_score",
    "item_section_scores",
    "mean_interval",
    "multi_shares",
    "open_answers",
    "score_index_study",
]

#: (correlation high, volatility high) → quadrant name of the happiness report.
HAPPINESS_QUADRANTS = {
    (True, True): "重点关注领域",
    (True, False): "幸福必备条件",
    (False, True): "卓越企业需关注",
    (False, False): "行业基本达标",
}
HAPPINESS_QUADRANT_EN = {
    "重点关注领域": "key focus area (strong driver, differs between enterprises)",
    "幸福必备条件": "prerequisite of happiness (strong driver, similar everywhere)",
    "卓越企业需关注": "for leading enterprises (weak driver, differs between enterprises)",
    "行业基本达标": "industry baseline (weak driver, similar everywhere)",
}


@dataclass(frozen=True)
class IndexSpec:
    """What index scoring needs from a study file.

    Attributes
    ----------
    scoring : ScoringSpec
        The indicator (section) tree, item scores and missing codes.
    index_item : str
        The rated item whose mean is the index (``H1``).
    driver_items : tuple of str
        Items of the driver model (default: the scored items outside the index item's section).
    breakdown_questions : tuple of str
        Basic-information questions to break the index down by.
    min_cell_size : int
        Smallest group shown in a breakdown.
    labels : dict
        Question code → answer code → ``(zh-CN label, en label)`` of its scale (substantive codes only).
    multi_questions : tuple of str
        The multiple-choice questions.
    question_texts : dict
        Question code → ``(zh-CN text, en text)``.
    """

    scoring: ScoringSpec
    index_item: str
    driver_items: tuple[str, ...]
    breakdown_questions: tuple[str, ...] = ()
    min_cell_size: int = 5
    labels: Mapping[str, Mapping[int, tuple[str, str]]] = field(default_factory=dict)
    multi_questions: tuple[str, ...] = ()
    question_texts: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        items = set(self.scoring.item_codes)
        if self.index_item not in items:
            raise ValueError(f"scoring.index_item: {self.index_item!r} is not a scored item")
        bad = [c for c in self.driver_items if c not in items or c == self.index_item]
        if bad:
            raise ValueError(f"scoring.driver_items: {bad} are not scored items other than the index item")
        if self.min_cell_size < 1:
            raise ValueError("scoring.min_cell_size: must be at least 1")

    @property
    def missing_codes(self) -> frozenset[int]:
        return frozenset(self.scoring.missing_codes)

    @property
    def confidence(self) -> float:
        return self.scoring.confidence

    @classmethod
    def from_study(cls, study: Mapping) -> IndexSpec:
        """Parse the raw study mapping (``yaml.safe_load`` of ``config/studies/happiness_index.yaml``).

        Examples
        --------
        >>> spec = IndexSpec.from_study({
        ...     "scales": {"a5": {"labels": {5: {"zh-CN": "非常赞同", "en": "Strongly agree"}}}},
        ...     "questions": [{"code": "H1", "type": "rating", "scale": "a5", "text": {"zh-CN": "幸福吗"}}],
        ...     "indicators": [{"code": "OVR", "weight": 0.5, "items": ["H1", "H2"]},
        ...                    {"code": "ENT", "weight": 0.5, "items": ["H3", "H4"]}],
        ...     "scoring": {"kind": "index", "index_item": "H1", "outcome": None, "callback_item": None}})
        >>> spec.index_item, spec.driver_items, spec.min_cell_size
        ('H1', ('H3', 'H4'), 5)
        """
        scoring = ScoringSpec.from_study(study)
        sc = study.get("scoring") or {}
        index_item = sc.get("index_item")
        if not index_item:
            raise ValueError("scoring.index_item: an index study names the item whose mean is the index")
        index_item = str(index_item)
        drivers = tuple(str(c) for c in sc.get("driver_items") or ())
        if not drivers:
            parent = scoring.item_parent.get(index_item)
            drivers = tuple(c for c in scoring.item_codes if scoring.item_parent[c] != parent)
        scales = study.get("scales") or {}
        labels: dict[str, dict[int, tuple[str, str]]] = {}
        texts: dict[str, tuple[str, str]] = {}
        multi: list[str] = []
        for q in study.get("questions") or []:
            if not isinstance(q, Mapping) or "code" not in q:
                continue
            code = str(q["code"])
            texts[code] = (_text(q.get("text"), "zh-CN"), _text(q.get("text"), "en"))
            if q.get("type") == "multi":
                multi.append(code)
            scale = scales.get(q.get("scale")) if isinstance(q.get("scale"), str) else None
            if isinstance(scale, Mapping):
                labels[code] = {int(k): (_text(v, "zh-CN"), _text(v, "en"))
                                for k, v in (scale.get("labels") or {}).items()}
        return cls(scoring=scoring, index_item=index_item, driver_items=drivers,
                   breakdown_questions=tuple(str(c) for c in sc.get("breakdowns") or ()),
                   min_cell_size=int(sc.get("min_cell_size", 5)), labels=labels, multi_questions=tuple(multi),
                   question_texts=texts)

    @classmethod
    def from_yaml(cls, path: str | Path) -> IndexSpec:
        """Read a study file and parse it with :meth:`from_study`."""
        return spec_from_yaml(cls, path)


def is_index_study(study: Mapping) -> bool:
    """Whether a raw study mapping is scored as an index study (``scoring.kind: index``)."""
    sc = study.get("scoring") if isinstance(study, Mapping) else None
    return isinstance(sc, Mapping) and sc.get("kind") == "index"


# ---------------------------------------------------------------------------------------------------- helpers


def mean_interval(values: np.ndarray | pd.Series, confidence: float = 0.95) -> tuple[int, float, float, float, float]:
    """``(n, mean, sd, ci_low, ci_high)`` of the non-missing values, with a Student t interval.

    .. math:: \\bar y \\pm t_{(1+\\gamma)/2,\\; n-1} \\frac{s}{\\sqrt n}

    Examples
    --------
    >>> n, m, sd, lo, hi = mean_interval(np.array([60.0, 80.0, 100.0, np.nan]))
    >>> n, m, sd
    (3, 80.0, 20.0)
    >>> round(lo, 2), round(hi, 2)  # 80 ± 4.303 × 20 / √3
    (30.32, 129.68)
    """
    y = np.asarray(values, dtype=np.float64)
    y = y[~np.isnan(y)]
    n = len(y)
    if n == 0:
        return 0, math.nan, math.nan, math.nan, math.nan
    m = float(y.mean())
    if n == 1:
        return 1, m, math.nan, math.nan, math.nan
    sd = float(y.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return n, m, sd, m - half, m + half


def _codes(series: pd.Series) -> pd.Series:
    """A column of single answer codes as floats (text and blanks → NaN)."""
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64")
    return pd.to_numeric(series.astype("string").str.strip().replace("", None), errors="coerce").astype("float64")


def respondent_item_scores(responses: pd.DataFrame, spec: IndexSpec) -> pd.DataFrame:
    """Item scores (20–100, NaN for missing, prefer-not-to-say and not asked) of every respondent.

    Examples
    --------
    >>> spec = _toy_spec()
    >>> respondent_item_scores(pd.DataFrame({"H1": [5, 99], "H2": [3, 1], "H3": [4, None], "H4": [2, 2]}),
    ...                        spec)["H1"].tolist()
    [100.0, nan]
    """
    return recode_items(responses, spec.scoring, list(spec.scoring.item_codes))


# -------------------------------------------------------------------------------------------------- the index


def index_score(responses: pd.DataFrame, spec: IndexSpec) -> dict[str, float]:
    """The index: mean score of the index item, with its respondent count and t interval.

    Examples
    --------
    Answers 5, 4, 4, 3 and a "prefer not to say" (99, missing): scores 100, 80, 80, 60 → index 80.

    >>> spec = _toy_spec()
    >>> out = index_score(pd.DataFrame({"H1": [5, 4, 4, 3, 99], "H2": 3, "H3": 3, "H4": 3}), spec)
    >>> out["index"], out["n"]
    (80.0, 4)
    """
    n, m, sd, lo, hi = mean_interval(respondent_item_scores(responses, spec)[spec.index_item], spec.confidence)
    return {"index": m, "n": n, "sd": sd, "ci_low": lo, "ci_high": hi}


def item_section_scores(responses: pd.DataFrame, spec: IndexSpec) -> pd.DataFrame:
    """Item scores and section scores (a section = the mean of its item scores).

    Returns
    -------
    DataFrame
        ``level`` (item / section), ``code``, ``section``, ``name_zh``, ``name_en``, ``n`` (respondents with a
        scored answer; for a section the smallest of its items), ``score``, ``sd``, ``ci_low``, ``ci_high`` (items
        only) and ``score_5`` (the same on the 1–5 scale, as in the enterprise report: (score / 20)).

    Examples
    --------
    Section ENT = mean of H3 (mean 70) and H4 (mean 50) = 60:

    >>> spec = _toy_spec()
    >>> df = pd.DataFrame({"H1": [5, 4], "H2": [3, 3], "H3": [4, 3], "H4": [3, 2]})
    >>> t = item_section_scores(df, spec).set_index("code")
    >>> t.loc[["H3", "H4", "ENT"], "score"].tolist(), float(t.loc["ENT", "score_5"])
    ([70.0, 50.0, 60.0], 3.0)
    """
    scores = respondent_item_scores(responses, spec)
    sc = spec.scoring
    rows = []
    for ind in sc.indicators:
        item_means = []
        item_ns = []
        for code in ind.items:
            n, m, sd, lo, hi = mean_interval(scores[code], spec.confidence)
            item_means.append(m)
            item_ns.append(n)
            zh, en = spec.question_texts.get(code, (code, code))
            rows.append({"level": "item", "code": code, "section": ind.code, "name_zh": _short(zh),
                         "name_en": _short(en), "n": n, "score": m, "sd": sd, "ci_low": lo, "ci_high": hi})
        finite = [m for m in item_means if not math.isnan(m)]
        rows.append({"level": "section", "code": ind.code, "section": ind.code, "name_zh": ind.name_zh,
                     "name_en": ind.name_en, "n": min(item_ns) if item_ns else 0,
                     "score": float(np.mean(finite)) if finite else math.nan, "sd": math.nan, "ci_low": math.nan,
                     "ci_high": math.nan})
    out = pd.DataFrame(rows)
    out["score_5"] = out["score"] / 20.0
    return out


def _short(text: str) -> str:
    """The short name of an item: the words before its colon (``员工薪酬：我所在企业…`` → ``员工薪酬``)."""
    head = re.split(r"[：:]", text, maxsplit=1)[0].strip()
    return head if head and len(head) < len(text) else text


# --------------------------------------------------------------------------------------------------- breakdowns


def breakdown(responses: pd.DataFrame, spec: IndexSpec, variable: str, measure: str | None = None, *,
              min_cell_size: int | None = None, item_scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """The index (or another item) by the groups of a basic-information question, small cells suppressed.

    Parameters
    ----------
    responses : DataFrame
        Wide responses (answer codes).
    spec : IndexSpec
    variable : str
        A single-choice question (``P1`` age band …); its missing codes (99 prefer not to say, 9 don't know) form
        no group.
    measure : str, optional
        Scored item to average (default: the index item).
    min_cell_size : int, optional
        Default ``spec.min_cell_size``; a group with fewer respondents is suppressed.
    item_scores : DataFrame, optional
        :func:`respondent_item_scores` of ``responses``, when the caller already has them (several breakdowns of
        the same rows recode once).

    Returns
    -------
    DataFrame
        One row per answer code of the question's scale (then any other code found): ``variable, code, label_zh,
        label_en, n, mean, ci_low, ci_high, suppressed``. A suppressed row keeps ``n`` and has NaN scores.

    Examples
    --------
    Five women (index 100, 80, 80, 60, 80 → 80) and two men (suppressed at n < 5); 99 = prefer not to say:

    >>> spec = _toy_spec()
    >>> df = pd.DataFrame({"P2": [2, 2, 2, 2, 2, 1, 1, 99], "H1": [5, 4, 4, 3, 4, 5, 5, 1],
    ...                    "H2": 3, "H3": 3, "H4": 3})
    >>> breakdown(df, spec, "P2")[["code", "n", "mean", "suppressed"]].to_dict("records")
    [{'code': 1, 'n': 2, 'mean': nan, 'suppressed': True}, {'code': 2, 'n': 5, 'mean': 80.0, 'suppressed': False}]
    """
    measure = measure or spec.index_item
    if variable not in responses.columns:
        raise ValueError(f"breakdown: column {variable!r} missing from the responses")
    cut = spec.min_cell_size if min_cell_size is None else int(min_cell_size)
    scored = respondent_item_scores(responses, spec) if item_scores is None else item_scores
    y = scored[measure].to_numpy(dtype=np.float64)
    g = _codes(responses[variable]).to_numpy()
    labels = spec.labels.get(variable, {})
    found = sorted({int(c) for c in g[~np.isnan(g)] if float(c).is_integer()} - spec.missing_codes - set(labels))
    rows = []
    for code in [*labels, *found]:
        if code in spec.missing_codes:
            continue
        sel = (g == code) & ~np.isnan(y)
        n, m, _sd, lo, hi = mean_interval(y[sel], spec.confidence)
        suppressed = n < cut
        zh, en = labels.get(code, (str(code), str(code)))
        rows.append({"variable": variable, "measure": measure, "code": int(code), "label_zh": zh, "label_en": en,
                     "n": int(n), "mean": math.nan if suppressed else m,
                     "ci_low": math.nan if suppressed else lo, "ci_high": math.nan if suppressed else hi,
                     "suppressed": bool(suppressed)})
    out = pd.DataFrame(rows, columns=["variable", "measure", "code", "label_zh", "label_en", "n", "mean", "ci_low",
                                      "ci_high", "suppressed"])
    return out


def breakdowns(responses: pd.DataFrame, spec: IndexSpec, variables: list[str] | None = None, *,
               min_cell_size: int | None = None) -> pd.DataFrame:
    """:func:`breakdown` of the index by every breakdown question present in ``responses``, stacked."""
    variables = list(spec.breakdown_questions) if variables is None else variables
    scored = respondent_item_scores(responses, spec)
    parts = [breakdown(responses, spec, v, min_cell_size=min_cell_size, item_scores=scored)
             for v in variables if v in responses.columns]
    if not parts:
        return breakdown(responses.assign(_none=np.nan), spec, "_none").iloc[0:0]
    return pd.concat(parts, ignore_index=True)


# ------------------------------------------------------------------------------------------------------ drivers


def driver_quadrants(responses: pd.DataFrame, spec: IndexSpec, enterprise_col: str = "enterprise_id", *,
                     n_boot: int = 0, seed: int = 0, strata_col: str | None = "industry") -> pd.DataFrame:
    """Correlation × volatility quadrants of the driver items, with bootstrap quadrant probabilities.

    Parameters
    ----------
    responses : DataFrame
        Wide responses with ``enterprise_col``.
    spec : IndexSpec
    enterprise_col : str
    n_boot : int
        Bootstrap replicates over enterprises (within ``strata_col`` when present); 0 = probabilities NaN.
    seed : int
    strata_col : str, optional
        Enterprises are resampled within its groups (industry).

    Returns
    -------
    DataFrame
        ``code, name_zh, name_en, correlation, n, tau, correlation_high, volatility_high, quadrant, quadrant_en``
        and ``p_<quadrant>`` for the four quadrants; cut points are the means over the driver items.

    Examples
    --------
    Item H3 follows the index and differs between enterprises; H4 is noise around one level:

    >>> rng = np.random.default_rng(3)
    >>> e = np.repeat(np.arange(30), 20); u = rng.normal(size=30)[e]
    >>> h3 = np.clip(np.round(3.5 + u + rng.normal(0, .7, 600)), 1, 5)
    >>> h1 = np.clip(np.round(h3 + rng.normal(0, .5, 600)), 1, 5)
    >>> h4 = rng.integers(2, 6, 600)
    >>> df = pd.DataFrame({"enterprise_id": e, "H1": h1, "H2": 3, "H3": h3, "H4": h4})
    >>> driver_quadrants(df, _toy_spec(), n_boot=0).set_index("code")["quadrant"].to_dict()
    {'H3': '重点关注领域', 'H4': '行业基本达标'}
    """
    scores = respondent_item_scores(responses, spec)
    drivers = list(spec.driver_items)
    cols = [*drivers, spec.index_item]
    arrays = [scores[c].to_numpy(dtype=np.float64) for c in cols]
    corr, nm = _corr_from_sums(*_pair_sums(arrays))
    r = corr[:-1, -1]
    ent_codes, ents = pd.factorize(responses[enterprise_col], sort=True)
    n_e = len(ents)
    p = len(drivers)
    cnt = np.empty((n_e, p))
    sums = np.empty((n_e, p))
    sqs = np.empty((n_e, p))
    for j in range(p):
        present = ~np.isnan(arrays[j])
        v0 = np.where(present, arrays[j], 0.0)
        cnt[:, j] = np.bincount(ent_codes, weights=present, minlength=n_e)
        sums[:, j] = np.bincount(ent_codes, weights=v0, minlength=n_e)
        sqs[:, j] = np.bincount(ent_codes, weights=v0 * v0, minlength=n_e)
    tau = _tau_from_group_stats(cnt, sums, sqs)
    hi_r, hi_t, _ = quadrant(r, tau)
    names = np.array([HAPPINESS_QUADRANTS[bool(a), bool(b)] for a, b in zip(hi_r, hi_t, strict=True)])
    probs = {q: np.full(p, np.nan) for q in HAPPINESS_QUADRANTS.values()}
    if n_boot > 0 and n_e > 1:
        if strata_col and strata_col in responses.columns:
            first = pd.Series(responses[strata_col].to_numpy()).groupby(ent_codes).first()
            strata = pd.factorize(first.reindex(range(n_e)))[0]
        else:
            strata = np.zeros(n_e, dtype=np.intp)
        w = cluster_counts(strata, n_boot, np.random.default_rng(seed))
        stats_e = _enterprise_pair_sums(np.column_stack(arrays), ent_codes, n_e)
        tot = (w @ stats_e).reshape(-1, 4, p + 1, p + 1)
        corr_b, _ = _corr_from_sums(tot[:, 0], tot[:, 1], tot[:, 2], tot[:, 3])
        tau_b = _tau_from_group_stats(cnt, sums, sqs, w)
        hr_b, ht_b, _ = quadrant(corr_b[:, :-1, -1], tau_b)
        for (a, b), q in HAPPINESS_QUADRANTS.items():
            probs[q] = ((hr_b == a) & (ht_b == b)).mean(axis=0)
    rows = []
    for j, code in enumerate(drivers):
        zh, en = spec.question_texts.get(code, (code, code))
        row = {"code": code, "name_zh": _short(zh), "name_en": _short(en), "section": spec.scoring.item_parent[code],
               "correlation": float(r[j]), "n": int(nm[j, -1]), "tau": float(tau[j]),
               "correlation_high": bool(hi_r[j]), "volatility_high": bool(hi_t[j]), "quadrant": str(names[j]),
               "quadrant_en": HAPPINESS_QUADRANT_EN[str(names[j])]}
        for q in HAPPINESS_QUADRANTS.values():
            row[f"p_{q}"] = float(probs[q][j])
        rows.append(row)
    return pd.DataFrame(rows)


# -------------------------------------------------------------------------------------------- multiple choice


def choice_sets(column: pd.Series) -> list[frozenset[int] | None]:
    """Parse a multiple-choice column: lists, or text such as ``"1,3,97"`` / ``"1;3"`` / ``"1 3"``; empty → None.

    Examples
    --------
    >>> [sorted(s) if s else s for s in choice_sets(pd.Series(["1,3", "2; 97", "", None, [4, 5], 99]))]
    [[1, 3], [2, 97], None, None, [4, 5], [99]]
    """
    out: list[frozenset[int] | None] = []
    for v in column.tolist():
        if isinstance(v, list | tuple | set | frozenset):
            out.append(frozenset(int(x) for x in v) or None)
            continue
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            out.append(None)
            continue
        if isinstance(v, int | float | np.integer | np.floating):
            out.append(frozenset({int(v)}))
            continue
        parts = [p for p in re.split(r"[,;，；\s]+", str(v).strip()) if p]
        try:
            out.append(frozenset(int(float(p)) for p in parts) or None)
        except ValueError:
            raise ValueError(f"multiple-choice answer {v!r} is not a list of codes (like 1,3,97)") from None
    return out


def multi_shares(responses: pd.DataFrame, spec: IndexSpec, question: str) -> pd.DataFrame:
    """Share of respondents choosing each option of a multiple-choice question.

    .. math:: \\text{share}_o = \\frac{\\#\\{r : o \\in C_r\\}}{\\#\\{r : C_r \\ne \\varnothing,\\ C_r \\cap M = \\varnothing\\}}

    (base: respondents with a substantive answer; :math:`M` the missing codes such as 99). Shares add up to more
    than 1 when respondents choose several options.

    Returns
    -------
    DataFrame
        ``question, code, label_zh, label_en, chosen, base, share`` in scale order.

    Examples
    --------
    >>> spec = _toy_spec()
    >>> df = pd.DataFrame({"M1": ["1,2", "2", "2,97", None, "99"]})
    >>> multi_shares(df, spec, "M1")[["code", "chosen", "base", "share"]].to_dict("records")
    [{'code': 1, 'chosen': 1, 'base': 3, 'share': 0.3333333333333333}, {'code': 2, 'chosen': 3, 'base': 3, 'share': 1.0}, {'code': 97, 'chosen': 1, 'base': 3, 'share': 0.3333333333333333}]
    """
    if question not in responses.columns:
        raise ValueError(f"multi_shares: column {question!r} missing from the responses")
    sets = [s for s in choice_sets(responses[question]) if s and not (s & spec.missing_codes)]
    base = len(sets)
    labels = spec.labels.get(question, {})
    extra = sorted(set().union(*sets) - set(labels)) if sets else []
    rows = []
    for code in [*labels, *extra]:
        chosen = sum(1 for s in sets if code in s)
        zh, en = labels.get(code, (str(code), str(code)))
        rows.append({"question": question, "code": int(code), "label_zh": zh, "label_en": en, "chosen": chosen,
                     "base": base, "share": chosen / base if base else math.nan})
    return pd.DataFrame(rows, columns=["question", "code", "label_zh", "label_en", "chosen", "base", "share"])


def open_answers(responses: pd.DataFrame, spec: IndexSpec, questions: list[str] | None = None, *,
                 enterprise_id: str | None = None, enterprise_col: str = "enterprise_id",
                 min_cell_size: int | None = None) -> pd.DataFrame:
    """The open answers (of one enterprise, or of all), without prefer-not-to-say codes and blanks.

    An enterprise with fewer respondents than the minimum cell size gets no open answers (its staff would be
    recognisable by what they write). The texts are returned as given: escape them when writing HTML and
    neutralise formulas when writing spreadsheets.

    Returns
    -------
    DataFrame
        ``question, text`` (and ``enterprise_id``), in file order.

    Examples
    --------
    >>> spec = _toy_spec()
    >>> df = pd.DataFrame({"enterprise_id": ["a"] * 5, "O1": ["累", "99", None, " 工资低 ", ""]})
    >>> open_answers(df, spec, ["O1"], enterprise_id="a")["text"].tolist()
    ['累', '工资低']
    """
    cut = spec.min_cell_size if min_cell_size is None else int(min_cell_size)
    if questions is None:
        questions = [c for c in spec.question_texts if c.startswith("O")]
    data = responses
    if enterprise_id is not None:
        data = responses[responses[enterprise_col].astype(str) == str(enterprise_id)]
        if len(data) < cut:
            data = data.iloc[0:0]
    missing = {str(c) for c in spec.missing_codes}
    parts = []
    for q in questions:
        if q not in data.columns:
            continue
        text = data[q].astype("string").str.strip()
        keep = text.notna() & (text != "") & ~text.isin(missing)
        part = pd.DataFrame({"question": q, "text": text[keep].astype(object)})
        if enterprise_col in data.columns:
            part.insert(0, enterprise_col, data.loc[keep, enterprise_col].to_numpy())
        parts.append(part)
    cols = [enterprise_col, "question", "text"] if enterprise_col in responses.columns else ["question", "text"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


# -------------------------------------------------------------------------------------------- enterprise report


def benchmark_table(responses: pd.DataFrame, spec: IndexSpec, enterprise_id: str, *,
                    previous: pd.DataFrame | None = None, province_col: str | None = "province",
                    enterprise_col: str = "enterprise_id", five_point: bool = False,
                    min_cell_size: int | None = None) -> pd.DataFrame:
    """The enterprise report's benchmark table: 本企业去年 / 本企业 / 本省份 / 全行业 for the index and each section.

    Parameters
    ----------
    responses : DataFrame
        This wave's responses (all enterprises).
    spec : IndexSpec
    enterprise_id : str
        The enterprise of the report.
    previous : DataFrame, optional
        Last wave's responses; its rows of ``enterprise_id`` give 本企业去年 (NaN without them).
    province_col : str, optional
        Column naming the enterprise's province; 本省份 = respondents of the enterprises of the same province
        (NaN when the column is absent).
    five_point : bool
        Scores on the 1–5 scale (score / 20), as in the 2023 report's table, instead of 20–100.
    min_cell_size : int, optional
        Default ``spec.min_cell_size``: a column with fewer respondents is NaN (the enterprise's own columns too).

    Returns
    -------
    DataFrame
        Index ``index`` and the section codes; columns ``name_zh, name_en, last_year, enterprise, province,
        industry`` and the respondent counts ``n_last_year, n_enterprise, n_province, n_industry``.

    Examples
    --------
    >>> spec = _toy_spec()
    >>> df = pd.DataFrame({"enterprise_id": ["a"] * 5 + ["b"] * 5, "province": ["广东"] * 10,
    ...                    "H1": [5] * 5 + [3] * 5, "H2": 3, "H3": 4, "H4": 4})
    >>> t = benchmark_table(df, spec, "a")
    >>> t.loc["index", ["enterprise", "province", "industry"]].tolist()
    [100.0, 80.0, 80.0]
    """
    cut = spec.min_cell_size if min_cell_size is None else int(min_cell_size)
    own = responses[responses[enterprise_col].astype(str) == str(enterprise_id)]
    if own.empty:
        raise ValueError(f"benchmark_table: enterprise {enterprise_id!r} has no responses")
    groups: dict[str, pd.DataFrame | None] = {
        "last_year": None if previous is None
        else previous[previous[enterprise_col].astype(str) == str(enterprise_id)],
        "enterprise": own,
        "province": None,
        "industry": responses,
    }
    if province_col and province_col in responses.columns:
        provinces = own[province_col].dropna().unique()
        if len(provinces):
            groups["province"] = responses[responses[province_col].isin(provinces)]
    rows = {"index": {"name_zh": "幸福指数", "name_en": "Happiness index"}}
    for ind in spec.scoring.indicators:
        rows[ind.code] = {"name_zh": ind.name_zh, "name_en": ind.name_en}
    factor = 1 / 20 if five_point else 1.0
    for name, part in groups.items():
        n = 0 if part is None else len(part)
        usable = part is not None and n >= cut
        if usable:
            idx = index_score(part, spec)
            secs = item_section_scores(part, spec).set_index("code")["score"]
        for code, row in rows.items():
            value = (idx["index"] if code == "index" else float(secs[code])) if usable else math.nan
            row[name] = value * factor
            row[f"n_{name}"] = n
    return pd.DataFrame.from_dict(rows, orient="index")


# ------------------------------------------------------------------------------------------------ whole study


@dataclass(frozen=True)
class IndexResult:
    """Everything :func:`score_index_study` computes (unrounded)."""

    spec: IndexSpec
    overall: dict
    scores: pd.DataFrame
    enterprises: pd.DataFrame
    breakdowns: pd.DataFrame
    drivers: pd.DataFrame
    multi: pd.DataFrame
    method: dict = field(default_factory=dict)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``overall.json``, ``item_scores.csv``, ``enterprise_scores.csv``, ``breakdowns.csv``,
        ``drivers.csv``, ``multi_shares.csv`` and ``method.json`` to ``out_dir`` (UTF-8)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {name: out / f"{name}.csv" for name in ("item_scores", "enterprise_scores", "breakdowns", "drivers",
                                                         "multi_shares")}
        from .cells import safe_frame

        safe_frame(self.scores).to_csv(paths["item_scores"], index=False)
        safe_frame(self.enterprises).to_csv(paths["enterprise_scores"], index=False)
        safe_frame(self.breakdowns).to_csv(paths["breakdowns"], index=False)
        safe_frame(self.drivers).to_csv(paths["drivers"], index=False)
        safe_frame(self.multi).to_csv(paths["multi_shares"], index=False)
        for name, data in (("overall", self.overall), ("method", self.method)):
            paths[name] = out / f"{name}.json"
            paths[name].write_text(json.dumps(_json_value(data), ensure_ascii=False, indent=2) + "\n",
                                   encoding="utf-8")
        return paths


def _complete_rows(responses: pd.DataFrame) -> pd.DataFrame:
    from .contract import complete_mask

    if "complete" in responses.columns or "status" in responses.columns:
        return responses[complete_mask(responses)]
    return responses


def enterprise_index_scores(responses: pd.DataFrame, spec: IndexSpec, enterprise_col: str = "enterprise_id",
                            *, min_cell_size: int | None = None) -> pd.DataFrame:
    """Index and section scores of every enterprise (an enterprise under the minimum cell size is suppressed).

    Returns
    -------
    DataFrame
        ``enterprise_id`` (and ``enterprise_name``, ``industry`` when present), ``n``, ``index``, ``ci_low``,
        ``ci_high``, one column per section and ``suppressed``.
    """
    cut = spec.min_cell_size if min_cell_size is None else int(min_cell_size)
    keep = [c for c in (enterprise_col, "enterprise_name", "industry") if c in responses.columns]
    rows = []
    for _key, part in responses.groupby(enterprise_col, sort=True):
        n, m, _sd, lo, hi = mean_interval(respondent_item_scores(part, spec)[spec.index_item], spec.confidence)
        secs = item_section_scores(part, spec)
        secs = secs[secs["level"] == "section"].set_index("code")["score"]
        small = n < cut
        row = {c: part[c].iloc[0] for c in keep}
        row.update({"n": n, "index": math.nan if small else m, "ci_low": math.nan if small else lo,
                    "ci_high": math.nan if small else hi})
        for code in spec.scoring.indicator_codes:
            row[code] = math.nan if small else float(secs[code])
        row["suppressed"] = bool(small)
        rows.append(row)
    return pd.DataFrame(rows)


def score_index_study(responses: pd.DataFrame, spec: IndexSpec, *, n_boot: int | None = None,
                      seed: int = 0) -> IndexResult:
    """Score an index study: the index, items and sections, enterprises, breakdowns, drivers, multi shares.

    Parameters
    ----------
    responses : DataFrame
        Wide responses (file contract: ``respondent_id, enterprise_id, enterprise_name, industry``, answer
        columns); rows marked not complete (``complete`` / ``status`` column) are dropped.
    spec : IndexSpec
    n_boot : int, optional
        Bootstrap replicates of the driver quadrant probabilities (default ``scoring.bootstrap_replicates``).
    seed : int

    Examples
    --------
    >>> from scoring.synthetic import make_happiness_responses
    >>> spec = IndexSpec.from_yaml("config/studies/happiness_index.yaml")
    >>> res = score_index_study(make_happiness_responses(20, 400, seed=1), spec, n_boot=50)
    >>> 20 <= res.overall["index"] <= 100, len(res.drivers), sorted(res.multi["question"].unique())
    (True, 12, ['M1', 'M2', 'M3', 'M4'])
    """
    n_boot = spec.scoring.bootstrap_replicates if n_boot is None else int(n_boot)
    data = _complete_rows(responses)
    n_dropped = len(responses) - len(data)
    if len(data) == 0:
        raise ValueError("no complete responses to score")
    overall = index_score(data, spec)
    scores = item_section_scores(data, spec)
    for _, row in scores[scores["level"] == "section"].iterrows():
        overall[row["code"]] = row["score"]
    overall["n_respondents"] = len(data)
    overall["n_enterprises"] = int(data["enterprise_id"].nunique()) if "enterprise_id" in data.columns else None
    ents = enterprise_index_scores(data, spec) if "enterprise_id" in data.columns else pd.DataFrame()
    drivers = driver_quadrants(data, spec, n_boot=n_boot, seed=seed) if "enterprise_id" in data.columns \
        else pd.DataFrame()
    multi = pd.concat([multi_shares(data, spec, q) for q in spec.multi_questions if q in data.columns],
                      ignore_index=True) if any(q in data.columns for q in spec.multi_questions) else pd.DataFrame()
    method = {
        "study_kind": "index",
        "study_id": spec.scoring.study_id,
        "index_item": spec.index_item,
        "index": "mean item score of the index item (5-point scale mapped to 20-100)",
        "section": "mean of the section's item scores",
        "interval": "Student t interval of the mean over respondents",
        "confidence": spec.confidence,
        "min_cell_size": spec.min_cell_size,
        "suppression": "breakdown cells and enterprises with n < min_cell_size: scores NaN, suppressed = true",
        "missing_codes": sorted(spec.missing_codes),
        "drivers": "pairwise-complete Pearson correlation with the index item; tau = sqrt(Var(enterprise means) - "
                   "mean(s^2/n)); cut points = means over the driver items; quadrant probabilities from a "
                   "bootstrap over enterprises within industry",
        "driver_items": list(spec.driver_items),
        "n_boot": n_boot,
        "seed": seed,
        "n_rows_input": len(responses),
        "n_dropped_not_complete": n_dropped,
    }
    return IndexResult(spec=spec, overall=overall, scores=scores, enterprises=ents,
                       breakdowns=breakdowns(data, spec), drivers=drivers, multi=multi, method=method)


def _toy_spec() -> IndexSpec:
    """A four-item study for the examples: OVR = H1, H2 (index H1); ENT = H3, H4 (the drivers); 99 missing."""
    return IndexSpec.from_study({
        "scales": {"gender": {"labels": {1: {"zh-CN": "男", "en": "Male"}, 2: {"zh-CN": "女", "en": "Female"}}},
                   "acts": {"labels": {1: {"zh-CN": "涨薪", "en": "Pay"}, 2: {"zh-CN": "编制", "en": "Positions"},
                                       97: {"zh-CN": "其他", "en": "Other"}}}},
        "questions": [{"code": "P2", "type": "single", "scale": "gender"},
                      {"code": "M1", "type": "multi", "scale": "acts"}],
        "indicators": [{"code": "OVR", "weight": 0.5, "items": ["H1", "H2"]},
                       {"code": "ENT", "weight": 0.5, "items": ["H3", "H4"]}],
        "scoring": {"kind": "index", "index_item": "H1", "missing_codes": [99], "outcome": None,
                    "callback_item": None, "breakdowns": ["P2"]},
    })
