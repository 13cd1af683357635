"""Point estimates (docs/domain.md §3 steps 1–6): item recode, respondent, enterprise, industry and overall scores.

All functions take DataFrames and column names from a :class:`~scoring.spec.ScoringSpec`, return new DataFrames
and never modify their input.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .spec import ScoringSpec

__all__ = [
    "enterprise_frame",
    "respondent_block",
    "respondent_columns",
    "respondent_frame",
    "recode_items",
    "respondent_scores",
    "enterprise_scores",
    "industry_scores",
    "overall_scores",
    "group_index",
]

ID_COLS = ["respondent_id", "enterprise_id", "enterprise_name", "industry"]


def _codes_matrix(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    out = np.empty((len(frame), len(cols)), dtype=np.float64, order="F")
    for j, c in enumerate(cols):
        s = frame[c]
        if pd.api.types.is_numeric_dtype(s.dtype):
            out[:, j] = s.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            out[:, j] = pd.to_numeric(s.astype("string").str.strip().replace("", None), errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
    return out


def _recode(codes: np.ndarray, spec: ScoringSpec) -> np.ndarray:
    """Answer codes → item scores via a lookup table; missing codes, empty and unknown codes → NaN.

    Float codes use NaN for empty; integer codes (as validated by ``clean_arrays``) use any negative value."""
    if np.issubdtype(codes.dtype, np.integer):
        top = int(max(max(spec.item_scores), codes.max(initial=0)))
        table = np.full(top + 2, np.nan)  # index = code + 1; index 0 = empty
        for code, score in spec.item_scores.items():
            if code >= 0:
                table[code + 1] = score
        return table[np.maximum(codes, -1).astype(np.intp) + 1]
    top = int(max(max(spec.item_scores), max(spec.missing_codes, default=0))) + 1
    table = np.full(top + 1, np.nan)
    for code, score in spec.item_scores.items():
        if code >= 0:
            table[code] = score
    idx = _code_index(codes, top)
    out = table[idx]
    out[idx != codes] = np.nan  # non-integer or out-of-range codes (NaN != anything, so empty stays NaN)
    return out


def _code_index(codes: np.ndarray, top: int) -> np.ndarray:
    """Codes as table indices in 0…top (NaN, negative, too large → clipped; callers compare with the codes)."""
    idx = np.where(np.isnan(codes), top, codes)
    np.clip(idx, 0, top, out=idx)
    return idx.astype(np.intp)


def recode_items(frame: pd.DataFrame, spec: ScoringSpec, columns: list[str] | None = None) -> pd.DataFrame:
    """Item scores from answer codes (docs/domain.md §3.1).

    .. math:: s = \\text{item\\_scores}[c],\\quad c \\in \\{5,4,3,2,1\\} \\mapsto \\{100,80,60,40,20\\};
              c \\in \\text{missing\\_codes} \\cup \\{\\text{empty}\\} \\mapsto \\text{NaN}

    Parameters
    ----------
    frame : DataFrame
        Wide responses with one column of answer codes per item.
    spec : ScoringSpec
    columns : list of str, optional
        Columns to recode; default the scored items plus the outcome (if present).

    Returns
    -------
    DataFrame
        Same index, one float column per item, 20–100 or NaN.

    Examples
    --------
    >>> from scoring.spec import default_spec
    >>> df = pd.DataFrame({"A1": [5, 4, 3, 2, 1, 8, 9, None]})
    >>> recode_items(df, default_spec(), ["A1"])["A1"].tolist()
    [100.0, 80.0, 60.0, 40.0, 20.0, nan, nan, nan]
    """
    if columns is None:
        columns = list(spec.item_codes) + ([spec.outcome] if spec.outcome and spec.outcome in frame.columns else [])
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"column(s) missing from the responses: {', '.join(missing)}")
    values = _recode(_codes_matrix(frame, columns), spec)
    return pd.DataFrame(values, index=frame.index, columns=columns)


def _indicator_matrix(items: np.ndarray, spec: ScoringSpec) -> np.ndarray:
    """(N × J) item scores → (N × K) indicator scores: weighted mean over answered items, ≥ min answered.

    Column by column with numpy ufuncs (contiguous when ``items`` is Fortran-ordered): no BLAS threads, which
    oversubscribe a shared machine for such skinny products."""
    n = items.shape[0]
    out = np.empty((n, len(spec.indicators)), order="F")
    col = 0
    for k, ind in enumerate(spec.indicators):
        num = np.zeros(n)
        den = np.zeros(n)
        cnt = np.zeros(n)
        for w in ind.item_weights:
            v = items[:, col]
            col += 1
            answered = ~np.isnan(v)
            num += np.where(answered, v, 0.0) * w
            den += answered * w
            cnt += answered
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, k] = np.where(cnt >= spec.min_answered(ind.code), num / den, np.nan)
    return out


def _composite(indicators: np.ndarray, spec: ScoringSpec) -> np.ndarray:
    n = indicators.shape[0]
    num = np.zeros(n)
    den = np.zeros(n)
    for k, ind in enumerate(spec.indicators):
        v = indicators[:, k]
        avail = ~np.isnan(v)
        num += np.where(avail, v, 0.0) * ind.weight
        den += avail * ind.weight
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def respondent_scores(frame: pd.DataFrame, spec: ScoringSpec) -> pd.DataFrame:
    """Per-respondent item, indicator and composite scores (docs/domain.md §3 steps 1–3).

    For indicator :math:`k` with items :math:`j` and weights :math:`w_j`, over the answered items :math:`A`:

    .. math:: S_k = \\frac{\\sum_{j \\in A} w_j s_j}{\\sum_{j \\in A} w_j}
              \\quad\\text{if } |A| \\ge \\lceil \\text{min\\_answered\\_share}\\cdot n_k \\rceil,
              \\text{ else NaN}

    and the composite is the same weighted mean over the available indicators with weights :math:`W_k`.
    The outcome (Q0) is recoded like an item; the callback item becomes 1.0 (yes), 0.0 (no) or NaN.

    Parameters
    ----------
    frame : DataFrame
        Complete interviews in the file contract (validated; see :func:`scoring.contract.validate_responses`).
    spec : ScoringSpec

    Returns
    -------
    DataFrame
        ``respondent_id, enterprise_id, enterprise_name, industry``, item scores, indicator scores,
        ``composite``, the outcome (e.g. ``Q0``, as a score) and ``callback``.

    Examples
    --------
    One respondent answers A1=5, A2=4 and leaves A3/A4 unanswered (8 = n/a): A = (100+80)/2 = 90.
    A second answers only A1 (1 of 4 < 2 needed): A is missing.

    >>> from scoring.spec import ScoringSpec
    >>> spec = ScoringSpec.from_study({"indicators": [
    ...     {"code": "A", "weight": 0.5, "items": ["A1", "A2", "A3", "A4"]},
    ...     {"code": "B", "weight": 0.5, "items": ["B1", "B2", "B3"]}]})
    >>> df = pd.DataFrame({"respondent_id": ["r1", "r2"], "enterprise_id": "e1", "enterprise_name": "甲",
    ...                    "industry": "银行", "A1": [5, 5], "A2": [4, None], "A3": [8, None], "A4": [None, 9],
    ...                    "B1": [3, 4], "B2": [3, 4], "B3": [None, 4]})
    >>> respondent_scores(df, spec)[["A", "B", "composite"]].to_numpy().tolist()
    [[90.0, 60.0, 75.0], [nan, 80.0, 80.0]]
    """
    codes = _codes_matrix(frame, list(spec.item_codes))
    outcome = (_codes_matrix(frame, [spec.outcome])[:, 0]
               if spec.outcome and spec.outcome in frame.columns else None)
    callback = (_codes_matrix(frame, [spec.callback_item])[:, 0]
                if spec.callback_item and spec.callback_item in frame.columns else None)
    block, names = respondent_block(codes, outcome, callback, spec)
    return respondent_frame({c: frame[c].to_numpy() for c in ID_COLS}, block, names, index=frame.index)


def respondent_columns(spec: ScoringSpec) -> list[str]:
    """Score columns of the respondent table, in order: items, indicators, composite, outcome, callback."""
    return [*spec.item_codes, *spec.indicator_codes, "composite", *([spec.outcome] if spec.outcome else []),
            "callback"]


def respondent_block(codes: np.ndarray, outcome: np.ndarray | None, callback: np.ndarray | None,
                     spec: ScoringSpec) -> tuple[np.ndarray, list[str]]:
    """Array core of :func:`respondent_scores`: answer codes (N × J) → one (N × C) float block and its names."""
    names = respondent_columns(spec)
    n, n_items, n_ind = codes.shape[0], len(spec.item_codes), len(spec.indicators)
    block = np.empty((n, len(names)), order="F")  # columns contiguous: column-wise work and no copy into pandas
    for j in range(n_items):
        block[:, j] = _recode(codes[:, j], spec)
    block[:, n_items : n_items + n_ind] = _indicator_matrix(block[:, :n_items], spec)
    block[:, n_items + n_ind] = _composite(block[:, n_items : n_items + n_ind], spec)
    col = n_items + n_ind + 1
    if spec.outcome:
        block[:, col] = _recode(outcome, spec) if outcome is not None else np.nan
        col += 1
    cb = np.full(n, np.nan)
    if callback is not None:
        cb[np.isin(callback, spec.callback_yes)] = 1.0
        cb[np.isin(callback, spec.callback_no)] = 0.0
    block[:, col] = cb
    return block, names


def respondent_frame(ids: dict[str, np.ndarray], block: np.ndarray, names: list[str], index=None) -> pd.DataFrame:
    """Identifier columns + score block as a DataFrame without copying the block."""
    out = pd.DataFrame(block, columns=names, copy=False)
    for i, c in enumerate(ID_COLS):
        out.insert(i, c, ids[c])
    if index is not None:
        out.index = index
    return out


def group_index(keys: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted group codes: ``(codes, uniques)`` with ``uniques`` sorted (so output order never depends on row
    order)."""
    codes, uniques = pd.factorize(pd.Series(keys, copy=False), sort=True)
    return codes.astype(np.intp), np.asarray(uniques, dtype=object)


