"""Load and validate study files, reporting *every* problem with the file and the path inside it.

Over 600 lines on purpose: every semantic check of a study file reports into one collector with paths and
lines; the checks are short and independent, and one file keeps them findable.

>>> study = load_study("config/studies/csat_contact_center.yaml")  # doctest: +SKIP

A broken file raises :class:`StudyError`; ``str(err)`` lists one problem per line::

    config/studies/x.yaml: questions[12].ask_if: unknown question 'X9' (line 87)

Validation runs in two passes over the same mapping, and both always run so one mistake does not hide another:
the pydantic models (shape, types, unknown keys, time windows) and the semantic checks below (cross references,
weights, translations, placeholders, scoring codes).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from cati.i18n import KeyedError, KeyedText, render
from cati.study.conditions import ConditionError, compile_condition
from cati.study.schema import (
    AAPOR_CODES,
    BUILTIN_PLACEHOLDERS,
    SCALED_TYPES,
    Study,
    all_field_names,
    scan_placeholders,
)

__all__ = ["DEFAULT_STUDY_PATH", "Problem", "StudyError", "load_study", "validate_study_mapping"]

#: The default study shipped with the repository (present in a source checkout / editable install).
DEFAULT_STUDY_PATH = Path(__file__).resolve().parents[2] / "config" / "studies" / "csat_contact_center.yaml"

WEIGHT_TOLERANCE = 1e-6

#: Messages are catalogue keys with fields (``sv_*`` in cati/translations); ``str()`` of one is its English text.
_k = KeyedText

# libyaml's loader is ~10x faster and reports the same node marks; the pure-Python one is the fallback.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Problem:
    """One finding: ``file``, ``path`` inside it (``questions[12].ask_if``), ``message``; line if known.

    ``message`` is the English text; when it is a :class:`~cati.i18n.KeyedText` (every message the loader writes)
    ``key`` and ``params`` say it for the catalogue, and :meth:`text` renders it in another language.
    """

    file: str
    path: str
    message: str
    line: int | None = None
    column: int | None = None
    severity: Literal["error", "warning"] = "error"

    @property
    def key(self) -> str:
        """The catalogue key of the message ('' for a message that has none)."""
        return getattr(self.message, "key", "")

    @property
    def params(self) -> Mapping[str, Any]:
        """The fields of the keyed message."""
        return getattr(self.message, "params", {})

    def text(self, lang: str | None = "zh-CN") -> str:
        """The message in ``lang`` (keyed messages through the catalogue; others as written)."""
        return render(self.message, lang)

    def __str__(self) -> str:
        if not self.path and self.line is not None:
            where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
            return f"{self.file}: {where}: {self.message}"
        text = f"{self.file}: {self.path or '(top level)'}: {self.message}"
        if self.line is not None:
            text += f" (line {self.line})"
        return text


class StudyError(ValueError):
    """A study file that cannot be used. ``problems`` holds every error; ``warnings`` the non-fatal findings."""

    def __init__(self, problems: list[Problem], warnings: list[Problem] | None = None):
        self.problems = list(problems)
        self.warnings = list(warnings or [])
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


# --------------------------------------------------------------------------------------------------------------
# YAML with positions


def _parse_yaml(text: str, source: str) -> tuple[Any, dict[str, tuple[int, int]], list[Problem]]:
    """Parse YAML; return data, a map path -> (line, column), and problems (duplicate keys)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        raise StudyError([Problem(source, "", _k("sv_yaml_syntax", what=what),
                                  line=mark.line + 1 if mark else None,
                                  column=mark.column + 1 if mark else None)]) from None
    except yaml.YAMLError as exc:
        raise StudyError([Problem(source, "", _k("sv_yaml_error", detail=str(exc)))]) from None
    finally:
        loader.dispose()
    lines: dict[str, tuple[int, int]] = {}
    problems: list[Problem] = []
    if node is not None:
        _index_nodes(node, "", (node.start_mark.line + 1, node.start_mark.column + 1), lines, problems, source)
    return data, lines, problems


