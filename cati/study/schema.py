"""Pydantic models of a study file (``config/studies/*.yaml``).

Over 600 lines on purpose: the whole typed study file (questions, scales, scoring, quotas, calling rules,
QC, fieldwork) is one pydantic model, so a reader sees every key a study may use.

The models check *shape*: types, required keys, unknown keys (every model forbids extra keys), ranges, time
windows and time zones. Cross-references between parts of the file (an ``ask_if`` naming an unknown question,
indicator weights that do not sum to 1, missing translations …) are checked by :mod:`cati.study.loader`, which
reports every problem with the file and the path inside it. Load study files through
:func:`cati.study.loader.load_study`, not through ``Study.model_validate`` directly.
"""

from __future__ import annotations

import copy
import keyword
import re
from collections.abc import Mapping
from datetime import date, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from cati.i18n import KeyedError, KeyedText

# --------------------------------------------------------------------------------------------------------------
# AAPOR dispositions (Standard Definitions, telephone surveys). A study may use any code of the AAPOR *form*
# (checked by the models); a code outside this list only earns a warning from the loader.
AAPOR_CODES: frozenset[str] = frozenset(
    """
    1.0 1.1 1.2
    2.0 2.10 2.11 2.111 2.112 2.12 2.20 2.21 2.22 2.221 2.222 2.23 2.30 2.31 2.32 2.33 2.331 2.332 2.333 2.34
    2.35 2.36 2.90
    3.0 3.10 3.11 3.12 3.13 3.14 3.15 3.16 3.161 3.162 3.163 3.17 3.18 3.19 3.20 3.21 3.90
    4.0 4.10 4.20 4.30 4.31 4.32 4.33 4.40 4.41 4.42 4.43 4.44 4.45 4.50 4.51 4.52 4.53 4.54 4.70 4.80 4.90
    """.split()
)
AAPOR_PATTERN = re.compile(r"^[1-4]\.\d{1,3}$")

QUESTION_TYPES = ("info", "single", "rating", "multi", "open", "numeric")
SCALED_TYPES = frozenset({"single", "rating", "multi"})
CODE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
LANGUAGE_PATTERN = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
#: Function names of the condition language; a question may not be called like one.
RESERVED_CODES = frozenset({"answered"})

#: Placeholders every study may use in its texts without declaring them.
BUILTIN_PLACEHOLDERS = frozenset({"enterprise_name", "firm_name", "interviewer_name"})

# A text token: escaped braces, a ``{placeholder}``, or a stray brace (a syntax error).
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def scan_placeholders(template: str) -> tuple[list[str], list[str]]:
    """Find the ``{name}`` placeholders of a text.

    Parameters
    ----------
    template : str
        A question text; ``{{`` and ``}}`` stand for literal braces.

    Returns
    -------
    names : list of str
        Placeholder names in order of appearance (repeats kept).
    errors : list of str
        One message per malformed token (stray brace, empty or non-identifier placeholder).
    """
    names: list[str] = []
    errors: list[str] = []
    for m in _TOKEN.finditer(template):
        tok = m.group(0)
        if tok in ("{{", "}}"):
            continue
        inner = m.group(1)
        if inner is None:
            errors.append(KeyedText("sv_stray_brace", tok=tok, pos=m.start() + 1, double=tok * 2))
        elif not _IDENT.match(inner.strip()) or inner != inner.strip():
            errors.append(KeyedText("sv_bad_placeholder", tok=tok))
        else:
            names.append(inner)
    return names, errors


