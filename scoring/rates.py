"""AAPOR outcome rates (Standard Definitions, telephone; docs/domain.md §5): RR1–RR6, COOP1–4, REF1–3, CON1–3 and e."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["SYMBOLS", "RATES", "aapor_symbol", "response_rates"]

SYMBOLS = ("I", "P", "R", "NC", "O", "UH", "UR", "UO", "NE")
RATES = ("RR1", "RR2", "RR3", "RR4", "RR5", "RR6", "COOP1", "COOP2", "COOP3", "COOP4", "REF1", "REF2", "REF3",
         "CON1", "CON2", "CON3")
_CODE = re.compile(r"^([1-4])\.(\d+)$")
_SECOND = {
    "1": {"1": "I", "2": "P"},
    "2": {"1": "R", "2": "NC", "3": "O"},
    "3": {"1": "UH", "2": "UR", "9": "UO"},
}


def aapor_symbol(code: str) -> str:
    """The AAPOR symbol of a final disposition code.

    ``1.1`` → I (complete), ``1.2`` → P (partial), ``2.1x`` → R (refusal and break-off), ``2.2x`` → NC
    (non-contact), ``2.3x`` → O (other eligible), ``3.1x`` → UH (unknown if household/working number),
    ``3.2x`` → UR (unknown other), ``3.9x`` → UO (unknown, other), ``4.x`` → NE (not eligible, incl. 4.80 quota
    filled). A symbol itself is returned unchanged.

    Raises
    ------
    ValueError
        For a code that is not an AAPOR final disposition.

    Examples
    --------
    >>> [aapor_symbol(c) for c in ["1.1", "1.2", "2.112", "2.221", "2.33", "3.13", "3.20", "3.90", "4.80"]]
    ['I', 'P', 'R', 'NC', 'O', 'UH', 'UR', 'UO', 'NE']
    """
    text = str(code).strip()
    if text.upper() in SYMBOLS:
        return text.upper()
    m = _CODE.match(text)
    if m:
        first, rest = m.group(1), m.group(2)
        if first == "4":
            return "NE"
        sym = _SECOND[first].get(rest[0])
        if sym is not None and not (first == "1" and len(rest) > 1 and rest[1:] != "0" * (len(rest) - 1)):
            return sym
    raise ValueError(f"{code!r} is not an AAPOR final disposition code (1.1, 1.2, 2.1x, 2.2x, 2.3x, 3.1x, 3.2x, "
                     "3.9x, 4.x)")


def _rates(c: dict[str, np.ndarray], e: np.ndarray) -> dict[str, np.ndarray]:
    i, p, r, nc, o = c["I"], c["P"], c["R"], c["NC"], c["O"]
    u = c["UH"] + c["UR"] + c["UO"]
    d = i + p + r + nc + o

    def div(a, b):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)

    contacted = i + p + r + o
    return {
        "RR1": div(i, d + u), "RR2": div(i + p, d + u), "RR3": div(i, d + e * u), "RR4": div(i + p, d + e * u),
        "RR5": div(i, d), "RR6": div(i + p, d),
        "COOP1": div(i, i + p + r + o), "COOP2": div(i + p, i + p + r + o), "COOP3": div(i, i + p + r),
        "COOP4": div(i + p, i + p + r),
        "REF1": div(r, d + u), "REF2": div(r, d + e * u), "REF3": div(r, d),
        "CON1": div(contacted, d + u), "CON2": div(contacted, d + e * u), "CON3": div(contacted, d),
    }


def response_rates(frame: pd.DataFrame, *, by: str | list[str] | None = None, disposition_col: str = "disposition",
                   e: float | None = None) -> pd.DataFrame:
    """AAPOR response, cooperation, refusal and contact rates, overall or per group.

    With :math:`U = UH + UR + UO` and :math:`D = I + P + R + NC + O`:

    .. math::
        RR1 = \\frac{I}{D+U},\\ RR2 = \\frac{I+P}{D+U},\\ RR3 = \\frac{I}{D+eU},\\ RR4 = \\frac{I+P}{D+eU},\\
        RR5 = \\frac{I}{D},\\ RR6 = \\frac{I+P}{D}

        COOP1 = \\frac{I}{I+P+R+O},\\ COOP2 = \\frac{I+P}{I+P+R+O},\\ COOP3 = \\frac{I}{I+P+R},\\
        COOP4 = \\frac{I+P}{I+P+R}

        REF1 = \\frac{R}{D+U},\\ REF2 = \\frac{R}{D+eU},\\ REF3 = \\frac{R}{D},\\quad
        CON_{1,2,3} = \\frac{I+P+R+O}{D+U},\\ \\frac{I+P+R+O}{D+eU},\\ \\frac{I+P+R+O}{D}

    and, unless given, :math:`e = \\frac{D}{D + NE}` (the share of cases of known eligibility that are eligible),
    estimated per group.

    Parameters
    ----------
    frame : DataFrame
        One row per case with its final disposition code (``1.1``, ``2.112``, ``4.80`` …) or AAPOR symbol.
    by : str or list of str, optional
        Group columns (study, enterprise, industry, interviewer, day …); None = one row for everything.
    disposition_col : str
    e : float, optional
        Fixed eligibility share of the unknowns, in [0, 1].

    Returns
    -------
    DataFrame
        Group columns, ``n``, the counts ``I P R NC O UH UR UO NE``, ``e`` and the 16 rates as proportions (0–1).

    Examples
    --------
    >>> df = pd.DataFrame({"disposition": ["1.1"] * 4 + ["1.2", "2.111", "2.21", "3.13", "4.80", "4.80"]})
    >>> r = response_rates(df).iloc[0]
    >>> int(r["I"]), float(r["e"]), float(r["RR1"]), float(r["COOP1"])
    (4, 0.7777777777777778, 0.5, 0.6666666666666666)
    """
    if disposition_col not in frame.columns:
        raise ValueError(f"column {disposition_col!r} missing from the dispositions frame")
    if e is not None and not 0.0 <= float(e) <= 1.0:
        raise ValueError(f"e = {e} must be between 0 and 1")
    keys = [] if by is None else ([by] if isinstance(by, str) else list(by))
    for k in keys:
        if k not in frame.columns:
            raise ValueError(f"group column {k!r} missing from the dispositions frame")
    codes = frame[disposition_col].astype("string").str.strip()
    uniq = codes.dropna().unique()
    mapping: dict[str, str] = {}
    for u in uniq:
        try:
            mapping[u] = aapor_symbol(u)
        except ValueError as exc:
            pos = int(np.flatnonzero((codes == u).to_numpy(dtype=bool))[0])
            raise ValueError(f"row {frame.index[pos]}, column {disposition_col}: {exc}") from None
    if codes.isna().any():
        pos = int(np.flatnonzero(codes.isna().to_numpy())[0])
        raise ValueError(f"row {frame.index[pos]}, column {disposition_col}: empty disposition")
    sym = pd.Categorical(codes.map(mapping), categories=list(SYMBOLS))
    if keys:
        tab = pd.crosstab([frame[k] for k in keys], sym, dropna=False).reindex(columns=list(SYMBOLS), fill_value=0)
        tab.columns = list(SYMBOLS)
        tab = tab.reset_index()
    else:
        tab = pd.DataFrame([pd.Series(sym).value_counts().reindex(list(SYMBOLS), fill_value=0)])
    counts = {s: tab[s].to_numpy(dtype=np.float64) for s in SYMBOLS}
    d = sum(counts[s] for s in ("I", "P", "R", "NC", "O"))
    if e is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            e_arr = np.where(d + counts["NE"] > 0, d / np.maximum(d + counts["NE"], 1), np.nan)
    else:
        e_arr = np.full(len(tab), float(e))
    out = tab[keys].copy() if keys else pd.DataFrame(index=range(len(tab)))
    out["n"] = sum(counts[s] for s in SYMBOLS).astype(np.int64)
    for s in SYMBOLS:
        out[s] = counts[s].astype(np.int64)
    out["e"] = e_arr
    for name, vals in _rates(counts, np.nan_to_num(e_arr, nan=0.0)).items():
        out[name] = vals
    return out.reset_index(drop=True)
