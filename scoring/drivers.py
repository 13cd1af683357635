"""Driver analysis (docs/domain.md §3, from the happiness-index seeds): importance × volatility quadrants.

Importance of each indicator (and item) for the outcome (Q0 overall satisfaction; the composite if the study has
no outcome) is its Pearson correlation and, better, its Johnson relative weight, which splits R² of the linear
regression among correlated predictors. Volatility is the noise-corrected between-enterprise spread
τ = √(Var(enterprise means) − mean(s²/n)). Correlations use pairwise-complete respondents (the D block is not asked
of ~40 %; listwise deletion would drop them from every other indicator). A level's cut points are the mean
importance and the mean τ of that level; the bootstrap (enterprises resampled within industry, as for industry
scores) gives the probability of each quadrant, since membership near a cut point is fragile.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = [
    "QUADRANTS",
    "relative_weights",
    "johnson_relative_weights",
    "noise_corrected_tau",
    "quadrant",
    "driver_table",
]

# (importance_high, volatility_high) -> quadrant
QUADRANTS = {
    (True, True): "重点关注领域",
    (True, False): "必备条件",
    (False, True): "卓越企业需关注",
    (False, False): "行业基本达标",
}
QUADRANT_EN = {
    "重点关注领域": "key focus area (high importance, high volatility)",
    "必备条件": "prerequisite (high importance, low volatility)",
    "卓越企业需关注": "differentiator for leaders (low importance, high volatility)",
    "行业基本达标": "industry baseline (low importance, low volatility)",
}


def _nearest_correlation(r: np.ndarray) -> np.ndarray:
    """Clip negative eigenvalues (pairwise-complete matrices need not be positive definite) and rescale to a unit
    diagonal."""
    vals, vecs = np.linalg.eigh(r)
    if (vals > 1e-10).all():
        return r
    vals = np.clip(vals, 1e-10, None)
    fixed = (vecs * vals[..., None, :]) @ np.swapaxes(vecs, -1, -2)
    d = np.sqrt(np.diagonal(fixed, axis1=-2, axis2=-1))
    return fixed / d[..., :, None] / d[..., None, :]


def relative_weights(corr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Johnson's (2000) relative weights from a correlation matrix whose last row/column is the outcome.

    With :math:`R_{xx} = Q\\Lambda Q^\\top` and :math:`\\Lambda^* = Q\\Lambda^{1/2}Q^\\top` (the correlations of
    the predictors with their closest orthogonal counterparts), :math:`\\beta^* = \\Lambda^{*-1} r_{xy}` and

    .. math:: \\varepsilon_j = \\sum_k (\\Lambda^*_{jk})^2 (\\beta^*_k)^2, \\qquad \\sum_j \\varepsilon_j = R^2 =
              r_{xy}^\\top R_{xx}^{-1} r_{xy}.

    Works on stacks of matrices (leading axes are replicates).

    Returns
    -------
    (weights, r2) : ndarray (…, p), ndarray (…)

    Examples
    --------
    Uncorrelated predictors: each weight is the squared correlation.

    >>> rw, r2 = relative_weights(np.array([[1, 0, .5], [0, 1, .3], [.5, .3, 1]]))
    >>> np.round(rw, 6).tolist(), round(float(r2), 6)
    ([0.25, 0.09], 0.34)
    """
    corr = np.asarray(corr, dtype=np.float64)
    p = corr.shape[-1] - 1
    rxx = corr[..., :p, :p]
    rxy = corr[..., :p, p]
    vals, vecs = np.linalg.eigh(rxx)
    if (vals <= 1e-10).any():  # pairwise-complete matrices need not be positive definite
        rxx = _nearest_correlation(rxx)
        vals, vecs = np.linalg.eigh(rxx)
    vals = np.clip(vals, 1e-12, None)
    lam_half = (vecs * np.sqrt(vals)[..., None, :]) @ np.swapaxes(vecs, -1, -2)
    inv_half = (vecs / np.sqrt(vals)[..., None, :]) @ np.swapaxes(vecs, -1, -2)
    beta = (inv_half @ rxy[..., :, None])[..., 0]
    eps = (lam_half**2) @ (beta**2)[..., :, None]
    return eps[..., 0], np.sum(beta**2, axis=-1)