def _index_nodes(node: yaml.Node, path: str, mark: tuple[int, int], lines: dict[str, tuple[int, int]],
                 problems: list[Problem], source: str) -> None:
    lines.setdefault(path, mark)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for knode, vnode in node.value:
            key = str(knode.value) if isinstance(knode, yaml.ScalarNode) else "?"
            sub = f"{path}.{key}" if path else key
            kmark = (knode.start_mark.line + 1, knode.start_mark.column + 1)
            if key in seen and key != "<<":
                problems.append(Problem(source, sub, _k("sv_duplicate_key", key=key, line=seen[key]), *kmark))
            seen.setdefault(key, kmark[0])
            _index_nodes(vnode, sub, kmark, lines, problems, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_nodes(item, f"{path}[{i}]", (item.start_mark.line + 1, item.start_mark.column + 1),
                         lines, problems, source)


# --------------------------------------------------------------------------------------------------------------
# Public entry points


def load_study(path: str | Path) -> Study:
    """Read, parse and validate a study file.

    Parameters
    ----------
    path : str or Path
        A YAML study file (UTF-8, BOM allowed).

    Returns
    -------
    Study
        Validated study; ``study.warnings`` lists non-fatal findings.

    Raises
    ------
    StudyError
        With every problem found (YAML syntax errors carry line and column).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise StudyError([Problem(source, "", _k("sv_file_not_found"))]) from None
    except UnicodeDecodeError as exc:
        raise StudyError([Problem(source, "", _k("sv_not_utf8", offset=exc.start))]) from None
    except OSError as exc:
        raise StudyError([Problem(source, "", _k("sv_cannot_read", detail=str(exc.strerror or exc)))]) from None
    data, lines, dup_problems = _parse_yaml(text, source)
    return _validate(data, source, lines, dup_problems)


def validate_study_mapping(data: Any, source: str = "<mapping>") -> Study:
    """Validate an already-parsed study mapping (e.g. from the database or a test).

    Raises
    ------
    StudyError
        With every problem found; paths are given without line numbers.
    """
    return _validate(data, source, {}, [])


# --------------------------------------------------------------------------------------------------------------
# Validation


class _Collector:
    def __init__(self, source: str, lines: dict[str, tuple[int, int]]):
        self.source = source
        self.lines = lines
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        self._seen: set[tuple[str, str]] = set()

    def _where(self, path: str) -> tuple[int | None, int | None]:
        p = path
        while True:
            if p in self.lines and (p or not path):
                return self.lines[p]
            if not p:
                return None, None  # a missing top-level key: no line to point at
            # Drop the last ".key" or "[i]".
            cut = max(p.rfind("."), p.rfind("["))
            p = p[:cut] if cut > 0 else ""

    def error(self, path: str, message: str) -> None:
        if (path, message) in self._seen:
            return
        self._seen.add((path, message))
        self.errors.append(Problem(self.source, path, message, *self._where(path)))

    def warn(self, path: str, message: str) -> None:
        if (path, message) in self._seen:
            return
        self._seen.add((path, message))
        self.warnings.append(Problem(self.source, path, message, *self._where(path), severity="warning"))


def _validate(data: Any, source: str, lines: dict[str, tuple[int, int]], early: list[Problem]) -> Study:
    out = _Collector(source, lines)
    out.errors.extend(early)
    if not isinstance(data, Mapping):
        out.error("", _k("sv_empty") if data is None else _k("sv_not_mapping", type=type(data).__name__))
        raise StudyError(out.errors)
    if data.get("type") == "audit":  # cati/study/audit.py: a checklist, not a questionnaire
        out.error("type", _k("sv_audit_not_study"))
        raise StudyError(out.errors)

    study: Study | None = None
    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            out.error(_loc_to_path(err["loc"], data), _pydantic_message(err))
    _check_semantics(data, out)

    if out.errors:
        out.errors.sort(key=lambda p: (p.line is None, p.line or 0))
        raise StudyError(out.errors, out.warnings)
    assert study is not None
    study._warnings = out.warnings
    return study


_TAG_NAMES = {"int", "float", "str", "bool", "none", "list", "dict", "tuple", "[key]"}


def _loc_to_path(loc: tuple[Any, ...], data: Any) -> str:
    """Turn a pydantic error location into ``questions[3].terminate.if`` by walking the data."""
    path = ""
    cur: Any = data
    for el in loc:
        if isinstance(cur, list) and isinstance(el, int):
            path += f"[{el}]"
            cur = cur[el] if 0 <= el < len(cur) else None
            continue
        if isinstance(cur, Mapping):
            key = el if el in cur else next((k for k in cur if str(k) == str(el)), None)
            if key is not None:
                path += f".{key}" if path else str(key)
                cur = cur[key]
                continue
        if isinstance(el, str) and (el in _TAG_NAMES or "[" in el or "(" in el):
            continue  # pydantic's union/function tags, not part of the file
        path += f".{el}" if path else str(el)
        cur = None
    return path


_FIELD_NAMES = sorted(all_field_names())


#: pydantic error types with a message of their own in the catalogue (``pyd_<type>``; the English is pydantic's).
_PYDANTIC_KEYS = {
    "int_parsing": "pyd_int", "int_type": "pyd_int", "int_from_float": "pyd_int",
    "float_parsing": "pyd_number", "float_type": "pyd_number",
    "string_type": "pyd_string", "bool_parsing": "pyd_bool", "bool_type": "pyd_bool",
    "list_type": "pyd_list", "tuple_type": "pyd_list", "dict_type": "pyd_mapping", "model_type": "pyd_mapping",
    "model_attributes_type": "pyd_mapping", "literal_error": "pyd_literal", "enum": "pyd_literal",
    "greater_than_equal": "pyd_ge", "greater_than": "pyd_gt", "less_than_equal": "pyd_le", "less_than": "pyd_lt",
    "string_too_short": "pyd_too_short", "too_short": "pyd_too_short", "too_long": "pyd_too_long",
    "string_too_long": "pyd_too_long", "date_from_datetime_parsing": "pyd_date", "date_parsing": "pyd_date",
    "date_type": "pyd_date",
}


def _pydantic_message(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    msg = str(err["msg"])
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "missing":
        if err["loc"] and isinstance(err["loc"][-1], int):
            return _k("sv_window_value_missing")
        return _k("sv_required")
    if kind == "extra_forbidden":
        key = str(err["loc"][-1]) if err["loc"] else "?"
        close = difflib.get_close_matches(key, _FIELD_NAMES, n=1, cutoff=0.75)
        return _k("sv_unknown_key_hint", key=key, hint=close[0]) if close else _k("sv_unknown_key", key=key)
    if kind == "value_error":
        error = ctx.get("error")
        if isinstance(error, KeyedError):
            return _k(error.key, **error.params)
        return _k("pyd_other", msg=msg[len("Value error, "):] if msg.startswith("Value error, ") else msg)
    detail = _k(_PYDANTIC_KEYS.get(kind, "pyd_other"), msg=msg,
                **{k: (str(v) if k != "expected" else v) for k, v in ctx.items() if k != "error"})
    if kind == "string_type" and isinstance(value, bool):
        return _k("sv_yes_no_bool", detail=detail, value=value)
    if isinstance(value, str | int | float | bool) and len(repr(value)) <= 60:
        return _k("sv_got", detail=detail, value=repr(value))
    return detail


def _code_key(value: Any) -> Any:
    """Answer codes as ints where they look like ints (YAML gives ints, JSON gives strings)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def _check_semantics(data: Mapping[str, Any], out: _Collector) -> None:
    langs = [x for x in data.get("languages") or [] if isinstance(x, str)] \
        if isinstance(data.get("languages"), list) else []
    default = data.get("default_language")
    if isinstance(default, str) and langs and default not in langs:
        out.error("default_language", _k("sv_default_language", default=default, langs=langs))

    piping_defaults = data.get("piping_defaults")
    allowed = set(BUILTIN_PLACEHOLDERS)
    if isinstance(piping_defaults, Mapping):
        allowed |= {str(k) for k in piping_defaults}

    def check_text(value: Any, path: str, placeholders: bool = True) -> None:
        if not isinstance(value, Mapping):
            return  # shape errors come from the models
        for lang in langs:
            if lang not in value:
                out.error(path, _k("sv_text_missing_lang", lang=lang))
        for lang, text in value.items():
            sub = f"{path}.{lang}"
            if langs and lang not in langs:
                out.error(sub, _k("sv_text_lang_unlisted", lang=lang, langs=langs))
            if not isinstance(text, str):
                continue
            if not text.strip():
                out.error(sub, _k("sv_text_empty"))
                continue
            if placeholders:
                names, errors = scan_placeholders(text)
                for e in errors:
                    out.error(sub, e if isinstance(e, KeyedText) else _k("sv_placeholder", detail=e))
                for name in dict.fromkeys(names):
                    if name not in allowed:
                        out.warn(sub, _k("sv_placeholder_unknown", name=name, builtin=", ".join(sorted(allowed))))

    mode = data.get("mode", "cati")
    if mode in ("cati", "mixed"):
        for key in ("quota", "calling_rules"):
            if key not in data:
                out.error(key, _k("sv_required_for_mode", mode=mode))
    elif mode == "cawi" and "calling_rules" not in data and "timezone" not in data:
        out.error("timezone", _k("sv_cawi_timezone"))

    check_text(data.get("title"), "title", placeholders=False)
    check_text(data.get("firm_name"), "firm_name", placeholders=False)

    # -- scales ------------------------------------------------------------------------------------------------
    scales_raw = data.get("scales")
    scales: dict[str, dict[str, set[Any]]] = {}
    if isinstance(scales_raw, Mapping):
        for name, scale in scales_raw.items():
            spath = f"scales.{name}"
            labels = scale.get("labels") if isinstance(scale, Mapping) else None
            missing = scale.get("missing") if isinstance(scale, Mapping) else None
            scales[str(name)] = {
                "labels": {_code_key(k) for k in labels} if isinstance(labels, Mapping) else set(),
                "missing": {_code_key(k) for k in missing} if isinstance(missing, Mapping) else set(),
            }
            for part, mapping in (("labels", labels), ("missing", missing)):
                if isinstance(mapping, Mapping):
                    for code, text in mapping.items():
                        check_text(text, f"{spath}.{part}.{code}", placeholders=False)

    # -- questions ---------------------------------------------------------------------------------------------
    questions_raw = data.get("questions")
    questions: list[Mapping[str, Any]] = []
    if isinstance(questions_raw, list):
        questions = [q if isinstance(q, Mapping) else {} for q in questions_raw]
    position: dict[str, int] = {}
    for i, q in enumerate(questions):
        code = q.get("code")
        if isinstance(code, str):
            if code in position:
                out.error(f"questions[{i}].code", _k("sv_duplicate_question", code=code, first=position[code]))
            else:
                position[code] = i
    qtype = {c: questions[i].get("type") for c, i in position.items()}

    prefer = data.get("prefer_not_to_say")
    prefer_code = _code_key(prefer.get("code")) if isinstance(prefer, Mapping) else None
    if isinstance(prefer, Mapping):
        check_text(prefer.get("label"), "prefer_not_to_say.label", placeholders=False)

    def scale_codes(code: str) -> set[Any] | None:
        q = questions[position[code]]
        sname = q.get("scale")
        if isinstance(sname, str) and sname in scales and scales[sname]["labels"]:
            extra = {prefer_code} if q.get("prefer_not") is True and prefer_code is not None else set()
            return scales[sname]["labels"] | scales[sname]["missing"] | extra
        return None  # no usable scale: already reported

    def check_condition(expr: Any, path: str, index: int, allow_self: bool) -> None:
        if not isinstance(expr, str):
            return
        try:
            cond = compile_condition(expr)
        except ConditionError as exc:
            out.error(path, _k("sv_condition", detail=str(exc)))
            return
        for ref in sorted(cond.codes):
            if ref not in position:
                close = difflib.get_close_matches(ref, list(position), n=1, cutoff=0.6)
                out.error(path, _k("sv_unknown_question_hint", ref=ref, hint=close[0]) if close
                          else _k("sv_unknown_question", ref=ref))
            elif position[ref] == index and not allow_self:
                out.error(path, _k("sv_refers_itself"))
            elif position[ref] > index:
                out.error(path, _k("sv_refers_later_at" if allow_self else "sv_refers_later", ref=ref,
                                   pos=position[ref]))
            elif qtype.get(ref) == "info":
                out.error(path, _k("sv_info_no_answer", ref=ref))
        for ref, literal in cond.literals:
            if ref not in position:
                continue
            codes = scale_codes(ref)
            if codes is None or isinstance(literal, float):
                continue
            value = _code_key(literal)
            if isinstance(value, str):
                out.error(path, _k("sv_codes_not_text", ref=ref, codes=sorted(codes, key=str), literal=literal))
            elif value not in codes:
                out.error(path, _k("sv_no_answer_code", ref=ref, value=value, codes=sorted(codes, key=str)))

    for i, q in enumerate(questions):
        qpath = f"questions[{i}]"
        kind = q.get("type")
        sname = q.get("scale")
        if kind in SCALED_TYPES:
            if sname is None:
                out.error(f"{qpath}.scale", _k("sv_scale_needed", kind=kind))
            elif isinstance(sname, str) and sname not in scales:
                out.error(f"{qpath}.scale", _k("sv_unknown_scale", scale=sname, known=", ".join(sorted(scales))))
        elif kind in ("info", "open", "numeric") and sname is not None:
            out.error(f"{qpath}.scale", _k("sv_no_scale_allowed", kind=kind))
        if q.get("max_length") is not None and kind != "open":
            out.error(f"{qpath}.max_length", _k("sv_max_length_open"))
        for bound in ("min", "max"):
            if q.get(bound) is not None and kind != "numeric":
                out.error(f"{qpath}.{bound}", _k("sv_bound_numeric", bound=bound))
        lo, hi = q.get("min"), q.get("max")
        if isinstance(lo, int | float) and isinstance(hi, int | float) and lo > hi:
            out.error(f"{qpath}.min", _k("sv_min_gt_max", lo=lo, hi=hi))
        _check_choice_options(q, qpath, kind, scales, position, prefer, prefer_code, out)
        check_text(q.get("text"), f"{qpath}.text")
        check_condition(q.get("ask_if"), f"{qpath}.ask_if", i, allow_self=False)
        term = q.get("terminate")
        if isinstance(term, Mapping):
            if kind == "info":
                out.error(f"{qpath}.terminate", _k("sv_info_terminate"))
            check_condition(term.get("if"), f"{qpath}.terminate.if", i, allow_self=True)
            disp = term.get("disposition")
            if disp == _complete_code():
                out.error(f"{qpath}.terminate.disposition", _k("sv_terminate_complete"))
            elif isinstance(disp, str) and disp not in AAPOR_CODES and disp.count(".") == 1:
                out.warn(f"{qpath}.terminate.disposition", _k("sv_disposition_not_aapor", disp=disp))

    # -- indicators --------------------------------------------------------------------------------------------
    indicators = data.get("indicators")
    item_scales: dict[str, list[str]] = {}
    if isinstance(indicators, list):
        seen_ind: dict[str, int] = {}
        seen_item: dict[str, str] = {}
        weights: list[float] = []
        for j, ind in enumerate(indicators):
            if not isinstance(ind, Mapping):
                continue
            ipath = f"indicators[{j}]"
            icode = ind.get("code")
            if isinstance(icode, str):
                if icode in seen_ind:
                    out.error(f"{ipath}.code", _k("sv_duplicate_indicator", code=icode, first=seen_ind[icode]))
                seen_ind.setdefault(icode, j)
            w = ind.get("weight")
            if isinstance(w, int | float) and not isinstance(w, bool):
                weights.append(float(w))
            check_text(ind.get("name"), f"{ipath}.name", placeholders=False)
            items = ind.get("items")
            if not isinstance(items, list):
                continue
            item_weights: list[float] = []
            for k, item in enumerate(items):
                if not isinstance(item, Mapping):
                    continue
                kpath = f"{ipath}.items[{k}]"
                code = item.get("code")
                iw = item.get("weight")
                if isinstance(iw, int | float) and not isinstance(iw, bool):
                    item_weights.append(float(iw))
                if not isinstance(code, str):
                    continue
                if code in seen_item:
                    out.error(f"{kpath}.code", _k("sv_item_twice", code=code, indicator=seen_item[code]))
                seen_item.setdefault(code, str(icode))
                if code not in position:
                    out.error(f"{kpath}.code", _k("sv_unknown_question", ref=code))
                elif qtype.get(code) != "rating":
                    out.error(f"{kpath}.code", _k("sv_item_not_rating", code=code, kind=qtype.get(code)))
                else:
                    sname = questions[position[code]].get("scale")
                    if isinstance(sname, str) and sname in scales and scales[sname]["labels"]:
                        item_scales.setdefault(sname, []).append(code)
            if len(item_weights) == len(items) and items:
                _check_sum(item_weights, f"{ipath}.items", out, "sv_item_weights_sum", indicator=icode)
        if weights and len(weights) == len(indicators):
            _check_sum(weights, "indicators", out, "sv_indicator_weights_sum")

    # -- scoring -----------------------------------------------------------------------------------------------
    scoring = data.get("scoring")
    if isinstance(scoring, Mapping):
        raw_scores = scoring.get("item_scores")
        scored = {_code_key(k) for k in raw_scores} if isinstance(raw_scores, Mapping) else None
        raw_missing = scoring.get("missing_codes")
        missing_codes = {_code_key(k) for k in raw_missing} if isinstance(raw_missing, list) else set()
        if scored is not None:
            label_union: set[Any] = set()
            for sname, codes in item_scales.items():
                labels = scales[sname]["labels"]
                label_union |= labels
                lacking = sorted(labels - scored, key=str)
                if lacking:
                    out.error("scoring.item_scores", _k("sv_no_score", codes=lacking, scale=sname,
                                                        used=", ".join(codes[:3]) + (" …" if len(codes) > 3 else "")))
                unlisted = sorted(scales[sname]["missing"] - missing_codes - scored, key=str)
                if unlisted:
                    out.error("scoring.missing_codes", _k("sv_missing_unlisted", codes=unlisted, scale=sname))
            if item_scales:
                extra = sorted(scored - label_union, key=str)
                if extra:
                    out.error("scoring.item_scores", _k("sv_extra_scores", codes=extra, scales=sorted(item_scales)))
            both = sorted(scored & missing_codes, key=str)
            if both:
                out.error("scoring.missing_codes", _k("sv_scored_and_missing", codes=both))
        if prefer_code is not None and item_scales and prefer_code not in missing_codes | (scored or set()):
            prefer_items = [c for codes in item_scales.values() for c in codes
                            if questions[position[c]].get("prefer_not") is True]
            if prefer_items:
                out.error("scoring.missing_codes", _k("sv_prefer_not_unlisted", code=prefer_code,
                                                      items=", ".join(prefer_items[:3])))
        _check_index_scoring(scoring, position, qtype, item_scales, out)
        for key, want in (("outcome", "rating"), ("callback_item", None)):
            ref = scoring.get(key)
            if isinstance(ref, str):
                if ref not in position:
                    out.error(f"scoring.{key}", _k("sv_unknown_question", ref=ref))
                elif want and qtype.get(ref) != want:
                    out.error(f"scoring.{key}", _k("sv_must_be_kind", ref=ref, kind=want))
                elif qtype.get(ref) not in SCALED_TYPES:
                    out.error(f"scoring.{key}", _k("sv_no_answer_scale", ref=ref))

    # -- quota -------------------------------------------------------------------------------------------------
    quota = data.get("quota")
    if isinstance(quota, Mapping) and isinstance(quota.get("by_variable"), list):
        for j, vq in enumerate(quota["by_variable"]):
            if isinstance(vq, Mapping) and vq.get("source") == "answer":
                # Quotas are enforced when an interview starts and by the scheduler, both of which know the sample,
                # not the answers: a quota on an answer would be accepted here and never applied.
                out.error(f"quota.by_variable[{j}].source", _k("sv_quota_on_answer"))


def _check_choice_options(q: Mapping[str, Any], qpath: str, kind: Any, scales: dict[str, dict[str, set[Any]]],
                          position: dict[str, int], prefer: Any, prefer_code: Any, out: _Collector) -> None:
    """min/max choices, "other, please specify" and "prefer not to say" of one question."""
    sname = q.get("scale")
    scale = scales.get(sname) if isinstance(sname, str) else None
    lo, hi = q.get("min_choices"), q.get("max_choices")
    for key, value in (("min_choices", lo), ("max_choices", hi)):
        if value is not None and kind != "multi":
            out.error(f"{qpath}.{key}", _k("sv_choices_multi_only", key=key))
    if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
        out.error(f"{qpath}.min_choices", _k("sv_min_choices_gt_max", lo=lo, hi=hi))
    if scale is not None and kind == "multi":
        n = len(scale["labels"])
        for key, value in (("min_choices", lo), ("max_choices", hi)):
            if isinstance(value, int) and value > n:
                out.error(f"{qpath}.{key}", _k("sv_choices_over_options", key=key, value=value, n=n, scale=sname))
    other = q.get("other_code")
    if other is not None:
        if kind not in ("single", "multi"):
            out.error(f"{qpath}.other_code", _k("sv_other_code_choice_only"))
        elif scale is not None and _code_key(other) not in scale["labels"]:
            out.error(f"{qpath}.other_code", _k("sv_other_code_not_label", other=other, scale=sname,
                                                labels=sorted(scale["labels"], key=str)))
        code = q.get("code")
        if isinstance(code, str) and f"{code}_other" in position:
            out.error(f"{qpath}.other_code", _k("sv_other_code_clash", code=code))
    elif q.get("other_max_length") is not None:
        out.error(f"{qpath}.other_max_length", _k("sv_other_max_length"))
    if q.get("prefer_not") is True:
        if not isinstance(prefer, Mapping):
            out.error(f"{qpath}.prefer_not", _k("sv_prefer_not_no_code", example="{code: 99, label: {...}}"))
        elif kind not in ("single", "rating", "multi", "open"):
            out.error(f"{qpath}.prefer_not", _k("sv_prefer_not_kind", kind=kind))
        elif scale is not None and prefer_code in scale["labels"] | scale["missing"]:
            out.error(f"{qpath}.prefer_not", _k("sv_prefer_not_clash", code=prefer_code, scale=sname))


def _check_index_scoring(scoring: Mapping[str, Any], position: dict[str, int], qtype: dict[str, Any],
                         item_scales: dict[str, list[str]], out: _Collector) -> None:
    """``scoring.kind: index``: the index item, the driver items and the breakdown questions."""
    items = {c for codes in item_scales.values() for c in codes}
    index_item = scoring.get("index_item")
    if scoring.get("kind") == "index":
        if not isinstance(index_item, str):
            out.error("scoring.index_item", _k("sv_index_item_needed"))
        elif index_item not in items:
            out.error("scoring.index_item", _k("sv_not_indicator_item", code=index_item))
        if scoring.get("outcome") is not None:
            out.error("scoring.outcome", _k("sv_index_no_outcome"))
    elif index_item is not None or scoring.get("driver_items"):
        out.error("scoring.index_item", _k("sv_index_only"))
    drivers = scoring.get("driver_items")
    if isinstance(drivers, list):
        for j, code in enumerate(drivers):
            if code not in items:
                out.error(f"scoring.driver_items[{j}]", _k("sv_not_indicator_item", code=code))
            elif code == index_item:
                out.error(f"scoring.driver_items[{j}]", _k("sv_driver_is_index"))
    breakdowns = scoring.get("breakdowns")
    if isinstance(breakdowns, list):
        for j, code in enumerate(breakdowns):
            if code not in position:
                out.error(f"scoring.breakdowns[{j}]", _k("sv_unknown_question", ref=code))
            elif qtype.get(code) != "single":
                out.error(f"scoring.breakdowns[{j}]", _k("sv_breakdown_single", code=code, kind=qtype.get(code)))


def _complete_code() -> str:
    """The catalogue's complete (a script's termination may not claim it)."""
    from cati.services.dispositions import catalogue

    return catalogue().code_for("complete")


def _check_sum(weights: list[float], path: str, out: _Collector, key: str, **params: Any) -> None:
    total = math.fsum(weights)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        out.error(path, _k(key, total=f"{total:.7g}", tol=f"{WEIGHT_TOLERANCE:g}", **params))
