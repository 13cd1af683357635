"""Audit scoring (CCSO, YD/T 2823-2015 and checklists shaped like it): yes/no judgements in, category and overall
results out. A pure function: no I/O, nothing of the application.

Every requirement of an audit checklist gets one judgement: ``yes`` (conforming), ``no`` (non-conforming) or
``na`` (not applicable). For category :math:`k` with :math:`Y_k` conforming and :math:`N_k` non-conforming
judgements (not-applicable ones are left out of the base):

.. math::

    A_k = Y_k + N_k, \\qquad p_k = Y_k / A_k, \\qquad
    \\text{category } k \\text{ passes} \\iff A_k > 0 \\ \\text{and}\\ p_k \\ge t

with the threshold :math:`t` (0.90 in the standard). The comparison is exact (rational arithmetic): 9 of 10 passes
at :math:`t = 0.90`, 899 of 1,000 fails. The audit passes when every category passes
(``all_categories_must_pass``, the standard's rule); with that rule switched off it passes when the pooled share
:math:`\\sum_k Y_k / \\sum_k A_k \\ge t`.

**A category with every judgement "not applicable"** (:math:`A_k = 0`) is *not assessed*: its percentage is
undefined (NaN), its status is ``not_assessed`` and it does **not** count as passed, so under the standard's rule
the audit fails. This is deliberate: the standard certifies a centre when all nine categories are *shown* to
conform, and a category nobody could judge shows nothing. Passing it vacuously would let a centre be certified on
a category the auditor set aside entirely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pandas as pd

__all__ = ["JUDGEMENTS", "AuditResult", "percentage_label", "score_audit"]

#: The judgement values, in their machine spelling.
JUDGEMENTS = ("yes", "no", "na")

_COLUMNS = ["conforming", "nonconforming", "not_applicable", "applicable", "percentage", "status", "passed"]


@dataclass(frozen=True)
class AuditResult:
    """Result of :func:`score_audit`.

    Attributes
    ----------
    categories : pandas.DataFrame
        One row per category (index ``category``, in checklist order): ``conforming``, ``nonconforming``,
        ``not_applicable``, ``applicable`` (int), ``percentage`` (float, 0–100, unrounded; NaN when not assessed),
        ``status`` (``pass`` / ``fail`` / ``not_assessed``) and ``passed`` (bool).
    passed : bool
        The overall result.
    categories_passed, categories_total : int
        How many categories passed, out of how many.
    nonconforming : list of str
        Requirement codes judged ``no``, in checklist order.
    threshold : float
        The category threshold used.
    """

    categories: pd.DataFrame
    passed: bool
    categories_passed: int
    categories_total: int
    nonconforming: list[str] = field(default_factory=list)
    threshold: float = 0.90

    @property
    def summary(self) -> str:
        """The one-line overall result: ``audit=<pass|fail> categories_passed=<n>/<categories>``."""
        return (f"audit={'pass' if self.passed else 'fail'} "
                f"categories_passed={self.categories_passed}/{self.categories_total}")


def _threshold(value: float) -> Fraction:
    t = Fraction(str(value))  # 0.9 -> 9/10 exactly, not the binary float just above it
    if not 0 < t <= 1:
        raise ValueError(f"category_threshold must be in (0, 1], got {value!r}")
    return t


def percentage_label(conforming: int, applicable: int, category_threshold: float = 0.90) -> str:
    """The percentage for display, one decimal, rounded half up, except that a failing share is never shown at or
    above the threshold (it is then truncated): 8999 of 10000 reads 89.9, not a passing-looking 90.0.

    Examples
    --------
    >>> [percentage_label(*x) for x in [(13, 15), (9, 10), (8999, 10000), (2, 3), (0, 4), (0, 0)]]
    ['86.7', '90.0', '89.9', '66.7', '0.0', '—']
    """
    if applicable <= 0:
        return "—"
    tenths = (2000 * conforming + applicable) // (2 * applicable)  # round(1000 * y / a), half up, exactly
    if Fraction(conforming, applicable) < _threshold(category_threshold) <= Fraction(tenths, 1000):
        tenths = 1000 * conforming // applicable
    return f"{tenths // 10}.{tenths % 10}"


def score_audit(judgements: Mapping[str, str], categories: Mapping[str, str], *,
                category_threshold: float = 0.90, all_categories_must_pass: bool = True) -> AuditResult:
    """Score an audit: per-category conformity and the overall result.

    Parameters
    ----------
    judgements : Mapping[str, str]
        Requirement code → ``yes`` / ``no`` / ``na``. Every requirement of ``categories`` must be judged, and only
        those (the caller turns 是/否/不适用 and spelling variants into these three values).
    categories : Mapping[str, str]
        Requirement code → category code, in checklist order; the categories are reported in order of first
        appearance.
    category_threshold : float, default 0.90
        Share of applicable judgements that must conform for a category to pass, in (0, 1].
    all_categories_must_pass : bool, default True
        The standard's rule: the audit passes when every category passes. When False, the audit passes when the
        pooled share of conforming judgements over all categories reaches the threshold.

    Returns
    -------
    AuditResult

    Raises
    ------
    ValueError
        For a judgement outside ``yes/no/na``, a judged requirement missing from ``categories``, or a requirement
        of ``categories`` without a judgement; or a threshold outside (0, 1].

    Notes
    -----
    See the module docstring for the formula and for why a category with every judgement ``na`` is *not
    assessed* (and not passed).

    Examples
    --------
    Category 1 has 9 conforming of 10 applicable (one ``na`` left out): exactly 90 %, a pass. Category 2 has 1 of
    2: a fail, so the audit fails.

    >>> cats = {f"1.1.{i}": "1" for i in range(1, 12)} | {"2.1.1": "2", "2.1.2": "2"}
    >>> j = {f"1.1.{i}": "yes" for i in range(1, 10)} | {"1.1.10": "no", "1.1.11": "na"}
    >>> r = score_audit(j | {"2.1.1": "yes", "2.1.2": "no"}, cats)
    >>> r.categories[["conforming", "applicable", "percentage", "status"]].to_dict("index")["1"]
    {'conforming': 9, 'applicable': 10, 'percentage': 90.0, 'status': 'pass'}
    >>> r.categories["status"].tolist()
    ['pass', 'fail']
    >>> r.summary
    'audit=fail categories_passed=1/2'
    >>> r.nonconforming
    ['1.1.10', '2.1.2']
    """
    t = _threshold(category_threshold)
    unknown = [code for code in judgements if code not in categories]
    if unknown:
        raise ValueError(f"judgement for unknown requirement(s): {', '.join(map(str, unknown[:10]))}")
    missing = [code for code in categories if code not in judgements]
    if missing:
        raise ValueError(f"requirement(s) without a judgement: {', '.join(missing[:10])}"
                         + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
    bad = {code: v for code, v in judgements.items() if v not in JUDGEMENTS}
    if bad:
        code, v = next(iter(bad.items()))
        raise ValueError(f"requirement {code}: judgement {v!r} is not one of yes, no, na")

    order: list[str] = list(dict.fromkeys(categories.values()))
    counts = {c: {"yes": 0, "no": 0, "na": 0} for c in order}
    nonconforming: list[str] = []
    for code, cat in categories.items():
        v = judgements[code]
        counts[cat][v] += 1
        if v == "no":
            nonconforming.append(code)

    rows = []
    for cat in order:
        y, n, na = counts[cat]["yes"], counts[cat]["no"], counts[cat]["na"]
        a = y + n
        if a == 0:
            status, pct = "not_assessed", np.nan
        else:
            status, pct = ("pass" if Fraction(y, a) >= t else "fail"), 100.0 * y / a
        rows.append({"category": cat, "conforming": y, "nonconforming": n, "not_applicable": na, "applicable": a,
                     "percentage": pct, "status": status, "passed": status == "pass"})
    frame = pd.DataFrame(rows, columns=["category", *_COLUMNS]).set_index("category")
    frame = frame.astype({"conforming": "int64", "nonconforming": "int64", "not_applicable": "int64",
                          "applicable": "int64", "percentage": "float64", "passed": "bool"})
    n_passed = int(frame["passed"].sum())
    if all_categories_must_pass:
        passed = bool(len(frame)) and n_passed == len(frame)
    else:
        total_y, total_a = int(frame["conforming"].sum()), int(frame["applicable"].sum())
        passed = total_a > 0 and Fraction(total_y, total_a) >= t
    return AuditResult(categories=frame, passed=bool(passed), categories_passed=n_passed,
                       categories_total=len(frame), nonconforming=nonconforming, threshold=float(category_threshold))
