"""Uncertainty (docs/domain.md §3.7): vectorised bootstraps, rank intervals, tier tests, empirical-Bayes scores.

* Enterprises: bootstrap over respondents within the enterprise.
* Industries and overall: bootstrap over enterprises within industry (respondents cluster within enterprises,
  ICC ≈ 0.1, so resampling respondents would understate the uncertainty). An industry with a single enterprise
  falls back to that enterprise's respondent bootstrap (resampling one cluster has no spread).
* Bootstraps never loop over pandas: per chunk of replicates, respondent draws become a count matrix that one
  sparse product with the (respondent × enterprise·measure) table turns into replicate sums; cluster resampling is
  a count matrix times the enterprise-level table.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import sparse, stats

__all__ = [
    "respondent_bootstrap",
    "cluster_counts",
    "grouped_cluster_means",
    "percentile_interval",
    "ranks_desc",
    "rank_interval",
    "tier_test",
    "empirical_bayes",
]

TIERS = ("above", "not_different", "below")


def respondent_bootstrap(values: np.ndarray, groups: np.ndarray, n_groups: int, n_boot: int,
                         rng: np.random.Generator, *, max_chunk_bytes: int = 64_000_000) -> np.ndarray:
    """Bootstrap the per-group means of several columns, resampling rows within each group.

    Parameters
    ----------
    values : ndarray (N, K)
        Row values, NaN = missing (skipped in the mean, as in the point estimate).
    groups : ndarray (N,)
        Group code of each row in ``0 … n_groups-1``; rows must be sorted by group (contiguous groups) and every
        group non-empty.
    n_groups, n_boot : int
    rng : numpy Generator

    Returns
    -------
    ndarray (n_boot, n_groups, K)
        Replicate means (NaN where a replicate drew no non-missing value).

    Examples
    --------
    A group whose rows are all equal has no spread:

    >>> reps = respondent_bootstrap(np.array([[5.0], [5.0], [1.0], [3.0]]), np.array([0, 0, 1, 1]), 2, 200,
    ...                             np.random.default_rng(0))
    >>> bool((reps[:, 0, 0] == 5).all()), sorted(set(reps[:, 1, 0].tolist()))
    (True, [1.0, 2.0, 3.0])
    """
    n, k = values.shape
    sizes = np.bincount(groups, minlength=n_groups)
    if (sizes == 0).any():
        raise ValueError("respondent_bootstrap: every group needs at least one row")
    if n > 1 and (np.diff(groups) < 0).any():
        raise ValueError("respondent_bootstrap: rows must be sorted by group")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    present = ~np.isnan(values)
    # Sparse (group·column) table: row i contributes its value to column (g, k) and its presence to (g, K + k),
    # so count matrix × table = per-group sums and bases of every replicate in one sparse product.
    rows = np.repeat(np.arange(n), k)
    base_cols = (groups[:, None] * (2 * k) + np.arange(k)[None, :]).ravel()
    table_t = sparse.csr_matrix(
        (np.r_[np.where(present, values, 0.0).ravel(), present.ravel().astype(np.float64)],
         (np.r_[rows, rows], np.r_[base_cols, base_cols + k])),
        shape=(n, n_groups * 2 * k),
    ).T.tocsr()
    row_start = starts[groups].astype(np.float64)
    row_size = sizes[groups].astype(np.float64)
    out = np.empty((n_boot, n_groups, k))
    chunk = max(1, min(n_boot, int(max_chunk_bytes // max(1, n * 8 * 3))))
    for b0 in range(0, n_boot, chunk):
        bc = min(chunk, n_boot - b0)
        pos = (row_start + np.floor(rng.random((bc, n)) * row_size)).astype(np.intp)
        counts = np.bincount((np.arange(bc)[:, None] * n + pos).ravel(), minlength=bc * n).reshape(bc, n)
        sums = (table_t @ counts.T.astype(np.float64)).T.reshape(bc, n_groups, 2 * k)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[b0 : b0 + bc] = np.where(sums[..., k:] > 0, sums[..., :k] / sums[..., k:], np.nan)
    return out


def cluster_counts(strata: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Count matrix of a stratified cluster bootstrap: ``W[b, e]`` = times cluster ``e`` is drawn in replicate ``b``
    when each stratum's ``m`` clusters are resampled ``m`` times with replacement.

    Examples
    --------
    >>> w = cluster_counts(np.array([0, 0, 0, 1]), 5, np.random.default_rng(1))
    >>> w.shape, w[:, :3].sum(axis=1).tolist(), w[:, 3].tolist()
    ((5, 4), [3.0, 3.0, 3.0, 3.0, 3.0], [1.0, 1.0, 1.0, 1.0, 1.0])
    """
    n_e = len(strata)
    w = np.zeros((n_boot, n_e), dtype=np.float64)
    if n_boot == 0 or n_e == 0:
        return w
    order = np.argsort(strata, kind="stable")
    s_sorted = strata[order]
    _, starts, sizes = np.unique(s_sorted, return_index=True, return_counts=True)
    row_start = np.repeat(starts, sizes).astype(np.float64)
    row_size = np.repeat(sizes, sizes).astype(np.float64)
    draws = order[(row_start + np.floor(rng.random((n_boot, n_e)) * row_size)).astype(np.intp)]
    flat = (np.arange(n_boot)[:, None] * n_e + draws).ravel()
    w += np.bincount(flat, minlength=n_boot * n_e).reshape(n_boot, n_e)
    return w


