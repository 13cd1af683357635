"""The questionnaire engine: routing, validation, pruning and rendering of one study. Pure: no database, no Flask.

Over 600 lines on purpose: routing, piping, answer validation and the choice rules (limits, other-specify,
prefer-not-to-say) act on the same question model and must agree.

Routing rule. The route is computed in one pass in questionnaire order: a question is *on the route* when its
``ask_if`` holds given the answers to the questions on the route before it (answers to questions off the route are
ignored, so a stale answer left behind by back-navigation can never steer routing). The pass stops at the first
question whose ``terminate`` rule fires. Questions after the first unanswered one are a projection: their ``ask_if``
sees the unanswered question as ``None``.

Typical use by the interviewer console, one call per key press::

    q = Questionnaire.for_study(study)          # compiled once per study, cached on it
    code = q.first()
    step = q.advance(answers, code, raw_input)  # validate, store, prune, terminate?, next
    # persist step.answers (and record step.dropped as revisions), then show q.render(step.next_code, lang, ctx)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cati import i18n
from cati.study.conditions import Condition, compile_condition, is_answered
from cati.study.schema import Study

__all__ = ["AnswerError", "Questionnaire", "Step"]

# Types whose empty value counts as "not answered" (mirrors conditions.is_answered).
_SIZED = (str, list, tuple, set, frozenset, dict)


def _param_text(value: Any, lang: str) -> str:
    if isinstance(value, Mapping):  # a localised label
        return str(value.get(lang) or value.get("zh-CN") or next(iter(value.values()), ""))
    if isinstance(value, list | tuple):
        return i18n.gettext("list_sep", lang).join(_param_text(v, lang) for v in value)
    return str(value)


class AnswerError(ValueError):
    """An answer that the question does not accept.

    Carries a message ``key`` of the ``messages`` catalogue (an ``answer_*`` key, see docs/i18n.md) and its
    ``params``, not finished text: ``message(lang)`` renders it in the respondent's or interviewer's language. A
    parameter may be a localised label (``{"zh-CN": …, "en": …}``); lists are joined with the language's separator.

    Examples
    --------
    >>> err = AnswerError("Q1", "answer_too_many_choices", max=3, n=4)
    >>> err.key, err.params
    ('answer_too_many_choices', {'max': 3, 'n': 4})
    >>> err.message("en"), err.message("zh-CN")
    ('choose at most 3 options (you chose 4)', '最多选择 3 项（已选 4 项）')
    """

    def __init__(self, code: str, key: str, **params: Any):
        if not i18n.has_key(key):
            raise KeyError(f"no answer-error message {key!r} in the messages catalogue")
        self.code = code
        self.key = key
        self.params = params
        super().__init__(f"{code}: {self.message('zh-CN')} / {self.message('en')}")

    @property
    def messages(self) -> dict[str, str]:
        """The message in every UI language."""
        return {lang: self.message(lang) for lang in i18n.LANGUAGES}

    def message(self, lang: str | None = "zh-CN") -> str:
        """The message in ``lang`` (zh-CN when the language is unknown)."""
        lang = i18n.language_for(lang)
        return i18n.lookup(self.key, lang, {k: _param_text(v, lang) for k, v in self.params.items()}, strict=True)


@dataclass(frozen=True)
class Step:
    """Result of :meth:`Questionnaire.advance`.

    Attributes
    ----------
    code : str
        The question answered.
    value : object
        The validated answer.
    answers : dict
        All answers after the step, pruned to the route (store these).
    dropped : dict
        Earlier answers that fell off the route because of this answer (audit them; do not lose them silently).
    termination : str or None
        AAPOR disposition if the interview ends here (e.g. ``"4.70"`` screened out).
    next_code : str or None
        The next question, or None when the interview terminated or reached its end.
    complete : bool
        True when every question on the route is answered and no termination fired.
    other : str or None
        The "other, please specify" text given with the answer (also in ``answers`` under ``<code>_other``).
    """

    code: str
    value: Any
    answers: dict[str, Any]
    dropped: dict[str, Any]
    termination: str | None
    next_code: str | None
    complete: bool
    other: str | None = None


@dataclass(frozen=True)
class _Q:
    index: int
    code: str
    type: str
    section: str | None
    scale: str | None
    ask_if: Condition | None
    terminate: Condition | None
    disposition: str | None
    labels: tuple[int, ...] = ()
    missing: tuple[int, ...] = ()
    valid: frozenset[int] = field(default_factory=frozenset)
    max_length: int | None = None
    min: float | None = None
    max: float | None = None
    min_choices: int | None = None
    max_choices: int | None = None
    other_code: int | None = None
    other_key: str | None = None
    other_max_length: int = 200
    prefer_code: int | None = None


def _chose(value: Any, code: int | None) -> bool:
    """Whether an answer picks ``code`` (a single code or one of a multi answer's codes)."""
    if code is None:
        return False
    if isinstance(value, list | tuple):
        return code in value
    return value == code


class Questionnaire:
    """Routing and answer handling for one :class:`~cati.study.schema.Study`.

    Conditions are compiled once in the constructor; use :meth:`for_study` to share one instance per study.
    """

    def __init__(self, study: Study):
        self.study = study
        qs: list[_Q] = []
        for i, q in enumerate(study.questions):
            scale = study.scales.get(q.scale) if q.scale else None
            labels = tuple(scale.labels) if scale else ()
            missing = tuple(scale.missing) if scale else ()
            prefer = study.prefer_not_to_say.code if q.prefer_not and study.prefer_not_to_say else None
            if prefer is not None and q.type != "open":
                missing = (*missing, prefer)
            qs.append(_Q(
                index=i, code=q.code, type=q.type, section=q.section, scale=q.scale,
                ask_if=compile_condition(q.ask_if) if q.ask_if else None,
                terminate=compile_condition(q.terminate.condition) if q.terminate else None,
                disposition=q.terminate.disposition if q.terminate else None,
                labels=labels, missing=missing, valid=frozenset(labels + missing),
                max_length=q.max_length, min=q.min, max=q.max,
                min_choices=q.min_choices, max_choices=q.max_choices, other_code=q.other_code,
                other_key=f"{q.code}_other" if q.other_code is not None else None,
                other_max_length=q.other_max_length, prefer_code=prefer,
            ))
        self._qs: tuple[_Q, ...] = tuple(qs)
        self._by_code: dict[str, _Q] = {}
        for q in qs:
            self._by_code.setdefault(q.code, q)
        self.codes: tuple[str, ...] = tuple(q.code for q in qs)
        self._plan = tuple(
            (q, q.code, q.type == "info", q.ask_if.evaluate if q.ask_if else None,
             q.terminate.evaluate if q.terminate else None, q.other_key, q.other_code)
            for q in qs
        )
        # Option lists per language, built once (render copies them).
        self._options: dict[tuple[str, str], tuple[tuple[int, str, bool], ...]] = {}
        for q in qs:
            if q.scale:
                scale = study.scales[q.scale]
                for lang in study.languages:
                    self._options[(q.code, lang)] = tuple(
                        [(c, study.localise(t, lang), False) for c, t in scale.labels.items()]
                        + [(c, study.localise(t, lang), True) for c, t in scale.missing.items()]
                    )
            if q.prefer_code is not None and study.prefer_not_to_say is not None:
                label = study.prefer_not_to_say.label
                for lang in study.languages:
                    self._options[(q.code, lang)] = (*self._options.get((q.code, lang), ()),
                                                     (q.prefer_code, study.localise(label, lang), True))

    @classmethod
    def for_study(cls, study: Study) -> Questionnaire:
        """The (cached) questionnaire of a study."""
        engine = study._engine
        if engine is None:
            engine = cls(study)
            study._engine = engine
        return engine

    # -- routing ----------------------------------------------------------------------------------------------
    def _q(self, code: str) -> _Q:
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"study {self.study.id!r} has no question {code!r}") from None

    def _walk(self, answers: Mapping[str, Any]) -> tuple[list[_Q], dict[str, Any], _Q | None]:
        # Hot path (several calls per key press): plain tuples and local names, no per-question method calls.
        effective: dict[str, Any] = {}
        route: list[_Q] = []
        get = answers.get
        for q, code, is_info, ask_if, terminate, other_key, other_code in self._plan:
            if ask_if is not None and not ask_if(effective):
                continue
            route.append(q)
            if not is_info:
                value = get(code)
                if value is not None and (type(value) not in _SIZED or value):
                    effective[code] = value
                    if other_key is not None and _chose(value, other_code):
                        text = get(other_key)
                        if text:
                            effective[other_key] = text
                    if terminate is not None and terminate(effective):
                        return route, effective, q
        return route, effective, None

    def first(self) -> str:
        """Code of the first question of the interview."""
        route, _, _ = self._walk({})
        return route[0].code if route else self._qs[0].code

    def next_code(self, answers: Mapping[str, Any], current: str | None) -> str | None:
        """The next question on the route after ``current`` (``None`` = before the first question).

        Returns None when the interview terminates at or before ``current``, or when ``current`` is the last
        question on the route.
        """
        if current is None:
            return self.first()
        here = self._q(current).index
        route, _, stop = self._walk(answers)
        if stop is not None and stop.index <= here:
            return None
        for q in route:
            if q.index > here:
                return q.code
        return None

    def previous_code(self, answers: Mapping[str, Any], current: str) -> str | None:
        """The question on the route before ``current`` (None at the first question)."""
        here = self._q(current).index
        route, _, _ = self._walk(answers)
        prev = None
        for q in route:
            if q.index >= here:
                break
            prev = q.code
        return prev

    def path(self, answers: Mapping[str, Any]) -> list[str]:
        """Codes of the questions on the route given ``answers`` (through a terminating question, if any)."""
        return [q.code for q in self._walk(answers)[0]]

    def grid_codes(self, answers: Mapping[str, Any], code: str) -> list[str]:
        """The rating questions the console may show as one grid, starting at ``code``.

        They are the run of questions on the route from ``code`` on that are rating questions of the same section
        and scale (A1-A4 for the default study); a single code when ``code`` is not a rating question. Answers
        given in a grid go through :meth:`advance` one by one, in this order, so routing stays exact.
        """
        start = self._q(code)
        if start.type != "rating":
            return [code]
        route, _, _ = self._walk(answers)
        run: list[str] = []
        for q in route:
            if q.index < start.index:
                continue
            if q.type != "rating" or q.section != start.section or q.scale != start.scale:
                break
            run.append(q.code)
        return run or [code]

    def termination(self, code: str, answers: Mapping[str, Any]) -> str | None:
        """The disposition if the interview ends at or before question ``code`` given ``answers``, else None."""
        here = self._q(code).index
        _, _, stop = self._walk(answers)
        if stop is not None and stop.index <= here:
            return stop.disposition
        return None

    def terminated(self, answers: Mapping[str, Any]) -> tuple[str, str] | None:
        """``(question code, disposition)`` of the termination the answers lead to, if any."""
        _, _, stop = self._walk(answers)
        return (stop.code, stop.disposition or "") if stop is not None else None

    def prune(self, answers: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split answers into those on the route and those that fell off it.

        After back-navigation changes an answer, questions may leave the route (D0 changed from 1 to 2 drops
        D1-D3); answers after a firing termination and answers to unknown codes are dropped too.

        Returns
        -------
        kept : dict
            Answers on the route, in questionnaire order.
        dropped : dict
            The other (non-empty) answers.
        """
        _, kept, _ = self._walk(answers)
        dropped = {c: v for c, v in answers.items() if c not in kept and is_answered(v)}
        return kept, dropped

    def progress(self, answers: Mapping[str, Any], current: str) -> tuple[int, int]:
        """``(position, total)`` of ``current`` on the projected route (1-based)."""
        here = self._q(current).index
        route, _, _ = self._walk(answers)
        position = 1 + sum(1 for q in route if q.index < here)
        return position, max(len(route), position)

    def is_complete(self, answers: Mapping[str, Any]) -> bool:
        """True when the route reaches the end with every non-info question on it answered."""
        route, effective, stop = self._walk(answers)
        if stop is not None:
            return False
        return all(_done(q, effective) for q in route)

    # -- answers ----------------------------------------------------------------------------------------------
    def validate(self, code: str, raw: Any) -> Any:
        """Check and normalise one answer.

        Returns an ``int`` code for single/rating, a sorted list of codes for multi, stripped text for open (or the
        prefer-not-to-say code), an ``int`` or ``float`` for numeric and ``None`` for info screens. A question with
        an "other, please specify" option takes ``{"value": …, "other": "text"}``; see :meth:`validate_full` for
        the text.

        Raises
        ------
        AnswerError
            With a message key and parameters naming what is accepted.
        """
        return self.validate_full(code, raw)[0]

    def validate_full(self, code: str, raw: Any) -> tuple[Any, str | None]:
        """:meth:`validate`, and the "other, please specify" text (``None`` unless the other option is chosen).

        Raises
        ------
        AnswerError
            ``other_required`` when the other option is chosen without a text, ``other_too_long`` past
            ``other_max_length``; the errors of :meth:`validate`.
        """
        q = self._q(code)
        other: Any = None
        if q.other_key is not None and isinstance(raw, Mapping):
            other, raw = raw.get("other"), raw.get("value")
        value = self._validate_value(q, raw)
        if q.other_key is None or not _chose(value, q.other_code):
            return value, None  # a leftover text of an unticked "other" is ignored
        text = other.strip() if isinstance(other, str) else ""
        label = self._label(q, q.other_code)
        if not text:
            raise AnswerError(code, "answer_other_required", label=label)
        if len(text) > q.other_max_length:
            raise AnswerError(code, "answer_other_too_long", label=label, n=len(text), max=q.other_max_length)
        return value, text

    def _label(self, q: _Q, code: int | None) -> dict[str, str]:
        """The option's label in every language (a localised error parameter)."""
        return {lang: next((t for c, t, _ in self._options.get((q.code, lang), ()) if c == code), str(code))
                for lang in self.study.languages}

    def _validate_value(self, q: _Q, raw: Any) -> Any:
        code = q.code
        if q.type == "info":
            return None
        if q.type in ("single", "rating"):
            value = _as_int(raw)
            if value is None or value not in q.valid and value != q.prefer_code:
                raise AnswerError(code, "answer_choose_one", codes=_codes(q), got=_show(raw))
            return value
        if q.type == "multi":
            return self._validate_multi(q, raw)
        if q.type == "open":
            if q.prefer_code is not None and type(raw) is int and raw == q.prefer_code:
                return raw
            if not isinstance(raw, str) or not raw.strip():
                raise AnswerError(code, "answer_required")
            text = raw.strip()
            if q.max_length is not None and len(text) > q.max_length:
                raise AnswerError(code, "answer_too_long", n=len(text), max=q.max_length)
            return text
        # numeric
        number = _as_number(raw)
        if number is None:
            raise AnswerError(code, "answer_not_a_number", got=_show(raw))
        if (q.min is not None and number < q.min) or (q.max is not None and number > q.max):
            lo = "-∞" if q.min is None else _fmt(q.min)
            hi = "∞" if q.max is None else _fmt(q.max)
            raise AnswerError(code, "answer_out_of_range", min=lo, max=hi, got=_fmt(number))
        return number

    def _validate_multi(self, q: _Q, raw: Any) -> list[int]:
        if isinstance(raw, str):
            parts: list[Any] = [p for p in raw.replace(",", " ").replace("，", " ").split() if p]
        elif isinstance(raw, list | tuple | set | frozenset):
            parts = list(raw)
        else:
            parts = [raw]
        values = [_as_int(p) for p in parts]
        if not values or any(v is None or v not in q.valid for v in values):
            raise AnswerError(q.code, "answer_choose_some", codes=_codes(q), got=_show(raw))
        chosen: list[int] = sorted(set(values))  # type: ignore[arg-type]
        missing = [v for v in chosen if v in q.missing]
        if missing and len(chosen) > 1:
            raise AnswerError(q.code, "answer_exclusive", label=self._label(q, missing[0]))
        if not missing:
            n = len(chosen)
            if q.min_choices is not None and n < q.min_choices:
                raise AnswerError(q.code, "answer_too_few_choices", min=q.min_choices, n=n)
            if q.max_choices is not None and n > q.max_choices:
                raise AnswerError(q.code, "answer_too_many_choices", max=q.max_choices, n=n)
        return chosen

    def advance(self, answers: Mapping[str, Any], code: str, raw: Any) -> Step:
        """Validate ``raw`` as the answer to ``code`` and move on: the one call per key press.

        Raises
        ------
        AnswerError
            If the answer is invalid (nothing changes).
        """
        value, other = self.validate_full(code, raw)
        q = self._q(code)
        here = q.index
        merged = dict(answers)
        if value is None:
            merged.pop(code, None)
        else:
            merged[code] = value
        if other is not None:
            merged[q.other_key] = other  # type: ignore[index]
        # An earlier "other" text left when the option is no longer chosen falls off the route: it is dropped.
        # One pass gives everything: the route of the merged answers is the route of the kept ones.
        route, kept, stop = self._walk(merged)
        dropped = {c: v for c, v in merged.items() if c not in kept and is_answered(v)}
        disposition = stop.disposition if stop is not None and stop.index <= here else None
        nxt = None
        if stop is None or stop.index > here:
            nxt = next((q.code for q in route if q.index > here), None)
        complete = stop is None and nxt is None and all(_done(r, kept) for r in route)
        return Step(code, value, kept, dropped, disposition, nxt, complete, other)

    def advance_through(self, answers: Mapping[str, Any], start: str) -> tuple[list[tuple[str, Any]], Step | None]:
        """Answer a fresh interview from ``start`` onwards in one pass: what :meth:`advance` would do answer by
        answer, following the route while ``answers`` has the next question.

        For machine-made interviews (the simulator, paper questionnaires keyed in later). Each :meth:`advance`
        walks the whole questionnaire, so answering question by question costs O(n²) walks; conditions only look
        at earlier questions, so with no later answers stored the route after an answer is known from the
        answers so far and one forward walk suffices. The last step is computed by :meth:`advance` itself.

        Returns
        -------
        (answered, step)
            ``answered``: ``(code, validated value)`` of every question answered, info screens included, in
            order (an "other, please specify" text follows its question as ``(<code>_other, text)``); ``step``: the :class:`Step` of the last answer (None when ``start`` has no answer).

        Raises
        ------
        AnswerError
            At the first invalid answer (nothing is returned).
        """
        plan = self._plan
        i = self._q(start).index
        effective: dict[str, Any] = {}
        answered: list[tuple[str, Any]] = []
        while True:
            q, code, is_info, _ask_if, terminate, other_key, _other_code = plan[i]
            if code not in answers:
                break
            value, other = self.validate_full(code, _raw_of(answers, q))
            answered.append((code, value))
            if other is not None:
                answered.append((other_key, other))
            if not is_info and value is not None and (type(value) not in _SIZED or value):
                effective[code] = value
                if other is not None:
                    effective[other_key] = other
                if terminate is not None and terminate(effective):
                    break
            i += 1
            while i < len(plan) and plan[i][3] is not None and not plan[i][3](effective):
                i += 1
            if i == len(plan):
                break
        if not answered:
            return answered, None
        last = next(c for c, _ in reversed(answered) if c in self._by_code)
        last_q = self._q(last)
        # The answers before the last one: each question is answered once, so that is all but the last.
        before = {c: v for c, v in effective.items() if c not in (last, last_q.other_key)}
        return answered, self.advance(before, last, _raw_of(answers, last_q))

    # -- rendering --------------------------------------------------------------------------------------------
    def render(self, code: str, lang: str | None = None, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What the console shows for a question.

        Parameters
        ----------
        code : str
            Question code.
        lang : str, optional
            ``zh-CN`` or ``en``; unknown languages fall back to the study default.
        context : mapping, optional
            Piping values (enterprise_name, interviewer_name, sample attributes …). Missing values fall back to
            ``piping_defaults``, then show as ``[name]``.

        Returns
        -------
        dict
            ``code, type, section, lang, text, options, max_length, min, max, min_choices, max_choices,
            other_code, other_key, other_max_length, prefer_not_code``; ``options`` is a list of
            ``{"code": 5, "key": "5", "label": "非常满意", "missing": False}`` with missing codes (8, 9, then the
            prefer-not-to-say code) last. Labels and text are plain text: escape them when writing HTML.
        """
        q = self._q(code)
        study = self.study
        lang = study.language(lang)
        text = study.text(study.question(code).text, lang, **(context or {}))
        options = [{"code": c, "key": str(c), "label": label, "missing": miss}
                   for c, label, miss in self._options.get((code, lang), ())]
        return {"code": code, "type": q.type, "section": q.section, "lang": lang, "text": text,
                "options": options, "max_length": q.max_length, "min": q.min, "max": q.max,
                "min_choices": q.min_choices, "max_choices": q.max_choices, "other_code": q.other_code,
                "other_key": q.other_key, "other_max_length": q.other_max_length if q.other_key else None,
                "prefer_not_code": q.prefer_code}


def _as_int(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        t = raw.strip()
        if t.lstrip("-").isdigit() and t.isascii():
            return int(t)
    return None


def _as_number(raw: Any) -> int | float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return raw if math.isfinite(raw) else None
    if isinstance(raw, str) and raw.strip().isascii():
        t = raw.strip()
        try:
            return int(t)
        except ValueError:
            pass
        try:
            f = float(t)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _show(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


def _codes(q: _Q) -> list[int]:
    return [*q.labels, *q.missing] if q.prefer_code is None or q.prefer_code in q.missing \
        else [*q.labels, *q.missing, q.prefer_code]


def _done(q: _Q, answers: Mapping[str, Any]) -> bool:
    """A question on the route is done: info, or answered (with its "other" text when that option is chosen)."""
    if q.type == "info":
        return True
    if q.code not in answers:
        return False
    return q.other_key is None or q.other_key in answers or not _chose(answers[q.code], q.other_code)


def _raw_of(answers: Mapping[str, Any], q: _Q) -> Any:
    """The raw answer of ``q`` in a stored-answers mapping, with its "other" text when there is one."""
    raw = answers[q.code]
    if q.other_key is not None and q.other_key in answers and not isinstance(raw, Mapping):
        return {"value": raw, "other": answers[q.other_key]}
    return raw