def _pair_sums(columns: list[np.ndarray], chunk: int = 262144) -> tuple[np.ndarray, ...]:
    """The four p×p pairwise sums over rows (n, Σx_i|j, Σx_i²|j, Σx_i·x_j), in row chunks (bounded memory;
    large chunks because many small BLAS calls waste time in thread start-up on a busy machine)."""
    p = len(columns)
    n = len(columns[0]) if p else 0
    acc = [np.zeros((p, p)) for _ in range(4)]
    for r0 in range(0, n, chunk):
        x = np.column_stack([c[r0 : r0 + chunk] for c in columns])
        missing = np.isnan(x)
        mf = (~missing).astype(np.float64)
        x[missing] = 0.0  # x is a fresh stack: zero the gaps in place
        del missing
        acc[0] += mf.T @ mf
        acc[1] += x.T @ mf
        acc[3] += x.T @ x
        np.multiply(x, x, out=x)
        acc[2] += x.T @ mf
    return tuple(acc)


def _corr_from_sums(nm, sx, sxx, sxy) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise-complete correlation from sums (… , p, p): n, Σx_i|j, Σx_i²|j, Σx_i x_j."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mi = sx / nm
        mj = np.swapaxes(sx, -1, -2) / nm
        cov = sxy / nm - mi * mj
        vi = sxx / nm - mi**2
        vj = np.swapaxes(sxx, -1, -2) / nm - mj**2
        r = cov / np.sqrt(vi * vj)
    p = r.shape[-1]
    r[..., np.arange(p), np.arange(p)] = 1.0
    return np.clip(np.nan_to_num(r, nan=0.0), -1.0, 1.0), nm


def johnson_relative_weights(frame: pd.DataFrame, predictors: list[str], outcome: str) -> pd.DataFrame:
    """Correlation and Johnson relative weight of each predictor for ``outcome`` (pairwise-complete rows).

    Parameters
    ----------
    frame : DataFrame
    predictors : list of str
    outcome : str

    Returns
    -------
    DataFrame
        Index ``predictors``; columns ``correlation``, ``relative_weight`` (sums to ``r2``), ``share``
        (relative_weight / r2), ``r2``, ``n`` (pairwise base with the outcome).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 2)); y = x @ [1.0, 0.5] + rng.normal(size=500)
    >>> df = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": y})
    >>> out = johnson_relative_weights(df, ["a", "b"], "y")
    >>> bool(np.isclose(out["relative_weight"].sum(), out["r2"].iloc[0])), bool(out.loc["a", "share"] > 0.6)
    (True, True)
    """
    cols = [*predictors, outcome]
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"johnson_relative_weights: column(s) missing: {', '.join(missing)}")
    corr, nm = _corr_from_sums(*_pair_sums([frame[c].to_numpy(dtype=np.float64) for c in cols]))
    rw, r2 = relative_weights(corr)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = rw / r2
    return pd.DataFrame({"correlation": corr[:-1, -1], "relative_weight": rw, "share": share, "r2": float(r2),
                         "n": nm[:-1, -1].astype(np.int64)}, index=pd.Index(predictors, name="code"))