def grouped_cluster_means(weights: np.ndarray, values: np.ndarray, groups: np.ndarray, n_groups: int,
                          base: np.ndarray | None = None) -> np.ndarray:
    """Replicate group means from a cluster count matrix.

    .. math:: \\hat\\theta_{b,g,k} = \\frac{\\sum_{e \\in g} W_{be}\\, a_{ek}\\, y_{ek}}{\\sum_{e \\in g} W_{be}\\, a_{ek}}

    with :math:`a_{ek}` = 1 (each enterprise weighs the same) or the base :math:`n_{ek}` (respondent-weighted),
    and :math:`a_{ek} = 0` where :math:`y_{ek}` is missing.

    Parameters
    ----------
    weights : ndarray (B, E)
    values : ndarray (E, K)
    groups : ndarray (E,) group codes
    n_groups : int
    base : ndarray (E, K), optional

    Returns
    -------
    ndarray (B, n_groups, K)

    Examples
    --------
    >>> w = np.array([[1.0, 1.0], [2.0, 0.0]])
    >>> grouped_cluster_means(w, np.array([[80.0], [60.0]]), np.array([0, 0]), 1)[:, 0, 0].tolist()
    [70.0, 80.0]
    """
    e, k = values.shape
    if weights.shape[0] == 0:
        return np.empty((0, n_groups, k))
    present = ~np.isnan(values)
    a = present.astype(np.float64) if base is None else np.where(present, base, 0.0)
    num_t = np.zeros((e, n_groups * k))
    den_t = np.zeros((e, n_groups * k))
    cols = groups[:, None] * k + np.arange(k)[None, :]
    rows = np.repeat(np.arange(e)[:, None], k, axis=1)
    num_t[rows, cols] = a * np.where(present, values, 0.0)
    den_t[rows, cols] = a
    num = weights @ num_t
    den = weights @ den_t
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out.reshape(weights.shape[0], n_groups, k)