def pipe(template: str, lookup: Mapping[str, str]) -> str:
    """Substitute ``{name}`` placeholders.

    Parameters
    ----------
    template : str
        Text with placeholders; ``{{``/``}}`` are literal braces.
    lookup : Mapping[str, str]
        Values by placeholder name. A name without a value stays visible as ``[name]`` so the interviewer
        notices it instead of reading an empty gap.

    Returns
    -------
    str
        The text with values substituted (values are inserted verbatim, never re-interpreted).
    """

    def repl(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok == "{{":
            return "{"
        if tok == "}}":
            return "}"
        name = m.group(1)
        if name is None or not _IDENT.match(name):
            return tok
        value = lookup.get(name)
        return f"[{name}]" if value is None else value

    if "{" not in template and "}" not in template:
        return template
    return _TOKEN.sub(repl, template)


# --------------------------------------------------------------------------------------------------------------
# Field types


def _to_clock(value: Any) -> Any:
    # YAML 1.1 reads an unquoted 13:30 as the base-60 integer 810; pydantic would then take it as 810 seconds
    # (00:13:30) without complaint, so numbers are refused with the fix spelt out.
    if isinstance(value, bool) or isinstance(value, int | float):
        raise KeyedError("sv_time_number", value=value)
    if isinstance(value, str):
        if not re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value.strip()):
            raise KeyedError("sv_time_form", value=value)
        parts = [int(p) for p in value.strip().split(":")]
        if parts[0] > 23 or parts[1] > 59 or (len(parts) == 3 and parts[2] > 59):
            raise KeyedError("sv_time_range", value=value)
        return time(*parts)
    return value


def _check_range(value: tuple[time, time]) -> tuple[time, time]:
    start, end = value
    if not start < end:
        raise KeyedError("sv_start_before_end", start=f"{start:%H:%M}", end=f"{end:%H:%M}")
    return value


