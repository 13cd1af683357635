"""Helpers shared by the industry and enterprise reports (reading a ScoreResult, method text)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from reports.i18n import t

__all__ = ["method_value", "overall_intervals", "tier_counts", "rank_width_summary", "finite"]


def finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def method_value(method: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    """First present key among ``names`` in scoring's method dict (its key names are not all fixed)."""
    for name in names:
        if name in method and method[name] is not None:
            return method[name]
    for name in names:
        for key, value in method.items():
            if name in str(key) and value is not None:
                return value
    return default


def overall_intervals(result: Any) -> tuple[pd.DataFrame, bool]:
    """Overall score and 95 % interval of the composite and of each first-level indicator.

    The composite interval comes from scoring (``overall['ci_low'/'ci_high']``). Scoring's overall dict may not
    carry intervals for A…F; then they are computed here the same way scoring computes the overall one: a
    percentile bootstrap over enterprises (enterprises are the clusters), with scoring's replicate count and seed.

    Returns
    -------
    (DataFrame, bool)
        Rows ``composite`` and the indicator codes with columns ``score, ci_low, ci_high``; the flag says whether
        any interval was computed here (the method section says so).
    """
    spec, overall, ent = result.spec, result.overall, result.enterprises
    method = getattr(result, "method", {}) or {}
    codes = ["composite", *spec.indicator_codes]
    rows, computed = [], False
    n_boot = int(method_value(method, "n_boot", default=1000))
    seed = method_value(method, "seed", default=0)
    conf = float(method_value(method, "confidence", default=0.95) or 0.95)
    rng = np.random.default_rng(None if seed is None else int(seed))
    idx = None
    for code in codes:
        score = float(overall.get(code, np.nan))
        lo_key, hi_key = ("ci_low", "ci_high") if code == "composite" else (f"{code}_ci_low", f"{code}_ci_high")
        lo, hi = overall.get(lo_key), overall.get(hi_key)
        if not (finite(lo) and finite(hi)) and code in ent.columns and len(ent) > 1 and n_boot > 0:
            values = ent[code].to_numpy(dtype=float)
            if idx is None:
                idx = rng.integers(0, len(ent), size=(min(n_boot, 2000), len(ent)))
            boots = np.nanmean(values[idx], axis=1)
            a = (1 - conf) / 2
            lo, hi = float(np.nanquantile(boots, a)), float(np.nanquantile(boots, 1 - a))
            computed = True
        rows.append({"code": code, "score": score, "ci_low": float(lo) if finite(lo) else np.nan,
                     "ci_high": float(hi) if finite(hi) else np.nan})
    return pd.DataFrame(rows).set_index("code"), computed


def tier_counts(enterprises: pd.DataFrame) -> pd.DataFrame:
    """Per industry, how many enterprises are above / not different from / below their industry mean."""
    if "tier" not in enterprises.columns:
        return pd.DataFrame(columns=["above", "not_different", "below"])
    tab = pd.crosstab(enterprises["industry"], enterprises["tier"])
    for col in ("above", "not_different", "below"):
        if col not in tab.columns:
            tab[col] = 0
    return tab[["above", "not_different", "below"]]


def rank_width_summary(frame: pd.DataFrame, low: str, high: str) -> dict[str, float]:
    """Median and max width (places) of rank intervals; width = high - low + 1."""
    if low not in frame.columns or high not in frame.columns or frame.empty:
        return {"median": float("nan"), "max": float("nan"), "n": 0}
    width = frame[high].astype(float) - frame[low].astype(float) + 1
    if not width.notna().any():
        return {"median": float("nan"), "max": float("nan"), "n": int(len(frame))}
    return {"median": float(np.nanmedian(width)), "max": float(np.nanmax(width)), "n": int(len(frame))}


_SYMBOLS = ("I", "P", "R", "NC", "O", "UH", "UR", "UO", "NE")


def pooled_rates(rates: pd.DataFrame) -> pd.Series:
    """Study-wide rates from ``scoring.response_rates`` output: the row itself when there is one, else the
    group counts pooled and the rates recomputed by scoring (rates of groups cannot be averaged)."""
    if len(rates) == 1 or not set(_SYMBOLS) <= set(rates.columns):
        return rates.iloc[0]
    from scoring import response_rates

    counts = rates[list(_SYMBOLS)].sum().astype(int)
    frame = pd.DataFrame({"disposition": np.repeat(list(_SYMBOLS), counts.to_numpy())})
    return response_rates(frame).iloc[0]


def rates_summary(rates: pd.DataFrame | None, lang: str) -> str | None:
    """One sentence with the study-wide RR1, RR3, COOP1, REF1, CON1 and e (pooled when ``rates`` is grouped)."""
    if rates is None or len(rates) == 0:
        return None
    row = pooled_rates(rates)

    def g(name: str) -> str:
        v = row.get(name)
        return f"{100 * float(v):.1f}%" if finite(v) else "—"

    e = row.get("e")
    e_s = f"{float(e):.3f}" if finite(e) else "—"
    return t("rates_sentence", lang, rr1=g("RR1"), rr3=g("RR3"), e=e_s, coop1=g("COOP1"), ref1=g("REF1"),
             con1=g("CON1"))


def label(key: str, lang: str) -> str:
    return t(key, lang)