def _group_sums(codes: np.ndarray, n_groups: int, values: np.ndarray,
                cols: list[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group and column: sum, count of non-NaN and sum of squares (NaN skipped)."""
    cols = list(range(values.shape[1])) if cols is None else cols
    shape = (n_groups, len(cols))
    sums, cnts, sqs = np.empty(shape), np.empty(shape), np.empty(shape)
    starts = None
    if len(codes) and n_groups and (np.diff(codes) >= 0).all():
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        if len(starts) != n_groups:  # some group has no rows
            starts = None
    for j, c in enumerate(cols):
        v = values[:, c]
        present = ~np.isnan(v)
        v0 = np.where(present, v, 0.0)
        if starts is not None:  # rows already grouped: one sequential segment sum
            sums[:, j] = np.add.reduceat(v0, starts)
            cnts[:, j] = np.add.reduceat(present.astype(np.float64), starts)
            sqs[:, j] = np.add.reduceat(v0 * v0, starts)
        else:
            sums[:, j] = np.bincount(codes, weights=v0, minlength=n_groups)
            cnts[:, j] = np.bincount(codes, weights=present, minlength=n_groups)
            sqs[:, j] = np.bincount(codes, weights=v0 * v0, minlength=n_groups)
    return sums, cnts, sqs


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def enterprise_scores(respondents: pd.DataFrame, spec: ScoringSpec) -> pd.DataFrame:
    """Enterprise point estimates: means over the enterprise's complete interviews (docs/domain.md §3.4).

    .. math:: \\bar S_{e,k} = \\frac{1}{n_{e,k}} \\sum_{r \\in e,\\ S_{r,k} \\ne \\text{NaN}} S_{r,k}

    with the base :math:`n_{e,k}` (respondents with a score) reported as ``n_<k>`` beside every score.

    Parameters
    ----------
    respondents : DataFrame
        Output of :func:`respondent_scores`.
    spec : ScoringSpec

    Returns
    -------
    DataFrame
        One row per enterprise (sorted by ``enterprise_id``): ``enterprise_id, enterprise_name, industry, n``,
        indicators, ``composite``, item means, outcome mean, ``callback_rate``, ``callback_n``, bases ``n_<code>`` and
        within-enterprise standard deviations ``sd_<code>`` of indicators and composite.

    Examples
    --------
    Unequal n: enterprise e1 has two respondents with composites 80 and 100, e2 one with 40.

    >>> from scoring.spec import ScoringSpec
    >>> spec = ScoringSpec.from_study({"indicators": [{"code": "A", "weight": 1, "items": ["A1"]}],
    ...                                "scoring": {"outcome": None, "callback_item": None}})
    >>> r = pd.DataFrame({"respondent_id": ["1", "2", "3"], "enterprise_id": ["e1", "e1", "e2"],
    ...                   "enterprise_name": ["甲", "甲", "乙"], "industry": "银行", "A1": [80.0, 100.0, 40.0],
    ...                   "A": [80.0, 100.0, 40.0], "composite": [80.0, 100.0, 40.0], "callback": float("nan")})
    >>> enterprise_scores(r, spec)[["enterprise_id", "n", "composite"]].to_numpy().tolist()
    [['e1', 2, 90.0], ['e2', 1, 40.0]]
    """
    codes, ents = group_index(respondents["enterprise_id"])
    names = [c for c in respondent_columns(spec) if c in respondents.columns]
    block = respondents[names].to_numpy(dtype=np.float64)
    return enterprise_frame(block, names, codes, ents, respondents["enterprise_name"].to_numpy(),
                            respondents["industry"].to_numpy(), spec)


def enterprise_frame(block: np.ndarray, names: list[str], codes: np.ndarray, ents: np.ndarray,
                     ent_names: np.ndarray, industries: np.ndarray, spec: ScoringSpec,
                     stats_out: dict | None = None) -> pd.DataFrame:
    """Array core of :func:`enterprise_scores` (``block`` columns named by ``names``, ``codes`` from
    :func:`group_index`). If ``stats_out`` is a dict it receives ``column -> (count, sum, sum of squares)`` per
    enterprise, for the volatility of the drivers."""
    n_e = len(ents)
    first = np.full(n_e, -1, dtype=np.intp)
    # first row of each enterprise (for name and industry): reversed assignment keeps the first occurrence
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    main = [*spec.indicator_codes, "composite"]
    extra = [*spec.item_codes, *([spec.outcome] if spec.outcome else [])]
    cols = main + extra + ["callback"]
    pos = {c: i for i, c in enumerate(names)}
    sums, cnts, sqs = _group_sums(codes, n_e, block, [pos[c] for c in cols])
    if stats_out is not None:
        for j, c in enumerate(cols):
            stats_out[c] = (cnts[:, j], sums[:, j], sqs[:, j])
    means = _div(sums, cnts)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(cnts > 1, (sqs - cnts * means**2) / np.where(cnts > 1, cnts - 1, 1), np.nan)
    # The one-pass formula cancels: equal scores leave a residue of about 1e-12 of the mean square, whose root
    # (~1e-6) depends on the order of the rows. A variance that small is zero.
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(var <= 1e-12 * sqs / np.maximum(cnts, 1), 0.0, var)
    var = np.maximum(var, 0.0)
    n = np.bincount(codes, minlength=n_e)
    out: dict[str, object] = {"enterprise_id": ents, "enterprise_name": ent_names[first],
                              "industry": industries[first], "n": n}
    for j, c in enumerate(cols[:-1]):
        out[c] = means[:, j]
    out["callback_rate"] = means[:, -1]
    out["callback_n"] = cnts[:, -1].astype(np.int64)
    for j, c in enumerate(cols[:-1]):
        out[f"n_{c}"] = cnts[:, j].astype(np.int64)
    for j, c in enumerate(main):
        out[f"sd_{c}"] = np.sqrt(var[:, j])
    return pd.DataFrame(out)


def _aggregate_columns(spec: ScoringSpec) -> list[str]:
    return [*spec.indicator_codes, "composite", *spec.item_codes, *([spec.outcome] if spec.outcome else [])]


def industry_scores(
    enterprises: pd.DataFrame, spec: ScoringSpec, aggregation: str = "enterprise_mean"
) -> pd.DataFrame:
    """Industry point estimates (docs/domain.md §3.5).

    ``enterprise_mean`` (default) — each enterprise weighs the same:
    :math:`\\bar S_{i,k} = \\frac{1}{m_{i,k}}\\sum_{e \\in i} \\bar S_{e,k}`;
    ``respondent_mean`` — pooled over respondents:
    :math:`\\bar S_{i,k} = \\sum_{e \\in i} n_{e,k}\\bar S_{e,k} / \\sum_{e \\in i} n_{e,k}`.

    Parameters
    ----------
    enterprises : DataFrame
        Output of :func:`enterprise_scores` (needs the ``n_<code>`` bases for respondent weighting).
    spec : ScoringSpec
    aggregation : {"enterprise_mean", "respondent_mean"}

    Returns
    -------
    DataFrame
        ``industry, n_enterprises, n_respondents``, indicators, composite, item means, outcome, ``callback_rate``
        and the respondent bases ``n_<code>`` / ``callback_n`` (sums over the industry's enterprises).

    Examples
    --------
    Two enterprises of one industry: e1 (n=3, composite 90), e2 (n=1, composite 50).

    >>> from scoring.spec import ScoringSpec
    >>> spec = ScoringSpec.from_study({"indicators": [{"code": "A", "weight": 1, "items": ["A1"]}],
    ...                                "scoring": {"outcome": None, "callback_item": None}})
    >>> e = pd.DataFrame({"enterprise_id": ["e1", "e2"], "industry": "银行", "n": [3, 1], "A": [90.0, 50.0],
    ...                   "composite": [90.0, 50.0], "A1": [90.0, 50.0], "n_A": [3, 1], "n_composite": [3, 1],
    ...                   "n_A1": [3, 1], "callback_rate": float("nan"), "callback_n": 0})
    >>> industry_scores(e, spec)["composite"].item()
    70.0
    >>> industry_scores(e, spec, "respondent_mean")["composite"].item()
    80.0
    """
    if aggregation not in ("enterprise_mean", "respondent_mean"):
        raise ValueError(f"industry_aggregation: {aggregation!r} is not enterprise_mean or respondent_mean")
    codes, inds = group_index(enterprises["industry"])
    out = _aggregate(enterprises, spec, aggregation, codes, len(inds))
    out.insert(0, "industry", inds)
    return out


def _aggregate(enterprises: pd.DataFrame, spec: ScoringSpec, aggregation: str, codes: np.ndarray,
               n_groups: int) -> pd.DataFrame:
    cols = _aggregate_columns(spec)
    vals = enterprises[cols].to_numpy(dtype=np.float64)
    cb = enterprises["callback_rate"].to_numpy(dtype=np.float64)[:, None]
    if aggregation == "enterprise_mean":
        sums, cnts, _ = _group_sums(codes, n_groups, np.hstack([vals, cb]))
    else:
        bases = enterprises[[f"n_{c}" for c in cols] + ["callback_n"]].to_numpy(dtype=np.float64)
        allv = np.hstack([vals, cb])
        weighted = np.where(np.isnan(allv), 0.0, allv) * bases
        sums = np.empty((n_groups, allv.shape[1]))
        cnts = np.empty((n_groups, allv.shape[1]))
        for j in range(allv.shape[1]):
            sums[:, j] = np.bincount(codes, weights=weighted[:, j], minlength=n_groups)
            cnts[:, j] = np.bincount(codes, weights=np.where(np.isnan(allv[:, j]), 0.0, bases[:, j]),
                                     minlength=n_groups)
    means = _div(sums, cnts)
    out: dict[str, object] = {
        "n_enterprises": np.bincount(codes, minlength=n_groups).astype(np.int64),
        "n_respondents": np.bincount(codes, weights=enterprises["n"].to_numpy(dtype=np.float64),
                                     minlength=n_groups).astype(np.int64),
    }
    for j, c in enumerate(cols):
        out[c] = means[:, j]
    out["callback_rate"] = means[:, -1]
    for c in [*cols, "callback"]:  # respondent bases beside every score
        base = "callback_n" if c == "callback" else f"n_{c}"
        if base in enterprises.columns:
            out[base] = np.bincount(codes, weights=enterprises[base].to_numpy(dtype=np.float64),
                                    minlength=n_groups).astype(np.int64)
    return pd.DataFrame(out)


def overall_scores(enterprises: pd.DataFrame, spec: ScoringSpec, aggregation: str = "enterprise_mean") -> dict:
    """Overall point estimates: mean over all enterprises (or respondent-weighted), docs/domain.md §3.6.

    Examples
    --------
    >>> from scoring.spec import ScoringSpec
    >>> spec = ScoringSpec.from_study({"indicators": [{"code": "A", "weight": 1, "items": ["A1"]}],
    ...                                "scoring": {"outcome": None, "callback_item": None}})
    >>> e = pd.DataFrame({"enterprise_id": ["e1", "e2"], "industry": ["银行", "保险"], "n": [3, 1],
    ...                   "A": [90.0, 50.0], "composite": [90.0, 50.0], "A1": [90.0, 50.0], "n_A": [3, 1],
    ...                   "n_composite": [3, 1], "n_A1": [3, 1], "callback_rate": float("nan"), "callback_n": 0})
    >>> overall_scores(e, spec)["composite"], overall_scores(e, spec)["n_respondents"]
    (70.0, 4)
    """
    agg = _aggregate(enterprises, spec, aggregation, np.zeros(len(enterprises), dtype=np.intp), 1)
    row = agg.iloc[0]
    out: dict[str, object] = {"n_enterprises": int(row["n_enterprises"]), "n_respondents": int(row["n_respondents"])}
    for c in agg.columns[2:]:
        out[c] = int(row[c]) if c.startswith("n_") or c == "callback_n" else float(row[c])
    return out
