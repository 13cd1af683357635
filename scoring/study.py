"""``score_study``: the whole of docs/domain.md §3 in one call, and the :class:`ScoreResult` it returns."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .contract import clean_arrays
from .drivers import QUADRANTS, driver_table
from .scores import (
    enterprise_frame,
    group_index,
    industry_scores,
    overall_scores,
    respondent_block,
    respondent_frame,
)
from .spec import ScoringSpec
from .uncertainty import (
    cluster_counts,
    empirical_bayes,
    grouped_cluster_means,
    percentile_interval,
    rank_interval,
    ranks_desc,
    respondent_bootstrap,
    tier_test,
)

__all__ = ["ScoreResult", "score_study", "ENTERPRISE_CONTRACT", "INDUSTRY_CONTRACT", "OVERALL_CONTRACT"]

ENTERPRISE_CONTRACT = ["enterprise_id", "enterprise_name", "industry", "n", "A", "B", "C", "D", "E", "F", "composite",
                       "composite_ci_low", "composite_ci_high", "rank", "rank_low", "rank_high", "tier"]
INDUSTRY_CONTRACT = ["industry", "n_enterprises", "n_respondents", "A", "B", "C", "D", "E", "F", "composite",
                     "ci_low", "ci_high", "rank", "rank_low", "rank_high"]
OVERALL_CONTRACT = ["n_enterprises", "n_respondents", "A", "B", "C", "D", "E", "F", "composite", "ci_low", "ci_high"]
TIER_ALPHA = 0.05
TIER_CORRECTION = "fdr_bh"
TIER_CORRECTION_NAME = "Benjamini–Hochberg (false discovery rate 5 %, all enterprises tested together)"


def _json_value(v):
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@dataclass(frozen=True)
class ScoreResult:
    """Everything ``score_study`` computes; DataFrames are unrounded (round only for display)."""

    spec: ScoringSpec
    respondents: pd.DataFrame
    enterprises: pd.DataFrame
    industries: pd.DataFrame
    overall: dict
    drivers: pd.DataFrame
    method: dict = field(default_factory=dict)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write the file contract to ``out_dir`` (created if needed).

        Files: ``enterprise_scores.csv``, ``industry_scores.csv``, ``overall.json``, ``drivers.csv`` (the
        contract) and ``respondent_scores.csv``, ``method.json`` (extras). CSV files are UTF-8, scores unrounded.

        Returns
        -------
        dict
            Name (``enterprise_scores`` …) → path written.

        Examples
        --------
        >>> import tempfile
        >>> from scoring.synthetic import make_synthetic_responses
        >>> from scoring.spec import default_spec
        >>> res = score_study(make_synthetic_responses(6, 2, 60, seed=1), default_spec(), n_boot=0)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     sorted(p.name for p in res.write(d).values())
        ['drivers.csv', 'enterprise_scores.csv', 'industry_scores.csv', 'method.json', 'overall.json', 'respondent_scores.csv']
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "enterprise_scores": out / "enterprise_scores.csv",
            "industry_scores": out / "industry_scores.csv",
            "overall": out / "overall.json",
            "drivers": out / "drivers.csv",
            "respondent_scores": out / "respondent_scores.csv",
            "method": out / "method.json",
        }
        from .cells import safe_frame

        safe_frame(self.enterprises).to_csv(paths["enterprise_scores"], index=False)
        safe_frame(self.industries).to_csv(paths["industry_scores"], index=False)
        safe_frame(self.drivers).to_csv(paths["drivers"], index=False)
        safe_frame(self.respondents).to_csv(paths["respondent_scores"], index=False)
        paths["overall"].write_text(json.dumps(_json_value(self.overall), ensure_ascii=False, indent=2) + "\n",
                                    encoding="utf-8")
        paths["method"].write_text(json.dumps(_json_value(self.method), ensure_ascii=False, indent=2) + "\n",
                                   encoding="utf-8")
        return paths


def score_study(
    responses: pd.DataFrame,
    spec: ScoringSpec,
    *,
    n_boot: int | None = None,
    seed: int = 0,
    industry_aggregation: str | None = None,
) -> ScoreResult:
    """Score a study: respondent, enterprise, industry and overall scores with intervals, ranks, tiers, drivers.

    Steps (docs/domain.md §3): item recode → respondent indicator scores (weighted mean of answered items, at least
    ``min_answered_share`` of them) → respondent composite (weighted mean of available indicators) → enterprise
    means over complete interviews → industry means of enterprises (or respondent-weighted) → overall.

    Uncertainty: enterprise intervals and rank intervals from ``n_boot`` bootstrap replicates over respondents within
    each enterprise; industry and overall intervals from resampling enterprises within industry (the same count
    matrix drives the driver quadrant probabilities). ``tier`` compares each enterprise with the rest of its
    industry (Welch t, Benjamini–Hochberg across all enterprises); ``tier_overall`` with all other enterprises.
    ``composite_eb`` is an empirical-Bayes (shrunken toward the industry mean) score for league tables.

    Parameters
    ----------
    responses : DataFrame
        Wide file-contract frame (see :func:`scoring.contract.read_responses_csv`); non-complete rows are dropped
        and counted in ``method["n_dropped_not_complete"]``.
    spec : ScoringSpec
    n_boot : int, optional
        Bootstrap replicates; default ``spec.bootstrap_replicates``; 0 = point estimates only (intervals NaN).
    seed : int
        Seed of the bootstrap (results are reproducible and independent of row order).
    industry_aggregation : {"enterprise_mean", "respondent_mean"}, optional
        Default ``spec.industry_aggregation``.

    Returns
    -------
    ScoreResult

    Examples
    --------
    >>> from scoring.synthetic import make_synthetic_responses
    >>> from scoring.spec import default_spec
    >>> df = make_synthetic_responses(n_enterprises=12, n_industries=3, n_respondents=240, seed=1)
    >>> res = score_study(df, default_spec(), n_boot=200)
    >>> list(res.enterprises.columns[:17]) == ENTERPRISE_CONTRACT
    True
    >>> bool((res.enterprises["composite_ci_low"] <= res.enterprises["composite"]).all())
    True
    >>> sorted(set(res.enterprises["tier"]) - {"above", "not_different", "below"})
    []
    """
    agg = industry_aggregation or spec.industry_aggregation
    if agg not in ("enterprise_mean", "respondent_mean"):
        raise ValueError(f"industry_aggregation: {agg!r} is not enterprise_mean or respondent_mean")
    n_boot = spec.bootstrap_replicates if n_boot is None else int(n_boot)
    if n_boot < 0:
        raise ValueError("n_boot: must be >= 0")
    conf = spec.confidence
    clean = clean_arrays(responses, spec)
    keep = clean.complete
    n_dropped = int((~keep).sum())

    def kept(a):
        return None if a is None else (a[keep] if n_dropped else a)

    ids = {c: kept(v) for c, v in clean.ids.items()}
    block, names = respondent_block(kept(clean.codes), kept(clean.outcome), kept(clean.callback), spec)
    resp = respondent_frame(ids, block, names)
    ent_codes, ents = clean.groups["enterprise_id"]
    if n_dropped:  # enterprises without a complete interview disappear; codes stay sorted
        present, ent_codes = np.unique(ent_codes[keep], return_inverse=True)
        ents = ents[present]
    n_e = len(ents)
    ent_stats: dict = {}
    ent = enterprise_frame(block, names, ent_codes, ents, ids["enterprise_name"], ids["industry"], spec, ent_stats)
    ind_codes_e, inds = group_index(ent["industry"])
    n_i = len(inds)
    ind = industry_scores(ent, spec, agg)
    overall = overall_scores(ent, spec, agg)
    main = [*spec.indicator_codes, "composite"]
    rng = np.random.default_rng(seed)

    # ---- enterprise intervals and ranks (respondent bootstrap) ----
    # Rows ordered by enterprise, then respondent id: groups are contiguous and the draws do not depend on the
    # row order of the input.
    if n_boot > 0:
        order = np.lexsort((ids["respondent_id"].astype(str), ent_codes))
        pos = {c: i for i, c in enumerate(names)}
        main_vals = block[:, [pos[c] for c in main]][order]
        ent_reps = respondent_bootstrap(main_vals, ent_codes[order], n_e, n_boot, rng)
    else:
        ent_reps = np.empty((0, n_e, len(main)))
    lo, hi = percentile_interval(ent_reps, conf)
    comp_j = len(main) - 1
    ent["composite_ci_low"], ent["composite_ci_high"] = lo[:, comp_j], hi[:, comp_j]
    comp = ent["composite"].to_numpy(dtype=np.float64)
    ent["rank"] = ranks_desc(comp)
    ent_rank_in_ind = np.zeros(n_e, dtype=np.int64)
    for i in range(n_i):
        idx = np.flatnonzero(ind_codes_e == i)
        ent_rank_in_ind[idx] = ranks_desc(comp[idx])
    if n_boot > 0:
        rk = ranks_desc(ent_reps[:, :, comp_j])
        ent["rank_low"], ent["rank_high"] = rank_interval(rk, conf)
        rk_low_i = np.zeros(n_e, dtype=np.int64)
        rk_high_i = np.zeros(n_e, dtype=np.int64)
        for i in range(n_i):
            idx = np.flatnonzero(ind_codes_e == i)
            rl, rh = rank_interval(ranks_desc(ent_reps[:, idx, comp_j]), conf)
            rk_low_i[idx], rk_high_i[idx] = rl, rh
    else:
        ent["rank_low"] = pd.array([pd.NA] * n_e, dtype="Int64")
        ent["rank_high"] = pd.array([pd.NA] * n_e, dtype="Int64")
        rk_low_i = rk_high_i = pd.array([pd.NA] * n_e, dtype="Int64")

    weight_col = "n_composite" if agg == "respondent_mean" else None
    t_ind = tier_test(ent, value="composite", sd="sd_composite", n="n_composite", group="industry",
                      weight=weight_col, alpha=TIER_ALPHA, correction=TIER_CORRECTION)
    t_all = tier_test(ent, value="composite", sd="sd_composite", n="n_composite", group=None,
                      weight=weight_col, alpha=TIER_ALPHA, correction=TIER_CORRECTION)
    ent["tier"] = t_ind["tier"].to_numpy()
    for j, c in enumerate(spec.indicator_codes):
        ent[f"{c}_ci_low"], ent[f"{c}_ci_high"] = lo[:, j], hi[:, j]
    ent["rank_in_industry"] = ent_rank_in_ind
    ent["rank_in_industry_low"], ent["rank_in_industry_high"] = rk_low_i, rk_high_i
    ent["tier_industry"] = t_ind["tier"].to_numpy()
    ent["tier_industry_p"] = t_ind["p"].to_numpy()
    ent["tier_industry_p_adj"] = t_ind["p_adj"].to_numpy()
    ent["tier_overall"] = t_all["tier"].to_numpy()
    ent["tier_overall_p"] = t_all["p"].to_numpy()
    ent["tier_overall_p_adj"] = t_all["p_adj"].to_numpy()
    eb = empirical_bayes(ent, value="composite", sd="sd_composite", n="n_composite", group="industry")
    ent["composite_eb"] = eb["eb"].to_numpy()
    ent["composite_eb_shrinkage"] = eb["shrinkage"].to_numpy()
    ent["rank_eb"] = ranks_desc(ent["composite_eb"].to_numpy(dtype=np.float64))

    # ---- industry and overall intervals (enterprises resampled within industry) ----
    w = cluster_counts(ind_codes_e, n_boot, rng)
    y = ent[main].to_numpy(dtype=np.float64)
    base = ent[[f"n_{c}" for c in main]].to_numpy(dtype=np.float64) if agg == "respondent_mean" else None
    ind_reps = grouped_cluster_means(w, y, ind_codes_e, n_i, base)
    m_i = np.bincount(ind_codes_e, minlength=n_i)
    single = np.flatnonzero(m_i == 1)
    for i in single:  # one enterprise: its respondent bootstrap is the only honest spread
        e_idx = int(np.flatnonzero(ind_codes_e == i)[0])
        ind_reps[:, i, :] = ent_reps[:, e_idx, :]
    all_reps = grouped_cluster_means(w, y, np.zeros(n_e, dtype=np.intp), 1, base)[:, 0, :]
    ilo, ihi = percentile_interval(ind_reps, conf)
    ind["ci_low"], ind["ci_high"] = ilo[:, comp_j], ihi[:, comp_j]
    ind["rank"] = ranks_desc(ind["composite"].to_numpy(dtype=np.float64))
    if n_boot > 0:
        ind["rank_low"], ind["rank_high"] = rank_interval(ranks_desc(ind_reps[:, :, comp_j]), conf)
    else:
        ind["rank_low"] = pd.array([pd.NA] * n_i, dtype="Int64")
        ind["rank_high"] = pd.array([pd.NA] * n_i, dtype="Int64")
    for j, c in enumerate(spec.indicator_codes):
        ind[f"{c}_ci_low"], ind[f"{c}_ci_high"] = ilo[:, j], ihi[:, j]
    olo, ohi = percentile_interval(all_reps, conf)
    overall["ci_low"], overall["ci_high"] = float(olo[comp_j]), float(ohi[comp_j])
    for j, c in enumerate(spec.indicator_codes):
        overall[f"{c}_ci_low"], overall[f"{c}_ci_high"] = float(olo[j]), float(ohi[j])

    # ---- drivers ----
    outcome = spec.outcome if spec.outcome and resp[spec.outcome].notna().sum() >= 3 else "composite"
    drivers = driver_table(resp, {"indicator": list(spec.indicator_codes), "item": list(spec.item_codes)}, outcome,
                           cluster_weights=w if n_boot > 0 else None, enterprise_codes=ent_codes,
                           enterprise_stats=ent_stats)
    parent = spec.item_parent
    names_zh = {**spec.indicator_names_zh, **spec.item_names_zh}
    names_en = {**spec.indicator_names_en, **spec.item_names_en}
    drivers.insert(2, "name_zh", drivers["code"].map(names_zh))
    drivers.insert(3, "name_en", drivers["code"].map(names_en))
    drivers.insert(4, "parent", drivers["code"].map(parent))
    drivers["outcome"] = outcome
    dcols = ["level", "code", "name_zh", "name_en", "parent", "correlation", "relative_weight", "tau",
             "importance_high", "volatility_high", "quadrant", *[f"p_{q}" for q in QUADRANTS.values()]]
    drivers = drivers[dcols + [c for c in drivers.columns if c not in dcols]]

    # ---- column order: contract first, then extras ----
    item_cols = [*spec.item_codes, *([spec.outcome] if spec.outcome else [])]
    ent_extra = [
        *[f"{c}_{s}" for c in spec.indicator_codes for s in ("ci_low", "ci_high")],
        *[f"n_{c}" for c in [*main, *item_cols]], *item_cols,
        "rank_in_industry", "rank_in_industry_low", "rank_in_industry_high",
        "tier_industry", "tier_industry_p", "tier_industry_p_adj",
        "tier_overall", "tier_overall_p", "tier_overall_p_adj",
        "composite_eb", "composite_eb_shrinkage", "rank_eb", "callback_rate", "callback_n",
        *[f"sd_{c}" for c in main],
    ]
    ent = ent[_contract_first(ENTERPRISE_CONTRACT, spec, ent_extra)]
    ind_extra = [*item_cols, *[f"{c}_{s}" for c in spec.indicator_codes for s in ("ci_low", "ci_high")],
                 *[f"n_{c}" for c in [*main, *item_cols]], "callback_rate", "callback_n"]
    ind = ind[_contract_first(INDUSTRY_CONTRACT, spec, ind_extra)]
    cb_rate = overall.pop("callback_rate", float("nan"))
    overall = {k: overall[k] for k in _contract_first(OVERALL_CONTRACT, spec, [])} | {
        k: v for k, v in overall.items() if k not in OVERALL_CONTRACT} | {"callback_rate": cb_rate}
    overall["industry_aggregation"] = agg

    method = {
        "study_id": spec.study_id,
        "n_boot": n_boot,
        "seed": seed,
        "confidence": conf,
        "industry_aggregation": agg,
        "interval": "percentile bootstrap",
        "enterprise_interval": "bootstrap over respondents within enterprise",
        "industry_interval": "bootstrap over enterprises within industry (one-enterprise industries: that "
                             "enterprise's respondent bootstrap)",
        "overall_interval": "bootstrap over enterprises, stratified by industry",
        "rank": "1 = highest composite; rank_low/rank_high = percentile interval of bootstrap ranks",
        "tier_test": "Welch t-test of the enterprise composite against the mean of the other enterprises of its "
                     "industry (tier_overall: of all other enterprises)",
        "tier_alpha": TIER_ALPHA,
        "multiple_comparison_correction": TIER_CORRECTION_NAME,
        "tier_correction_method": TIER_CORRECTION,
        "empirical_bayes": "composite_eb: shrunken toward the industry mean, B = tau²/(tau² + s_pooled²/n), "
                           "tau² by method of moments pooled over industries; for league tables only",
        "outcome": outcome,
        "drivers": "pairwise-complete Pearson correlations; Johnson relative weights per level; "
                   "tau = sqrt(Var(enterprise means) - mean(s²/n)); cut points = level means; quadrant "
                   "probabilities from the enterprise bootstrap",
        "n_rows_input": len(responses),
        "n_dropped_not_complete": n_dropped,
        "n_respondents": len(resp),
        "n_enterprises": n_e,
        "n_industries": n_i,
        "n_single_enterprise_industries": len(single),
        "item_scores": {str(k): v for k, v in spec.item_scores.items()},
        "missing_codes": list(spec.missing_codes),
        "min_answered_share": spec.min_answered_share,
        "indicator_weights": spec.indicator_weights,
    }
    return ScoreResult(spec=spec, respondents=resp, enterprises=ent, industries=ind, overall=overall,
                       drivers=drivers, method=method)


def _contract_first(contract: list[str], spec: ScoringSpec, extras: list[str]) -> list[str]:
    """Contract columns with the letters A…F replaced by the study's indicator codes, then the extras."""
    default = ["A", "B", "C", "D", "E", "F"]
    cols: list[str] = []
    for c in contract:
        if c == "A":
            cols += list(spec.indicator_codes)
        elif c in default:
            continue
        else:
            cols.append(c)
    return cols + [c for c in extras if c not in cols]