def _tau_from_group_stats(cnt, sums, sqs, weights=None) -> np.ndarray:
    """τ from per-group count, sum and sum of squares (E, p); ``weights`` (B, E) for replicates."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / cnt
        var = (sqs - cnt * mean**2) / (cnt - 1)
        noise = var / cnt
    ok = (cnt >= 2) & np.isfinite(noise)
    mean0 = np.where(ok, mean, 0.0)
    noise0 = np.where(ok, np.maximum(noise, 0.0), 0.0)
    okf = ok.astype(np.float64)
    w = np.ones((1, cnt.shape[0])) if weights is None else weights
    sw = w @ okf
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (w @ mean0) / sw
        between = ((w @ (mean0**2)) - sw * m**2) / (sw - 1)
        tau2 = between - (w @ noise0) / sw
    tau = np.sqrt(np.maximum(tau2, 0.0))
    return tau[0] if weights is None else tau


def noise_corrected_tau(frame: pd.DataFrame, group: str, column: str) -> float:
    """Between-group spread of group means corrected for sampling noise.

    .. math:: \\hat\\tau = \\sqrt{\\max\\Big(0,\\ \\operatorname{Var}_e(\\bar y_e) - \\frac{1}{E}\\sum_e
              \\frac{s_e^2}{n_e}\\Big)}

    over groups with at least two non-missing values (``Var`` with ddof=1, :math:`s_e^2` with ddof=1).

    Examples
    --------
    Group means 60 and 80 with within-group variance 200 and n = 2: Var(means) = 200, noise = 100, τ = 10.

    >>> df = pd.DataFrame({"g": ["a", "a", "b", "b"], "y": [50.0, 70.0, 70.0, 90.0]})
    >>> noise_corrected_tau(df, "g", "y")
    10.0
    """
    g = pd.factorize(frame[group])[0]
    y = frame[column].to_numpy(dtype=np.float64)
    ok = ~np.isnan(y)
    n_g = int(g.max()) + 1 if len(g) else 0
    cnt = np.bincount(g, weights=ok.astype(float), minlength=n_g)[:, None]
    sums = np.bincount(g, weights=np.where(ok, y, 0.0), minlength=n_g)[:, None]
    sqs = np.bincount(g, weights=np.where(ok, y * y, 0.0), minlength=n_g)[:, None]
    return float(_tau_from_group_stats(cnt, sums, sqs)[0])


def quadrant(importance: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quadrant of each driver with cut points at the level means (works on stacks: last axis = drivers).

    Examples
    --------
    >>> quadrant(np.array([0.3, 0.1, 0.3, 0.1]), np.array([5.0, 5.0, 1.0, 1.0]))[2].tolist()
    ['重点关注领域', '卓越企业需关注', '必备条件', '行业基本达标']
    """
    with warnings.catch_warnings():  # a level with no finite value (e.g. one enterprise) is simply "low"
        warnings.simplefilter("ignore", RuntimeWarning)
        imp_hi = importance > np.nanmean(importance, axis=-1, keepdims=True)
        vol_hi = tau > np.nanmean(tau, axis=-1, keepdims=True)
    names = np.where(imp_hi, np.where(vol_hi, QUADRANTS[True, True], QUADRANTS[True, False]),
                     np.where(vol_hi, QUADRANTS[False, True], QUADRANTS[False, False]))
    return imp_hi, vol_hi, names


def _enterprise_pair_sums(x: np.ndarray, groups: np.ndarray, n_groups: int, chunk: int = 4096) -> np.ndarray:
    """Per group the four p×p pairwise sums, flattened: (E, 4·p²)."""
    p = x.shape[1]
    out = np.zeros((n_groups, 4 * p * p))
    for r0 in range(0, x.shape[0], chunk):
        xc = x[r0 : r0 + chunk]
        gc = groups[r0 : r0 + chunk]
        m = ~np.isnan(xc)
        mf = m.astype(np.float64)
        x0 = np.where(m, xc, 0.0)
        prods = np.concatenate([
            np.einsum("ni,nj->nij", mf, mf).reshape(len(xc), -1),
            np.einsum("ni,nj->nij", x0, mf).reshape(len(xc), -1),
            np.einsum("ni,nj->nij", x0 * x0, mf).reshape(len(xc), -1),
            np.einsum("ni,nj->nij", x0, x0).reshape(len(xc), -1),
        ], axis=1)
        g = sparse.csr_matrix((np.ones(len(xc)), (gc, np.arange(len(xc)))), shape=(n_groups, len(xc)))
        out += g @ prods
    return out


