"""The scoring configuration of a study, parsed from the raw study mapping (``yaml.safe_load`` output).

Only the parts scoring needs are read: ``indicators`` (tree, weights, item codes), ``scoring`` and the item texts
under ``questions`` (for labels). This module deliberately does not import the application's study loader:
``scoring`` imports nothing of ours.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Indicator", "ScoringSpec", "default_spec", "neutral_label"]

_WEIGHT_TOLERANCE = 1e-3
INDUSTRY_AGGREGATIONS = ("enterprise_mean", "respondent_mean")


@dataclass(frozen=True)
class Indicator:
    """One first-level indicator: its code, weight within the composite, names and weighted items."""

    code: str
    weight: float
    name_zh: str
    name_en: str
    items: tuple[str, ...]
    item_weights: tuple[float, ...]


def neutral_label(text: str, language: str = "zh-CN", piping: Mapping[str, str] | None = None) -> str:
    """Turn a question text into a short neutral label for tables and charts.

    The enterprise name placeholder is removed (``{enterprise_name}的热线号码`` → ``热线号码``; ``The hotline number
    of {enterprise_name} is`` → ``The hotline number is``), other placeholders take their piping default, and a
    trailing "how satisfied are you?" clause is dropped.

    Examples
    --------
    >>> neutral_label("{enterprise_name}的热线号码容易查找和记忆，您对此是否满意？")
    '热线号码容易查找和记忆'
    >>> neutral_label("The hotline number of {enterprise_name} is easy to find: how satisfied are you?", "en")
    'The hotline number is easy to find'
    """
    out = str(text)
    if language.startswith("zh"):
        out = re.sub(r"\{enterprise_name\}的?", "", out)
        out = re.sub(r"[，,]?\s*您对此是否满意[？?]?\s*$", "", out)
    else:
        out = re.sub(r"\s+(of|at|by)\s+\{enterprise_name\}", "", out)
        out = out.replace("{enterprise_name}", "the enterprise")
        out = re.sub(r"\s*[:,;]\s*how satisfied are you\??\s*$", "", out, flags=re.IGNORECASE)
    for key, value in (piping or {}).items():
        out = out.replace("{" + key + "}", str(value))
    out = re.sub(r"\{[a-zA-Z_]+\}", "…", out)
    return out.strip()


def _text(value: Any, lang: str) -> str:
    if isinstance(value, Mapping):
        if lang in value:
            return str(value[lang])
        for v in value.values():
            return str(v)
        return ""
    return "" if value is None else str(value)


def _int_key(key: Any, path: str) -> int:
    try:
        as_float = float(key)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: answer code {key!r} is not a number") from None
    if not as_float.is_integer():
        raise ValueError(f"{path}: answer code {key!r} is not a whole number")
    return int(as_float)


@dataclass(frozen=True)
class ScoringSpec:
    """Everything scoring needs to know about a study (docs/domain.md §3), immutable.

    Build it with :meth:`from_study` (raw mapping) or :meth:`from_yaml` (path). Weights are relative within their
    parent; they are renormalised over the answered items / available indicators when scoring.

    Examples
    --------
    >>> spec = ScoringSpec.from_study({
    ...     "indicators": [
    ...         {"code": "A", "weight": 0.5, "name": {"zh-CN": "甲", "en": "Alpha"},
    ...          "items": [{"code": "A1", "weight": 0.5}, {"code": "A2", "weight": 0.5}]},
    ...         {"code": "B", "weight": 0.5, "name": {"zh-CN": "乙", "en": "Beta"}, "items": ["B1", "B2", "B3"]}],
    ...     "scoring": {"outcome": "Q0"}})
    >>> spec.item_codes
    ('A1', 'A2', 'B1', 'B2', 'B3')
    >>> spec.min_answered("B"), spec.min_answered("A")
    (2, 1)
    >>> spec.item_scores[5], spec.item_scores[1]
    (100.0, 20.0)
    """

    indicators: tuple[Indicator, ...]
    item_scores: Mapping[int, float] = field(default_factory=lambda: {5: 100.0, 4: 80.0, 3: 60.0, 2: 40.0, 1: 20.0})
    missing_codes: tuple[int, ...] = (8, 9)
    min_answered_share: float = 0.5
    industry_aggregation: str = "enterprise_mean"
    outcome: str | None = "Q0"
    callback_item: str | None = "CB1"
    callback_yes: tuple[int, ...] = (1,)
    callback_no: tuple[int, ...] = (2,)
    callback_missing: tuple[int, ...] = (9,)
    bootstrap_replicates: int = 2000
    confidence: float = 0.95
    item_texts_zh: Mapping[str, str] = field(default_factory=dict)
    item_texts_en: Mapping[str, str] = field(default_factory=dict)
    question_codes: tuple[str, ...] = ()
    study_id: str | None = None

    def __post_init__(self) -> None:
        if not self.indicators:
            raise ValueError("indicators: the study defines no indicators")
        if self.industry_aggregation not in INDUSTRY_AGGREGATIONS:
            raise ValueError(
                f"scoring.industry_aggregation: {self.industry_aggregation!r} is not one of {INDUSTRY_AGGREGATIONS}"
            )
        if not 0.0 < self.min_answered_share <= 1.0:
            raise ValueError(f"scoring.min_answered_share: {self.min_answered_share} must be in (0, 1]")
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError(f"scoring.confidence: {self.confidence} must be in [0.5, 1)")
        if self.bootstrap_replicates < 0:
            raise ValueError("scoring.bootstrap_replicates: must be >= 0")
        seen: set[str] = set()
        for ind in self.indicators:
            for code in ind.items:
                if code in seen:
                    raise ValueError(f"indicators: item {code!r} appears in more than one indicator")
                seen.add(code)
        for code in (self.outcome, self.callback_item):
            if code is not None and code in seen:
                raise ValueError(f"scoring: {code!r} is a scored item and cannot also be outcome/callback item")
        overlap = set(self.item_scores) & set(self.missing_codes)
        if overlap:
            raise ValueError(f"scoring: codes {sorted(overlap)} are both scored and missing")

    # ----------------------------------------------------------------------------------------------- construction
    @classmethod
    def from_study(cls, study: Mapping) -> ScoringSpec:
        """Parse the raw study mapping (as returned by ``yaml.safe_load``).

        Raises
        ------
        ValueError
            Naming the path in the study file (e.g. ``indicators[3].items[1].weight``) of a bad value.
        """
        if not isinstance(study, Mapping):
            raise ValueError("study: expected a mapping (the parsed study file)")
        raw_inds = study.get("indicators")
        if not isinstance(raw_inds, list) or not raw_inds:
            raise ValueError("indicators: missing or empty list in the study file")
        indicators: list[Indicator] = []
        for i, raw in enumerate(raw_inds):
            path = f"indicators[{i}]"
            if not isinstance(raw, Mapping) or "code" not in raw:
                raise ValueError(f"{path}: each indicator needs a code")
            code = str(raw["code"])
            raw_items = raw.get("items")
            if not isinstance(raw_items, list) or not raw_items:
                raise ValueError(f"{path}.items: indicator {code!r} has no items")
            items: list[str] = []
            weights: list[float] = []
            for j, it in enumerate(raw_items):
                ipath = f"{path}.items[{j}]"
                if isinstance(it, Mapping):
                    if "code" not in it:
                        raise ValueError(f"{ipath}: item without a code")
                    items.append(str(it["code"]))
                    weights.append(_weight(it.get("weight"), f"{ipath}.weight", default=1.0 / len(raw_items)))
                else:
                    items.append(str(it))
                    weights.append(1.0 / len(raw_items))
            _check_sum(weights, f"{path}.items")
            name = raw.get("name", {})
            indicators.append(
                Indicator(
                    code=code,
                    weight=_weight(raw.get("weight"), f"{path}.weight", default=1.0 / len(raw_inds)),
                    name_zh=_text(name, "zh-CN") or code,
                    name_en=_text(name, "en") or code,
                    items=tuple(items),
                    item_weights=tuple(weights),
                )
            )
        _check_sum([ind.weight for ind in indicators], "indicators")

        sc = study.get("scoring") or {}
        if not isinstance(sc, Mapping):
            raise ValueError("scoring: expected a mapping")
        kwargs: dict[str, Any] = {}
        if "item_scores" in sc:
            raw_map = sc["item_scores"]
            if not isinstance(raw_map, Mapping) or not raw_map:
                raise ValueError("scoring.item_scores: expected a mapping answer code -> score")
            kwargs["item_scores"] = {
                _int_key(k, "scoring.item_scores"): float(v) for k, v in raw_map.items()
            }
        if "missing_codes" in sc:
            kwargs["missing_codes"] = tuple(_int_key(k, "scoring.missing_codes") for k in sc["missing_codes"] or [])
        for key, conv in (("min_answered_share", float), ("industry_aggregation", str),
                          ("bootstrap_replicates", int), ("confidence", float)):
            if key in sc and sc[key] is not None:
                try:
                    kwargs[key] = conv(sc[key])
                except (TypeError, ValueError):
                    raise ValueError(f"scoring.{key}: {sc[key]!r} is not a valid {conv.__name__}") from None
        if sc.get("composite", "weighted_mean_available") != "weighted_mean_available":
            raise ValueError(f"scoring.composite: {sc['composite']!r} is not supported (weighted_mean_available: "
                             "weighted mean of the indicators a respondent has)")
        for key in ("outcome", "callback_item"):
            if key in sc:
                kwargs[key] = None if sc[key] in (None, "") else str(sc[key])

        texts_zh: dict[str, str] = {}
        texts_en: dict[str, str] = {}
        piping = {str(k): str(v) for k, v in (study.get("piping_defaults") or {}).items()}
        for q in study.get("questions") or []:
            if isinstance(q, Mapping) and "code" in q:
                texts_zh[str(q["code"])] = neutral_label(_text(q.get("text"), "zh-CN"), "zh-CN", piping)
                texts_en[str(q["code"])] = neutral_label(_text(q.get("text"), "en"), "en", piping)
        callback = kwargs.get("callback_item", "CB1")
        if callback is not None:
            kwargs.update(_callback_codes(study, callback))
        return cls(indicators=tuple(indicators), item_texts_zh=texts_zh, item_texts_en=texts_en,
                   question_codes=tuple(texts_zh),
                   study_id=None if study.get("id") is None else str(study.get("id")), **kwargs)

    @classmethod
    def from_yaml(cls, path: str | Path) -> ScoringSpec:
        """Read a study file and parse it with :meth:`from_study`."""
        return spec_from_yaml(cls, path)

    # ------------------------------------------------------------------------------------------------ accessors
    @property
    def item_codes(self) -> tuple[str, ...]:
        """Scored item codes in indicator order (``A1`` … ``F4``)."""
        return tuple(code for ind in self.indicators for code in ind.items)

    @property
    def indicator_codes(self) -> tuple[str, ...]:
        """First-level indicator codes (``A`` … ``F``)."""
        return tuple(ind.code for ind in self.indicators)

    @property
    def indicator_weights(self) -> dict[str, float]:
        return {ind.code: ind.weight for ind in self.indicators}

    @property
    def indicator_names_zh(self) -> dict[str, str]:
        return {ind.code: ind.name_zh for ind in self.indicators}

    @property
    def indicator_names_en(self) -> dict[str, str]:
        return {ind.code: ind.name_en for ind in self.indicators}

    @property
    def item_names_zh(self) -> dict[str, str]:
        """Neutral zh-CN labels of the scored items (and outcome / callback item when the study has their text)."""
        codes = [*self.item_codes, *(c for c in (self.outcome, self.callback_item) if c)]
        return {c: self.item_texts_zh.get(c) or c for c in codes}

    @property
    def item_names_en(self) -> dict[str, str]:
        codes = [*self.item_codes, *(c for c in (self.outcome, self.callback_item) if c)]
        return {c: self.item_texts_en.get(c) or c for c in codes}

    @property
    def item_parent(self) -> dict[str, str]:
        """Item code → indicator code."""
        return {code: ind.code for ind in self.indicators for code in ind.items}

    @property
    def valid_codes(self) -> frozenset[int]:
        """Answer codes allowed in a scored item column (scale values and missing codes)."""
        return frozenset(self.item_scores) | frozenset(self.missing_codes)

    @property
    def score_min(self) -> float:
        return min(self.item_scores.values())

    @property
    def score_max(self) -> float:
        return max(self.item_scores.values())

    def indicator(self, code: str) -> Indicator:
        for ind in self.indicators:
            if ind.code == code:
                return ind
        raise KeyError(code)

    def min_answered(self, code: str) -> int:
        """Answered items an indicator needs: ``ceil(min_answered_share × k)`` (3 items → 2, 4 items → 2)."""
        k = len(self.indicator(code).items)
        return max(1, math.ceil(self.min_answered_share * k - 1e-9))

    def with_options(self, **changes: Any) -> ScoringSpec:
        """A copy with some fields changed (e.g. ``industry_aggregation``)."""
        import dataclasses

        return dataclasses.replace(self, **changes)

    def __hash__(self) -> int:  # mappings are not hashable; identity of the tree is enough
        return hash((self.indicators, self.industry_aggregation, self.outcome, self.callback_item))


def _weight(value: Any, path: str, default: float) -> float:
    if value is None:
        return float(default)
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: weight {value!r} is not a number") from None
    if not math.isfinite(w) or w <= 0:
        raise ValueError(f"{path}: weight {value!r} must be a positive number")
    return w


def _check_sum(weights: list[float], path: str) -> None:
    total = sum(weights)
    if abs(total - 1.0) > _WEIGHT_TOLERANCE:
        raise ValueError(f"{path}: weights sum to {total:.6g}, they must sum to 1 (relative within their parent)")


def _callback_codes(study: Mapping, code: str) -> dict[str, tuple[int, ...]]:
    """Yes/no/missing codes of the callback item from its scale (default yes=1, no=2, missing=9)."""
    scales = study.get("scales") or {}
    for q in study.get("questions") or []:
        if isinstance(q, Mapping) and str(q.get("code")) == code and q.get("scale") in scales:
            scale = scales[q["scale"]] or {}
            labels = [_int_key(k, f"scales.{q['scale']}.labels") for k in (scale.get("labels") or {})]
            missing = [_int_key(k, f"scales.{q['scale']}.missing") for k in (scale.get("missing") or {})]
            if len(labels) == 2:
                return {"callback_yes": (min(labels),), "callback_no": (max(labels),),
                        "callback_missing": tuple(missing)}
    return {}


_DEFAULT_TREE = {
    "A": ("呼叫便利程度", "Access convenience", 4),
    "B": ("沟通愉悦程度", "Courtesy", 4),
    "C": ("应变能力", "Responsiveness", 4),
    "D": ("问题跟进处理", "Follow-up", 3),
    "E": ("通话礼仪", "Call etiquette", 3),
    "F": ("话务水平", "Talk quality", 4),
}


def default_spec() -> ScoringSpec:
    """The default scoring spec of docs/domain.md §2–§3 (22 items A1…F4, equal weights, outcome Q0, callback CB1).

    The study file ``config/studies/csat_contact_center.yaml`` is the authority; this built-in copy serves files
    scored without a study and synthetic data.

    Examples
    --------
    >>> s = default_spec()
    >>> len(s.item_codes), s.indicator_codes, s.min_answered("D"), s.min_answered("A")
    (22, ('A', 'B', 'C', 'D', 'E', 'F'), 2, 2)
    """
    return ScoringSpec.from_study({
        "indicators": [
            {"code": code, "weight": 1 / 6, "name": {"zh-CN": zh, "en": en},
             "items": [{"code": f"{code}{i + 1}", "weight": 1 / k} for i in range(k)]}
            for code, (zh, en, k) in _DEFAULT_TREE.items()
        ],
        "questions": [{"code": c} for c in ("D0", "Q0", "CB1", "OPEN1", "S1", "S2", "P1", "P2", "P3")],
        "scoring": {"outcome": "Q0", "callback_item": "CB1"},
    })


def spec_from_yaml(cls, path: str | Path):
    """Read the study file at ``path`` and parse it with ``cls.from_study``; every error is a ValueError naming
    the file (not found, not valid YAML, or the spec's own complaint)."""
    import yaml

    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{p}: study file not found") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{p}: not valid YAML: {exc}") from None
    try:
        return cls.from_study(raw)
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from None
