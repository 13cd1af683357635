"""A small, safe expression language for ``ask_if`` and ``terminate.if``.

Grammar (a subset of Python's expression syntax, parsed with :mod:`ast` and never evaluated by Python)::

    cond    := cond 'or' cond | cond 'and' cond | 'not' cond | '(' cond ')'
             | operand (cmp operand)+ | 'answered(' CODE ')'
    cmp     := '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not in'
    operand := CODE | INT | '-' INT | FLOAT | STRING | '[' literal, ... ']' | '(' literal, ... ')'

``CODE`` is a question code; its value is the answer, or ``None`` when unanswered. A comparison involving
``None`` — or values that cannot be compared, such as text with a number — is false, never an error; numbers
written as text (``"3"``) compare as numbers. ``answered(X)`` is true when X has a non-empty answer
(don't-know codes count as answers).

Examples
--------
>>> c = compile_condition("D0 == 1 and (S1 in [1, 2] or not answered(P1))")
>>> sorted(c.codes)
['D0', 'P1', 'S1']
>>> c.evaluate({"D0": 1, "S1": 2})
True
>>> c.evaluate({})
False
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Condition", "ConditionError", "compile_condition", "is_answered"]

_Fn = Callable[[Mapping[str, Any]], Any]

_CMP: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}
_CMP_TEXT = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
             ast.In: "in", ast.NotIn: "not in"}


class ConditionError(ValueError):
    """A condition that does not parse or uses something outside the language."""

    def __init__(self, message: str, expr: str = "", column: int | None = None):
        super().__init__(message)
        self.expr = expr
        self.column = column


def is_answered(value: Any) -> bool:
    """True unless the value is ``None``, an empty string or an empty collection."""
    if value is None:
        return False
    if isinstance(value, str | list | tuple | set | frozenset | dict):
        return len(value) > 0
    return True


@dataclass(frozen=True)
class Condition:
    """A compiled condition.

    Attributes
    ----------
    source : str
        The expression as written.
    codes : frozenset of str
        Question codes it reads.
    literals : tuple of (str, object)
        ``(code, literal)`` pairs compared directly (``D0 == 1`` gives ``("D0", 1)``), so a loader can check
        that the literal is a code of the question's scale.
    """

    source: str
    codes: frozenset[str]
    literals: tuple[tuple[str, Any], ...] = ()
    _fn: _Fn = field(default=lambda answers: False, repr=False, compare=False)

    def evaluate(self, answers: Mapping[str, Any]) -> bool:
        """Evaluate against answers by code; unanswered codes are ``None``. Never raises."""
        try:
            return bool(self._fn(answers))
        except Exception:  # noqa: BLE001 - a routing rule must never crash an interview; false is the safe side
            return False


def _norm_pair(a: Any, b: Any) -> tuple[Any, Any]:
    # Answers may arrive as text from a form; compare "3" with 3 as numbers.
    if isinstance(a, str) and isinstance(b, int | float) and not isinstance(b, bool):
        a = _num(a, a)
    elif isinstance(b, str) and isinstance(a, int | float) and not isinstance(a, bool):
        b = _num(b, b)
    return a, b


def _num(text: str, default: Any) -> Any:
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        try:
            f = float(t)
        except ValueError:
            return default
        return default if math.isnan(f) else f


def _compare(op: type, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if op is ast.In or op is ast.NotIn:
        if not isinstance(b, tuple):
            return False
        found = any(_compare(ast.Eq, a, x) for x in b)
        return found if op is ast.In else not found
    a, b = _norm_pair(a, b)
    try:
        return bool(_CMP[op](a, b))
    except Exception:  # noqa: BLE001 - incomparable types (text < number, lists …) are "false", not an error
        return False


class _Compiler:
    def __init__(self, expr: str):
        self.expr = expr
        self.codes: set[str] = set()
        self.literals: list[tuple[str, Any]] = []

    def fail(self, node: ast.AST | None, message: str) -> ConditionError:
        col = getattr(node, "col_offset", None)
        where = f" (at column {col + 1})" if col is not None else ""
        return ConditionError(f"{message}{where} in {self.expr!r}", self.expr, None if col is None else col + 1)

    # A boolean-valued node: comparison, and/or/not, answered(X).
    def boolean(self, node: ast.AST) -> _Fn:
        if isinstance(node, ast.BoolOp):
            parts = [self.boolean(v) for v in node.values]
            if isinstance(node.op, ast.And):
                return lambda ans: all(p(ans) for p in parts)
            return lambda ans: any(p(ans) for p in parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.boolean(node.operand)
            return lambda ans: not inner(ans)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Name | ast.Constant):
            raise self.fail(node, "expected a comparison such as 'D0 == 1' or answered(D0), not a bare value")
        raise self.fail(node, f"{type(node).__name__} is not allowed in a condition")

    def call(self, node: ast.Call) -> _Fn:
        if not (isinstance(node.func, ast.Name) and node.func.id == "answered"):
            raise self.fail(node, "the only function is answered(CODE)")
        if node.keywords or len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
            raise self.fail(node, "answered() takes exactly one question code, e.g. answered(D0)")
        code = node.args[0].id
        self.codes.add(code)
        return lambda ans: is_answered(ans.get(code))

    def compare(self, node: ast.Compare) -> _Fn:
        operands = [node.left, *node.comparators]
        getters = [self.operand(o) for o in operands]
        steps = []
        for i, op in enumerate(node.ops):
            if type(op) not in _CMP_TEXT:
                raise self.fail(node, f"operator {type(op).__name__} is not allowed (use == != < <= > >= in)")
            right = operands[i + 1]
            if isinstance(op, ast.In | ast.NotIn) and not isinstance(right, ast.List | ast.Tuple):
                raise self.fail(right, f"'{_CMP_TEXT[type(op)]}' needs a list of values, e.g. X in [1, 2]")
            if isinstance(right, ast.List | ast.Tuple) and not isinstance(op, ast.In | ast.NotIn):
                raise self.fail(right, "a list can only follow 'in' or 'not in'")
            steps.append((type(op), getters[i], getters[i + 1]))
            self._note_literal(operands[i], right)
        if isinstance(node.left, ast.List | ast.Tuple):
            raise self.fail(node.left, "a list can only follow 'in' or 'not in'")

        if len(steps) == 1:
            op, left, right = steps[0]
            return lambda ans: _compare(op, left(ans), right(ans))
        return lambda ans: all(_compare(op, left(ans), right(ans)) for op, left, right in steps)

    def _note_literal(self, left: ast.AST, right: ast.AST) -> None:
        for a, b in ((left, right), (right, left)):
            if isinstance(a, ast.Name):
                for value in self._literal_values(b):
                    self.literals.append((a.id, value))

    def _literal_values(self, node: ast.AST) -> list[Any]:
        if isinstance(node, ast.List | ast.Tuple):
            return [v for elt in node.elts for v in self._literal_values(elt)]
        try:
            value = self.literal(node)
        except ConditionError:
            return []
        return [value]

    def literal(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float, str):
            return node.value
        if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
                and type(node.operand.value) in (int, float)):
            return -node.operand.value
        if isinstance(node, ast.Constant):
            raise self.fail(node, f"literal {node.value!r} is not allowed (use integers, numbers or 'text')")
        raise self.fail(node, f"{type(node).__name__} is not allowed as a value")

    def operand(self, node: ast.AST) -> _Fn:
        if isinstance(node, ast.Name):
            code = node.id
            self.codes.add(code)
            return lambda ans: ans.get(code)
        if isinstance(node, ast.List | ast.Tuple):
            values = tuple(self.literal(e) for e in node.elts)
            return lambda ans: values
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "answered":
                raise self.fail(node, "answered() is a condition on its own, not a value to compare")
            raise self.fail(node, "the only function is answered(CODE)")
        value = self.literal(node)
        return lambda ans: value


def compile_condition(expr: str, known_codes: Collection[str] | None = None) -> Condition:
    """Compile a condition once; evaluate it many times.

    Parameters
    ----------
    expr : str
        The condition, e.g. ``"D0 == 1"`` or ``"S1 in [1, 2] and not answered(P1)"``.
    known_codes : collection of str, optional
        If given, a code not in it is an error.

    Returns
    -------
    Condition

    Raises
    ------
    ConditionError
        On a syntax error, anything outside the language, or (with ``known_codes``) an unknown question.
    """
    if not isinstance(expr, str) or not expr.strip():
        raise ConditionError("empty condition", str(expr))
    text = expr.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except (RecursionError, MemoryError):
        raise ConditionError(f"condition is too deeply nested: {text[:60]!r}", text) from None
    except ValueError as exc:  # e.g. NUL characters
        raise ConditionError(f"invalid condition {text[:60]!r}: {exc}", text) from None
    except SyntaxError as exc:
        hint = ""
        stripped = text.replace("==", "").replace("!=", "").replace("<=", "").replace(">=", "")
        if "=" in stripped:
            hint = " (use == to compare)"
        elif "&&" in text or "||" in text:
            hint = " (use and / or)"
        col = exc.offset
        raise ConditionError(f"syntax error at column {col} in {text!r}{hint}", text, col) from None
    compiler = _Compiler(text)
    try:
        fn = compiler.boolean(tree.body)
    except RecursionError:
        raise ConditionError(f"condition is too deeply nested: {text[:60]!r}", text) from None
    if known_codes is not None:
        unknown = sorted(compiler.codes - set(known_codes))
        if unknown:
            names = ", ".join(repr(u) for u in unknown)
            raise ConditionError(f"unknown question{'s' if len(unknown) > 1 else ''} {names}", text)
    return Condition(text, frozenset(compiler.codes), tuple(compiler.literals), fn)