def driver_table(
    respondents: pd.DataFrame,
    levels: dict[str, list[str]],
    outcome: str,
    enterprise_col: str = "enterprise_id",
    *,
    cluster_weights: np.ndarray | None = None,
    enterprise_codes: np.ndarray | None = None,
    enterprise_stats: dict | None = None,
) -> pd.DataFrame:
    """Importance, volatility and quadrant of each driver, with bootstrap quadrant probabilities.

    Parameters
    ----------
    respondents : DataFrame
        Respondent scores (indicators, items, outcome).
    levels : dict
        Level name → predictor columns, e.g. ``{"indicator": ["A", …, "F"], "item": ["A1", …, "F4"]}``; relative
        weights are computed among the predictors of one level.
    outcome : str
    enterprise_col : str
    cluster_weights : ndarray (B, E), optional
        Cluster bootstrap counts over enterprises (sorted codes); without them the ``p_*`` columns are NaN.
    enterprise_codes : ndarray (N,), optional
        Enterprise code of each row matching ``cluster_weights`` columns (default: sorted factorisation).
    enterprise_stats : dict, optional
        Column → (count, sum, sum of squares) per enterprise, if already computed (saves a pass over the rows).

    Returns
    -------
    DataFrame
        ``level, code, correlation, relative_weight, share, r2, n, tau, importance_high, volatility_high,
        quadrant`` and ``p_<quadrant>`` for the four quadrants.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> e = np.repeat(np.arange(30), 20); u = rng.normal(size=30)[e]
    >>> a = 70 + 8 * u + rng.normal(0, 10, 600); b = 70 + rng.normal(0, 10, 600)
    >>> df = pd.DataFrame({"enterprise_id": e, "A": a, "B": b, "Q0": a + rng.normal(0, 5, 600)})
    >>> t = driver_table(df, {"indicator": ["A", "B"]}, "Q0")
    >>> t.set_index("code")["quadrant"].to_dict()
    {'A': '重点关注领域', 'B': '行业基本达标'}
    """
    if enterprise_codes is None:
        enterprise_codes, ents = pd.factorize(respondents[enterprise_col], sort=True)
        n_e = len(ents)
    else:
        n_e = int(enterprise_codes.max()) + 1 if len(enterprise_codes) else 0
    rows = []
    for level, preds in levels.items():
        cols = [*preds, outcome]
        arrays = [respondents[c].to_numpy(dtype=np.float64) for c in cols]
        corr, nm = _corr_from_sums(*_pair_sums(arrays))
        rw, r2 = relative_weights(corr)
        cnt = np.empty((n_e, len(preds)))
        sums = np.empty((n_e, len(preds)))
        sqs = np.empty((n_e, len(preds)))
        for j in range(len(preds)):
            if enterprise_stats is not None and preds[j] in enterprise_stats:
                cnt[:, j], sums[:, j], sqs[:, j] = enterprise_stats[preds[j]]
                continue
            present = ~np.isnan(arrays[j])
            v0 = np.where(present, arrays[j], 0.0)
            cnt[:, j] = np.bincount(enterprise_codes, weights=present, minlength=n_e)
            sums[:, j] = np.bincount(enterprise_codes, weights=v0, minlength=n_e)
            sqs[:, j] = np.bincount(enterprise_codes, weights=v0 * v0, minlength=n_e)
        tau = _tau_from_group_stats(cnt, sums, sqs)
        imp_hi, vol_hi, names = quadrant(rw, tau)
        probs = {q: np.full(len(preds), np.nan) for q in QUADRANTS.values()}
        if cluster_weights is not None and cluster_weights.shape[0] > 0:
            p = len(cols)
            stats_e = _enterprise_pair_sums(np.column_stack(arrays), enterprise_codes, n_e)
            tot = (cluster_weights @ stats_e).reshape(-1, 4, p, p)
            corr_b, _ = _corr_from_sums(tot[:, 0], tot[:, 1], tot[:, 2], tot[:, 3])
            rw_b, _ = relative_weights(corr_b)
            tau_b = _tau_from_group_stats(cnt, sums, sqs, cluster_weights)
            _, _, names_b = quadrant(rw_b, tau_b)
            for q in QUADRANTS.values():
                probs[q] = (names_b == q).mean(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = rw / r2
        for j, code in enumerate(preds):
            row = {"level": level, "code": code, "correlation": corr[j, -1], "relative_weight": rw[j],
                   "share": share[j], "r2": float(r2), "n": int(nm[j, -1]), "tau": tau[j],
                   "importance_high": bool(imp_hi[j]), "volatility_high": bool(vol_hi[j]), "quadrant": str(names[j])}
            for q in QUADRANTS.values():
                row[f"p_{q}"] = probs[q][j]
            rows.append(row)
    return pd.DataFrame(rows)