def _scalar_to_str(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _disposition(value: Any) -> Any:
    if isinstance(value, float):
        raise KeyedError("sv_disposition_number", value=value)
    if isinstance(value, str) and not AAPOR_PATTERN.match(value):
        raise KeyedError("sv_disposition_code", value=value)
    return value


ClockTime = Annotated[time, BeforeValidator(_to_clock)]
TimeRange = Annotated[tuple[ClockTime, ClockTime], AfterValidator(_check_range)]
Disposition = Annotated[str, BeforeValidator(_disposition)]
#: Localised text: language tag (``zh-CN``, ``en``) -> text. Completeness is checked by the loader.
LocalText = dict[str, str]
PipingValue = Annotated[str, BeforeValidator(_scalar_to_str)]
StrKey = Annotated[str, BeforeValidator(_scalar_to_str)]


def _no_overlaps(ranges: list[tuple[time, time]], what: str) -> None:
    ordered = sorted(ranges)
    for (s1, e1), (s2, e2) in zip(ordered, ordered[1:], strict=False):
        if s2 < e1:  # touching (e1 == s2) is fine
            raise KeyedError(what, a=f"{s1:%H:%M}-{e1:%H:%M}", b=f"{s2:%H:%M}-{e2:%H:%M}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------------------------------------------
# Models


class Scale(_Model):
    """An answer scale: substantive codes (``labels``) and non-substantive ones (``missing``: 8, 9 …)."""

    labels: dict[int, LocalText] = Field(default_factory=dict)
    missing: dict[int, LocalText] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Scale:
        if not self.labels:
            raise KeyedError("sv_scale_no_labels")
        both = sorted(set(self.labels) & set(self.missing))
        if both:
            raise KeyedError("sv_scale_label_and_missing", codes=both)
        return self

    @property
    def codes(self) -> list[int]:
        """All valid codes: labels then missing codes, in file order."""
        return [*self.labels, *self.missing]


class Terminate(_Model):
    """End the interview with ``disposition`` when ``if`` holds after the question is answered."""

    condition: str = Field(alias="if", min_length=1)
    disposition: Disposition


class Question(_Model):
    """One screen of the questionnaire."""

    code: str
    type: Literal["info", "single", "rating", "multi", "open", "numeric"]
    section: str | None = None
    scale: str | None = None
    text: LocalText
    ask_if: str | None = None
    terminate: Terminate | None = None
    max_length: int | None = Field(default=None, ge=1)
    min: float | None = None
    max: float | None = None
    #: Multiple choice: how many substantive options must / may be chosen (missing codes are exclusive).
    min_choices: int | None = Field(default=None, ge=1)
    max_choices: int | None = Field(default=None, ge=1)
    #: "Other, please specify": the label code of the scale that asks for a text, captured as the answer
    #: ``<code>_other`` (required when that option is chosen, at most ``other_max_length`` characters).
    other_code: int | None = None
    other_max_length: int = Field(default=200, ge=1)
    #: Offer the study's ``prefer_not_to_say`` code on this question (a missing code: it never scores).
    prefer_not: bool = False

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        if not CODE_PATTERN.match(v) or keyword.iskeyword(v) or v in RESERVED_CODES:
            raise KeyedError("sv_question_code", code=v)
        return v


class PreferNot(_Model):
    """The study's "prefer not to say" answer: one code (outside every scale's labels) and its label."""

    code: int
    label: LocalText


class IndicatorItem(_Model):
    code: str
    weight: float = Field(ge=0)


class Indicator(_Model):
    """A first-level indicator: a weighted set of rating items."""

    code: str
    weight: float = Field(ge=0)
    name: LocalText
    items: list[IndicatorItem] = Field(min_length=1)


class ScoringConfig(_Model):
    """How answers become 0-100 scores (docs/domain.md §3)."""

    item_scores: dict[int, float]
    missing_codes: list[int] = Field(default_factory=list)
    min_answered_share: float = Field(default=0.5, ge=0, le=1)
    composite: Literal["weighted_mean_available"] = "weighted_mean_available"
    industry_aggregation: Literal["enterprise_mean", "respondent_mean"] = "enterprise_mean"
    outcome: str | None = None
    callback_item: str | None = None
    bootstrap_replicates: int = Field(default=2000, ge=1)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    #: ``composite``: weighted indicator composite (the CSAT study); ``index``: a headline index = the mean score
    #: of ``index_item``, with section scores, breakdowns and drivers (the staff happiness study).
    kind: Literal["composite", "index"] = "composite"
    index_item: str | None = None
    #: Driver items of an index study (default: the scored items outside the index item's indicator).
    driver_items: list[str] = Field(default_factory=list)
    #: Answer questions to break scores down by (basic information), and the smallest cell shown.
    breakdowns: list[str] = Field(default_factory=list)
    min_cell_size: int = Field(default=5, ge=1)


class VariableQuota(_Model):
    """Targets of completes by the value of a sample column or an answer (e.g. gender, region)."""

    variable: str
    source: Literal["sample", "answer"] = "sample"
    per: Literal["enterprise", "industry", "study"] = "study"
    targets: dict[StrKey, Annotated[int, Field(ge=0)]] = Field(min_length=1)


class QuotaConfig(_Model):
    per_enterprise: int = Field(ge=1)
    count_in_progress: bool = True
    per_industry: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    by_variable: list[VariableQuota] = Field(default_factory=list)


#: The quota of a study without one (a web study: an enterprise link is open to all its staff): no target is
#: ever reached and in-progress responses hold no slot.
NO_QUOTA_TARGET = 1_000_000
NO_QUOTA = QuotaConfig(per_enterprise=NO_QUOTA_TARGET, count_in_progress=False)


class CallingWindows(_Model):
    """Respondent-local times when calls may be placed."""

    weekday: list[TimeRange] = Field(default_factory=list)
    weekend: list[TimeRange] = Field(default_factory=list)

    @field_validator("weekday", "weekend")
    @classmethod
    def _disjoint(cls, v: list[tuple[time, time]]) -> list[tuple[time, time]]:
        _no_overlaps(v, "sv_windows_overlap")
        return sorted(v)

    @model_validator(mode="after")
    def _some(self) -> CallingWindows:
        if not self.weekday and not self.weekend:
            raise KeyedError("sv_no_window")
        return self


class SampleRelease(_Model):
    """Automatic release of an enterprise's next replicate (自动释放样本).

    ``need`` (the default): a replicate is released only when the sample already released cannot do the work —
    the team is short of callable cases (fewer than ``callable_per_interviewer`` callable cases per interviewer at
    work, or none at all for the interviewer asking: then the neediest enterprises with sample left get their next
    replicate), or an enterprise's workable open cases are fewer than ``min_open_per_needed`` × the completes it
    still needs. Fresh sample is drawn as queXS draws it, when existing cases run out, and kept for the end of
    the fieldwork instead of being dialed once and closed when the quota fills.
    ``projected``: the earlier rule — release for every enterprise whose open cases × ``prior_yield`` fall short
    of its quota (opens most of the sample on the first day). ``manual``: supervisors only.
    """

    mode: Literal["need", "projected", "manual"] = "need"
    callable_per_interviewer: float = Field(default=2.0, ge=0.0, le=100.0)
    min_open_per_needed: float = Field(default=1.0, ge=0.0, le=100.0)
    prior_yield: float = Field(default=0.08, gt=0.0, le=1.0)


class Dialing(_Model):
    """How the study's calls are placed (issue 18): ``preview`` (the interviewer presses dial), ``progressive``
    (one call per ready interviewer) or ``predictive`` (the team dialer paces several dials per free interviewer,
    holding abandoned calls — a person answered and nobody was free within 2 s — under ``abandon_target``, a
    share of the calls answered by a person over the day and the last hour). ``abandon_ceiling`` is the hard cap
    on the target (Ofcom/FTC: 3 %); supervisors set the mode and the target up to it, only an admin raises it."""

    mode: Literal["preview", "progressive", "predictive"] = "preview"
    abandon_target: float = Field(default=0.03, gt=0.0, le=0.10)
    abandon_ceiling: float = Field(default=0.03, gt=0.0, le=0.10)

    @model_validator(mode="after")
    def _under_ceiling(self) -> Dialing:
        if self.abandon_target > self.abandon_ceiling + 1e-12:
            raise KeyedError("dialing_target_above_ceiling", target=f"{100 * self.abandon_target:g}",
                             ceiling=f"{100 * self.abandon_ceiling:g}")
        return self


class CallingRules(_Model):
    timezone_default: str
    windows: CallingWindows
    day_parts: dict[str, TimeRange] = Field(default_factory=dict)
    max_attempts: int = Field(ge=1)
    claim_timeout_minutes: int = Field(default=20, ge=1)
    appointment_window_minutes: int = Field(default=15, ge=0)
    appointment_grace_minutes: int = Field(default=60, ge=0)
    #: Best time to call: a case is dialed after every other callable case while its learned chance of reaching
    #: someone now is below this share of the best chance in a coming part of the day (0 = no preference).
    best_time_ratio: float = Field(default=0.0, ge=0.0, le=1.0)
    #: Prior contact weights (weekday/weekend → part of the day → weight, weekday morning = 1) used until the
    #: study's own dials say otherwise.
    contact_prior: dict[Literal["weekday", "weekend"], dict[str, Annotated[float, Field(gt=0, le=10)]]] = Field(
        default_factory=dict)
    #: Overrides of the scheduler's retry delays by attempt outcome (AAPOR code -> minutes).
    retry_minutes: dict[Disposition, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    #: A case stops (final code from its attempts) once its last this-many outcomes were all this code, e.g.
    #: 3.15 (call blocking: the number rejects unknown callers) after 2 in a row; max_attempts still applies.
    stop_after_consecutive: dict[Disposition, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    #: When the next replicate of an enterprise is released without a supervisor (see SampleRelease).
    sample_release: SampleRelease = Field(default_factory=SampleRelease)
    #: Preview, progressive or predictive dialing, and the abandoned-call target and ceiling (see Dialing).
    dialing: Dialing = Field(default_factory=Dialing)

    @field_validator("timezone_default")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise KeyedError("sv_time_zone", value=v) from None
        return v

    @field_validator("day_parts")
    @classmethod
    def _parts(cls, v: dict[str, tuple[time, time]]) -> dict[str, tuple[time, time]]:
        _no_overlaps(list(v.values()), "sv_day_parts_overlap")
        return v

    @field_validator("stop_after_consecutive")
    @classmethod
    def _temporary_only(cls, v: dict[str, int]) -> dict[str, int]:
        from cati.services.dispositions import catalogue

        cat = catalogue()
        final = sorted(code for code in v if cat.get_code(code).final)
        if final:
            raise KeyedError("sv_stop_after_final", code=final[0])
        return v

    @model_validator(mode="after")
    def _prior_parts(self) -> CallingRules:
        names = set(self.day_parts) or {"morning", "afternoon", "evening"}
        for kind, table in self.contact_prior.items():
            unknown = sorted(set(table) - names)
            if unknown:
                raise KeyedError("sv_contact_prior_part", kind=kind, part=unknown[0], parts=", ".join(sorted(names)))
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone_default)


class RejectedInterviews(_Model):
    """What happens to the case of a complete that QC rejected as suspect (issue 20, item 8)."""

    #: "verify": the case is called again for verification by another interviewer than the one whose interview
    #: was rejected, ``delay_hours`` later (time to listen to the recording, and no redial a minute later);
    #: "close": the case closes with ``close_with``.
    action: Literal["verify", "close"] = "verify"
    delay_hours: float = Field(default=24, ge=0, le=24 * 14)
    close_with: Disposition = "2.90"

    @field_validator("close_with")
    @classmethod
    def _final(cls, v: str) -> str:
        from cati.services.dispositions import catalogue

        d = catalogue().get_code(v)
        if not d.final or d.symbol.value == "I" or d.max_attempts:
            raise KeyedError("sv_close_with", code=v)
        return v


class QCConfig(_Model):
    rejected: RejectedInterviews = Field(default_factory=RejectedInterviews)
    #: A complete shorter than this share of the median length of the study's completes is flagged a speeder
    #: (web responses: the time spent on the questions, summed).
    speeder_share: float = Field(default=0.5, gt=0, lt=1)
    #: A complete whose rating answers (at least this many, prefer-not and don't-know left out) are all the same
    #: value is flagged as straight-lined.
    straightline_min_items: int = Field(default=8, ge=2)


def _jsonable(value: Any) -> Any:
    """YAML dates (``end_date: 2026-12-20``) as ISO strings: the raw mapping is stored as JSON."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


class FieldworkPlan(_Model):
    """When fieldwork runs: the board projects the finish against ``end_date`` and warns when it is at risk."""

    start_date: date | None = None
    end_date: date | None = None
    confidence: float = Field(default=0.8, gt=0.5, lt=1)  # width of the projected finish interval

    @model_validator(mode="after")
    def _order(self) -> FieldworkPlan:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise KeyedError("sv_fieldwork_dates", end=self.end_date, start=self.start_date)
        return self


class Study(_Model):
    """A whole study file. ``raw`` keeps the mapping it was built from (for export and the database)."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    version: int = Field(ge=1)
    title: LocalText
    languages: list[str] = Field(min_length=1)
    default_language: str
    firm_name: LocalText
    piping_defaults: dict[str, PipingValue] = Field(default_factory=dict)
    scales: dict[str, Scale]
    questions: list[Question] = Field(min_length=1)
    indicators: list[Indicator] = Field(default_factory=list)
    scoring: ScoringConfig
    #: How respondents answer: ``cati`` (interviewers call), ``cawi`` (web self-completion) or ``mixed`` (both).
    #: A cawi study needs no calling rules or quota; it gives its respondents' ``timezone`` instead (the loader
    #: checks which parts the mode requires).
    mode: Literal["cati", "cawi", "mixed"] = "cati"
    timezone: str | None = None
    prefer_not_to_say: PreferNot | None = None
    quota: QuotaConfig | None = None
    calling_rules: CallingRules | None = None
    qc: QCConfig = Field(default_factory=QCConfig)
    fieldwork: FieldworkPlan = Field(default_factory=FieldworkPlan)

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)
    _by_code: dict[str, Question] = PrivateAttr(default_factory=dict)
    _warnings: list[Any] = PrivateAttr(default_factory=list)
    _engine: Any = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: Any) -> Study:
        study = handler(data)
        if isinstance(data, Mapping):
            study._raw = _jsonable(copy.deepcopy(dict(data)))
        return study

    @field_validator("languages")
    @classmethod
    def _langs(cls, v: list[str]) -> list[str]:
        bad = [x for x in v if not LANGUAGE_PATTERN.match(x)]
        if bad:
            raise KeyedError("sv_language_tags", bad=bad)
        dup = sorted({x for x in v if v.count(x) > 1})
        if dup:
            raise KeyedError("sv_languages_twice", dup=dup)
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {v!r} (expected an IANA name such as Asia/Shanghai)") from None
        return v

    @property
    def zone_name(self) -> str:
        """The respondents' default time zone: ``calling_rules.timezone_default``, else ``timezone``."""
        if self.calling_rules is not None:
            return self.calling_rules.timezone_default
        assert self.timezone is not None  # checked by the loader
        return self.timezone

    def model_post_init(self, context: Any, /) -> None:
        self._by_code = {}
        for q in self.questions:
            self._by_code.setdefault(q.code, q)

    # -- convenience --------------------------------------------------------------------------------------
    @property
    def raw(self) -> dict[str, Any]:
        """The mapping the study was validated from (a deep copy; not validated again)."""
        return self._raw

    @property
    def warnings(self) -> list[Any]:
        """Non-fatal findings of the loader (``Problem`` objects), e.g. placeholders left to sample columns."""
        return self._warnings

    @property
    def question_codes(self) -> list[str]:
        return [q.code for q in self.questions]

    def question(self, code: str) -> Question:
        """The question with this code; ``KeyError`` naming the study if there is none."""
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"study {self.id!r} has no question {code!r}") from None

    def scale_of(self, code: str) -> Scale | None:
        """The answer scale of a question (``None`` for info, open and numeric questions)."""
        q = self.question(code)
        return self.scales[q.scale] if q.scale else None

    @property
    def item_codes(self) -> list[str]:
        """Scored item codes in indicator order (A1 … F4 for the default study)."""
        return [item.code for ind in self.indicators for item in ind.items]

    def language(self, lang: str | None) -> str:
        """``lang`` if the study has it, else the default language."""
        return lang if lang in self.languages else self.default_language

    def localise(self, localised: Mapping[str, str], lang: str | None) -> str:
        """Pick a language from a localised text, falling back to the default language, then any."""
        lang = self.language(lang)
        if lang in localised:
            return localised[lang]
        if self.default_language in localised:
            return localised[self.default_language]
        return next(iter(localised.values()), "")

    def piping_values(self, lang: str | None, context: Mapping[str, Any] | None = None) -> dict[str, str]:
        """Values for placeholders: ``context`` first, then ``piping_defaults``, then the study's firm name.

        A context value may itself be localised (a mapping of language -> text); empty values (None, "")
        count as missing so the default applies.
        """
        lang = self.language(lang)
        values: dict[str, str] = {"firm_name": self.localise(self.firm_name, lang)}
        values.update(self.piping_defaults)
        for key, value in (context or {}).items():
            if value is None or value == "":
                continue
            if isinstance(value, Mapping):
                if not value:
                    continue
                value = self.localise(value, lang)
            values[key] = str(value)
        return values

    def text(self, localised: Mapping[str, str], lang: str | None = None, **context: Any) -> str:
        """Localised text with ``{placeholders}`` piped in (see :meth:`piping_values`).

        Examples
        --------
        >>> study.text(study.question("S1").text, "en", enterprise_name="ACME Bank")  # doctest: +SKIP
        'In the last 3 months, have you called the customer-service hotline of ACME Bank?'
        """
        return pipe(self.localise(localised, lang), self.piping_values(lang, context))


def all_field_names() -> frozenset[str]:
    """Every key a study file may use anywhere (for "did you mean" hints)."""
    names: set[str] = set()
    for model in (Scale, Terminate, Question, PreferNot, IndicatorItem, Indicator, ScoringConfig, VariableQuota,
                  QuotaConfig, CallingWindows, SampleRelease, CallingRules, Study):
        for name, field in model.model_fields.items():
            names.add(field.alias or name)
    return frozenset(names)
