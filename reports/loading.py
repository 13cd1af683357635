"""Read a scoring output folder (``cati score … --out DIR``, i.e. ``ScoreResult.write``) back into a ScoreResult,
so reports can be made from files without re-scoring or a database."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from scoring import ScoreResult
from scoring.spec import ScoringSpec

__all__ = ["load_score_result"]

_REQUIRED = ("enterprise_scores.csv", "industry_scores.csv", "overall.json", "drivers.csv")
_ID_DTYPES = {"enterprise_id": str, "enterprise_name": str, "industry": str, "respondent_id": str, "tier": str}


def _csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=_ID_DTYPES, encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable scoring CSV: {exc}") from None


def load_score_result(folder: str | Path, spec: ScoringSpec) -> ScoreResult:
    """Load ``enterprise_scores.csv``, ``industry_scores.csv``, ``overall.json``, ``drivers.csv`` and, when present,
    ``respondent_scores.csv`` and ``method.json`` from ``folder``.

    Raises
    ------
    ValueError
        Naming the folder and the missing file.
    """
    d = Path(folder)
    missing = [name for name in _REQUIRED if not (d / name).is_file()]
    if missing:
        raise ValueError(f"{d}: not a scoring output folder, missing {', '.join(missing)} (run `cati score … --out`)")
    ent = _csv(d / "enterprise_scores.csv")
    ind = _csv(d / "industry_scores.csv")
    drivers = _csv(d / "drivers.csv")
    overall = {k: (float("nan") if v is None else v)
               for k, v in json.loads((d / "overall.json").read_text(encoding="utf-8")).items()}
    resp = _csv(d / "respondent_scores.csv") if (d / "respondent_scores.csv").is_file() else pd.DataFrame(
        columns=["respondent_id", "enterprise_id", "enterprise_name", "industry"])
    method = json.loads((d / "method.json").read_text(encoding="utf-8")) if (d / "method.json").is_file() else {}
    for col in ("importance_high", "volatility_high"):
        if col in drivers.columns and drivers[col].dtype != bool:
            drivers[col] = drivers[col].astype(str).str.lower().isin(("true", "1"))
    return ScoreResult(spec=spec, respondents=resp, enterprises=ent, industries=ind, overall=overall,
                       drivers=drivers, method=method)