def percentile_interval(replicates: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval over axis 0 (NaN replicates skipped).

    Examples
    --------
    >>> lo, hi = percentile_interval(np.arange(1.0, 102.0)[:, None], 0.9)
    >>> round(float(lo[0]), 9), round(float(hi[0]), 9)
    (6.0, 96.0)
    """
    alpha = 1.0 - confidence
    if replicates.shape[0] == 0:
        shape = replicates.shape[1:]
        return np.full(shape, np.nan), np.full(shape, np.nan)
    probs = [alpha / 2, 1 - alpha / 2]
    q = np.quantile(replicates, probs, axis=0)  # vectorised; slices with NaN are redone below
    has_nan = np.isnan(replicates).any(axis=0)
    if has_nan.any():
        with warnings.catch_warnings():  # all-NaN slices (e.g. an indicator nobody answered) give NaN quietly
            warnings.simplefilter("ignore", RuntimeWarning)
            q[:, has_nan] = np.nanquantile(replicates[:, has_nan], probs, axis=0)
    return q[0], q[1]


def ranks_desc(values: np.ndarray) -> np.ndarray:
    """Ranks along the last axis, 1 = highest, ties share the best rank, NaN ranked last.

    Examples
    --------
    >>> ranks_desc(np.array([70.0, 90.0, 70.0, np.nan])).tolist()
    [2, 1, 2, 4]
    """
    # Scores equal in exact arithmetic can differ in the last bits with the order their sums were taken in:
    # compared at 1e-9 points they tie, whatever the order of the respondents.
    v = np.where(np.isnan(values), -np.inf, np.round(values, 9))
    return stats.rankdata(-v, method="min", axis=-1).astype(np.int64)


def rank_interval(rank_reps: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of bootstrap ranks over axis 0, widened to whole ranks (floor / ceil).

    Examples
    --------
    >>> lo, hi = rank_interval(np.array([[1], [2], [2], [3]] * 10), 0.95)
    >>> int(lo[0]), int(hi[0])
    (1, 3)
    """
    alpha = 1.0 - confidence
    q = np.quantile(rank_reps, [alpha / 2, 1 - alpha / 2], axis=0)
    return np.floor(q[0]).astype(np.int64), np.ceil(q[1]).astype(np.int64)


def tier_test(frame: pd.DataFrame, *, value: str, sd: str, n: str, group: str | None = None,
              weight: str | None = None, alpha: float = 0.05, correction: str = "fdr_bh") -> pd.DataFrame:
    """Is each unit significantly above / not different from / below the mean of the others in its group?

    For unit :math:`e` in group :math:`g` with mean :math:`\\bar y_e`, SD :math:`s_e` and base :math:`n_e`, the
    benchmark is the (weighted) mean of the *other* units of the group, :math:`\\bar y_{-e} = \\sum_{k \\ne e}
    \\omega_k \\bar y_k`, so the test is of the enterprise against the rest of its industry (equivalent to testing
    it against the industry mean that includes it). Welch's t:

    .. math:: t = \\frac{\\bar y_e - \\bar y_{-e}}{\\sqrt{s_e^2/n_e + \\sum_{k \\ne e} \\omega_k^2 s_k^2/n_k}}

    with Welch–Satterthwaite degrees of freedom; the p-values of all units are corrected together for multiple
    comparisons (``fdr_bh`` = Benjamini–Hochberg false discovery rate, or ``holm``) at ``alpha``.
    A unit alone in its group, or with fewer than 2 respondents, is ``not_different`` (p = NaN).

    Parameters
    ----------
    frame : DataFrame
    value, sd, n : str
        Columns with the unit mean, within-unit SD and base.
    group : str, optional
        Group column (industry); None = one group (all units).
    weight : str, optional
        Column of benchmark weights (e.g. the base, for respondent-weighted means); default equal weights.
    alpha : float
    correction : {"fdr_bh", "holm", "bonferroni", "none"}

    Returns
    -------
    DataFrame
        Same index: ``diff, se, df, p, p_adj, tier`` with tier in ``above / not_different / below``.

    Examples
    --------
    >>> f = pd.DataFrame({"m": [90.0, 70.0, 71.0, 69.0, 70.0, 70.0, 71.0, 69.0], "sd": 10.0, "n": 20})
    >>> tier_test(f, value="m", sd="sd", n="n")["tier"].tolist()
    ['above', 'not_different', 'not_different', 'not_different', 'not_different', 'not_different', 'not_different', 'not_different']
    """
    from statsmodels.stats.multitest import multipletests

    y = frame[value].to_numpy(dtype=np.float64)
    s = frame[sd].to_numpy(dtype=np.float64)
    nn = frame[n].to_numpy(dtype=np.float64)
    om = np.ones_like(y) if weight is None else frame[weight].to_numpy(dtype=np.float64)
    g = np.zeros(len(y), dtype=np.intp) if group is None else pd.factorize(frame[group])[0].astype(np.intp)
    ng = int(g.max()) + 1 if len(g) else 0
    ok = ~np.isnan(y) & (nn >= 1)
    v = np.where(nn >= 2, s**2 / np.maximum(nn, 1), np.nan)
    okv = ok & ~np.isnan(v)
    om = np.where(ok, om, 0.0)
    om_v = np.where(okv, om, 0.0)
    tot_w = np.bincount(g, weights=om, minlength=ng)
    tot_wy = np.bincount(g, weights=om * np.where(ok, y, 0.0), minlength=ng)
    tot_w2v = np.bincount(g, weights=om_v**2 * np.where(okv, v, 0.0), minlength=ng)
    tot_w_v = np.bincount(g, weights=om_v, minlength=ng)
    with np.errstate(invalid="ignore", divide="ignore"):
        w_rest = tot_w[g] - om
        bench = (tot_wy[g] - om * np.where(ok, y, 0.0)) / w_rest
        w_rest_v = tot_w_v[g] - om_v
        var_bench = (tot_w2v[g] - om_v**2 * np.where(okv, v, 0.0)) / w_rest_v**2
        # Welch–Satterthwaite: per-term (omega^2 v)^2/(n-1), summed over the others
        term = np.where(okv, (om_v**2 * np.where(okv, v, 0.0)) ** 2 / np.maximum(nn - 1, 1), 0.0)
        tot_term = np.bincount(g, weights=term, minlength=ng)
        rest_term = (tot_term[g] - term) / w_rest_v**4
        diff = y - bench
        var = v + var_bench
        se = np.sqrt(var)
        df = var**2 / (v**2 / np.maximum(nn - 1, 1) + rest_term)
        t = np.abs(diff) / se
        p = 2 * stats.t.sf(t, df)
    testable = okv & (w_rest_v > 0) & np.isfinite(diff)
    zero_se = testable & (se == 0)
    p = np.where(zero_se, np.where(diff == 0, 1.0, 0.0), p)
    p = np.where(testable, p, np.nan)
    p_adj = np.full_like(p, np.nan)
    reject = np.zeros(len(p), dtype=bool)
    idx = np.flatnonzero(~np.isnan(p))
    if len(idx):
        if correction == "none":
            p_adj[idx] = p[idx]
            reject[idx] = p[idx] < alpha
        else:
            rej, padj, _, _ = multipletests(p[idx], alpha=alpha, method=correction)
            p_adj[idx] = padj
            reject[idx] = rej
    tier = np.where(reject & (diff > 0), "above", np.where(reject & (diff < 0), "below", "not_different"))
    return pd.DataFrame({"diff": diff, "se": se, "df": df, "p": p, "p_adj": p_adj, "tier": tier},
                        index=frame.index)


def empirical_bayes(frame: pd.DataFrame, *, value: str, sd: str, n: str, group: str) -> pd.DataFrame:
    """Empirical-Bayes (shrunken) unit means toward their group mean, for league tables.

    .. math:: \\tilde y_e = \\bar y_g + B_e(\\bar y_e - \\bar y_g),\\quad B_e = \\frac{\\hat\\tau^2}{\\hat\\tau^2 +
              s_p^2/n_e},\\quad \\hat\\tau^2 = \\max\\Big(0, \\frac{\\sum_e (\\bar y_e - \\bar y_{g(e)})^2}{E - G}
              - \\overline{s_p^2/n_e}\\Big)

    where :math:`s_p^2` is the pooled within-unit variance and :math:`\\bar y_g` the unweighted group mean
    (method-of-moments estimate of the between-unit variance :math:`\\tau^2`, pooled over groups).

    Returns
    -------
    DataFrame
        ``eb`` (the shrunken mean), ``shrinkage`` (:math:`B_e`) and the common ``tau2``.

    Examples
    --------
    With no between-unit spread beyond noise every unit shrinks fully to its group mean:

    >>> f = pd.DataFrame({"m": [80.0, 82.0], "sd": 20.0, "n": 20, "g": "x"})
    >>> empirical_bayes(f, value="m", sd="sd", n="n", group="g")["eb"].tolist()
    [81.0, 81.0]
    """
    y = frame[value].to_numpy(dtype=np.float64)
    s = frame[sd].to_numpy(dtype=np.float64)
    nn = frame[n].to_numpy(dtype=np.float64)
    g = pd.factorize(frame[group])[0].astype(np.intp)
    ng = int(g.max()) + 1 if len(g) else 0
    ok = ~np.isnan(y)
    cnt = np.bincount(g, weights=ok.astype(float), minlength=ng)
    with np.errstate(invalid="ignore", divide="ignore"):
        gm = np.bincount(g, weights=np.where(ok, y, 0.0), minlength=ng) / cnt
    okv = ok & (nn >= 2) & ~np.isnan(s)
    sp2 = np.sum(np.where(okv, (nn - 1) * s**2, 0.0)) / max(np.sum(np.where(okv, nn - 1, 0.0)), 1.0)
    noise = sp2 / np.maximum(nn, 1)
    dof = ok.sum() - np.count_nonzero(cnt)
    if dof > 0:
        between = np.sum(np.where(ok, (y - gm[g]) ** 2, 0.0)) / dof
        tau2 = max(0.0, between - float(np.mean(noise[ok])))
    else:
        tau2 = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        shrink = np.where(tau2 + noise > 0, tau2 / (tau2 + noise), 1.0)
    eb = gm[g] + shrink * (y - gm[g])
    return pd.DataFrame({"eb": eb, "shrinkage": shrink, "tau2": tau2}, index=frame.index)
