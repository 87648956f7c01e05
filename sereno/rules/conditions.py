"""Rule conditions: rule-engine expressions, compiled to Python closures where we can.

rule-engine parses and type-checks every condition. Interpreting its syntax tree costs a few
microseconds per event, so the common subset (literals, field access, comparisons, `and`/`or`/
`not`, arithmetic, membership, regex matching, `?:`) is compiled into nested closures that
follow rule-engine's semantics exactly; anything else is evaluated by rule-engine itself.

Two rule-engine semantics shape the compiled code:

- Numbers are compared as `Decimal(repr(x))`. Comparing two floats directly gives the same
  answer (the shortest round-tripping decimal preserves order), so floats, and integers small
  enough to be exact floats, take the fast path; anything else is compared as a Decimal.
  Arithmetic is always done in Decimal, in rule-engine's decimal context.
- `==` between values of different types is false, never an error; ordering them is an error.
"""

from __future__ import annotations

import contextlib
import decimal
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from sereno.rules import parsercache  # noqa: F401 (imports rule-engine, quickly)

# isort: split
import rule_engine
import rule_engine.ast as re_ast
from rule_engine.types import DataType

from sereno.errors import SerenoError


class ConditionError(SerenoError):
    """A condition that could not be evaluated against one event (a type mismatch, say)."""


Evaluator = Callable[[Any], Any]
Selector = Callable[[Sequence[Any]], list[Any]]
ErrorHandler = Callable[[Any, "ConditionError"], None]

FIELD_TYPES = {
    "server": DataType.STRING,
    "service": DataType.STRING,
    "component": DataType.STRING,
    "value": DataType.FLOAT,
    "timestamp": DataType.FLOAT,
    "active": DataType.BOOLEAN,
}
_EXACT_INT = 2**53
_SCALARS = (str, bool, int, float, type(None))
_TYPE_MISMATCH = "data type mismatch"


class ConditionSyntaxError(ValueError):
    """A condition that rule-engine refuses: bad syntax or types that cannot work."""


class _Unsupported(Exception):
    """A syntax-tree node outside the compiled subset: rule-engine evaluates the condition."""


class _Fallback(Exception):
    """A value the compiled code does not handle (an array field, say): ask rule-engine."""


def _resolve_field(thing: Any, name: str) -> Any:
    value = getattr(thing, name, msgspec.UNSET)
    if value is msgspec.UNSET:
        raise rule_engine.SymbolResolutionError(name)
    return value


def make_context() -> rule_engine.Context:
    """The context every condition is parsed in: event fields typed, missing fields null."""
    return rule_engine.Context(
        type_resolver=lambda name: FIELD_TYPES.get(name, DataType.UNDEFINED),
        resolver=_resolve_field,
        default_value=None,
        default_timezone="utc",
        decimal_context=decimal.Context(),
    )


@dataclass(frozen=True)
class Condition:
    """A parsed condition: `matches(event)` says whether an event satisfies it."""

    text: str
    fields: frozenset[str]
    compiled: bool
    components: frozenset[str] | None
    """The only components an event can have and match; None when any component can."""
    _rule: rule_engine.Rule = field(repr=False)
    _fast: Evaluator | None = field(repr=False)
    _select: Selector | None = field(repr=False, default=None)

    def matches(self, event: Any) -> bool:
        if self._fast is not None:
            try:
                return self._fast(event)  # type: ignore[no-any-return]
            except _Fallback:
                pass
        return self.interpret(event)

    def select(self, events: Sequence[Any], on_error: ErrorHandler) -> list[Any]:
        """The events that satisfy the condition, in order; `on_error(event, error)` is told
        of each event it cannot be evaluated for (which does not match).

        The same as `matches` on each event, in one call: the compiled form runs over the
        whole list, and only a list with an event it does not handle is gone over again, one
        event at a time (a condition has no side effects, so running it twice is harmless).
        """
        if self._select is not None:
            try:
                return self._select(events)
            except (_Fallback, ConditionError):
                pass
        return [event for event in events if self._holds(event, on_error)]

    def _holds(self, event: Any, on_error: ErrorHandler) -> bool:
        try:
            return self.matches(event)
        except ConditionError as error:
            on_error(event, error)
            return False

    def interpret(self, event: Any) -> bool:
        """rule-engine's own evaluation: the reference the compiled form must agree with."""
        try:
            return bool(self._rule.matches(event))
        except Exception as error:  # rule-engine raises assorted errors for bad values
            raise ConditionError(_engine_message(error)) from None


def parse_condition(text: str) -> Condition:
    """Parse, type-check and compile a condition; `ConditionSyntaxError` says what is wrong."""
    context = make_context()
    try:
        rule = rule_engine.Rule(text, context=context)
    except rule_engine.RuleSyntaxError as error:
        raise ConditionSyntaxError(_syntax_message(text, error)) from None
    except rule_engine.EngineError as error:
        raise ConditionSyntaxError(
            f"invalid condition {text!r}: {_engine_message(error)}"
        ) from None
    fast: Evaluator | None = None
    select: Selector | None = None
    with contextlib.suppress(_Unsupported):
        fast, select = _Fuser(_Compiler(context)).functions(rule.statement.expression)
    components = matching_components(rule.statement.expression)
    fields = frozenset(context.symbols)
    return Condition(text, fields, fast is not None, components, rule, fast, select)


def _engine_message(error: Exception) -> str:
    message = str(getattr(error, "message", error))
    detail = getattr(error, "error", None)
    return f"{message} ({detail})" if detail is not None else message


def _syntax_message(text: str, error: rule_engine.RuleSyntaxError) -> str:
    token = error.token
    if token is None:
        return f"syntax error at the end of the condition {text!r}"
    return f"syntax error at position {token.lexpos + 1} (near {token.value!r}) in {text!r}"


# --- which components a condition can match -----------------------------------------------
#
# A condition such as `component == "Load5mAvg" and value > 4.0` can only match Load5mAvg events,
# so the engine need not evaluate it on any other. `matching_components(node)` returns a set S
# such that every event whose component is not in S makes `node` false *without an error*, so
# skipping those events changes nothing, not even the condition errors reported.


def matching_components(node: Any) -> frozenset[str] | None:
    """The components an event must have for `node` to be true; None if it cannot be told."""
    kind = type(node)
    if kind is re_ast.LogicExpression:
        return _logic_components(node)
    if kind is re_ast.ComparisonExpression and node.type == "eq":
        return _component_literal(node.left, node.right) or _component_literal(
            node.right, node.left
        )
    if kind is re_ast.ContainsExpression and _is_component(node.member):
        container = node.container
        literal = type(container) in (re_ast.ArrayExpression, re_ast.SetExpression)
        if literal and container.is_reduced:
            return frozenset(value for value in container.evaluate(None) if type(value) is str)
    return None


def _logic_components(node: Any) -> frozenset[str] | None:
    left, right = matching_components(node.left), matching_components(node.right)
    if node.type == "or":
        return None if left is None or right is None else left | right
    # `and` stops at a false left side, but a true one lets the right side be evaluated, so
    # the right side's restriction holds only if the left side cannot fail
    if right is not None and _cannot_fail(node.left):
        return right if left is None else left & right
    return left


def _is_component(node: Any) -> bool:
    return type(node) is re_ast.SymbolExpression and node.name == "component" and not node.scope


def _component_literal(symbol: Any, literal: Any) -> frozenset[str] | None:
    if _is_component(symbol) and type(literal) is re_ast.StringExpression:
        return frozenset([literal.value])
    return None


def _static_type(node: Any) -> Any:
    """The type of a literal or of an event field every event has; None for anything else."""
    if type(node) is re_ast.SymbolExpression and not node.scope:
        return FIELD_TYPES.get(node.name)
    literal_types = {
        re_ast.FloatExpression: DataType.FLOAT,
        re_ast.StringExpression: DataType.STRING,
        re_ast.BooleanExpression: DataType.BOOLEAN,
    }
    return literal_types.get(type(node))


def _cannot_fail(node: Any) -> bool:
    """Whether evaluating `node` can never raise an error, whatever the event."""
    kind = type(node)
    if kind in (re_ast.LogicExpression, re_ast.ComparisonExpression):
        return _cannot_fail(node.left) and _cannot_fail(node.right)
    if kind is re_ast.UnaryExpression and node.type == "not":
        return _cannot_fail(node.right)
    if kind is re_ast.ArithmeticComparisonExpression:
        left, right = _static_type(node.left), _static_type(node.right)
        return left is not None and left == right and left is not DataType.BOOLEAN
    return _static_type(node) is not None


# --- values, with rule-engine's semantics -------------------------------------------------


def _is_number(value: Any) -> bool:
    kind = type(value)
    return kind is float or kind is int or kind is Decimal


def _is_exact_float(value: Any) -> bool:
    kind = type(value)
    return kind is float or (kind is int and -_EXACT_INT <= value <= _EXACT_INT)


def _to_decimal(value: Any) -> Decimal:
    if type(value) is float:
        return Decimal(repr(value))
    return Decimal(value)


def _numbers(left: Any, right: Any) -> tuple[Any, Any]:
    """Two numbers in a form Python compares as rule-engine would."""
    if _is_exact_float(left) and _is_exact_float(right):
        return left, right
    return _to_decimal(left), _to_decimal(right)


def _equal(left: Any, right: Any) -> bool:
    if _is_number(left) and _is_number(right):
        left, right = _numbers(left, right)
        return bool(left == right)
    if type(left) is not type(right):
        return False
    return bool(left == right)


def _ordered(compare: Callable[[Any, Any], bool], left: Any, right: Any) -> bool:
    if left is None and right is None:
        return compare in (operator.ge, operator.le)
    if _is_number(left) and _is_number(right):
        return compare(*_numbers(left, right))
    if type(left) is not type(right):
        raise ConditionError(_TYPE_MISMATCH)
    return compare(left, right)


def _number_operand(value: Any) -> Decimal:
    if not _is_number(value):
        raise ConditionError(f"{_TYPE_MISMATCH} (not a numeric value)")
    return _to_decimal(value)


def _literal(value: Any) -> Any:
    """A literal as the compiled code holds it: a float when that compares identically."""
    if type(value) is Decimal and value.is_finite() and Decimal(repr(float(value))) == value:
        return float(value)
    return value


def _membership_key(value: Any) -> Any:
    return _to_decimal(value) if _is_number(value) else value


# --- the compiler -------------------------------------------------------------------------

_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_REGEX_OPERATORS = {
    "eq_fzm": ("match", True),
    "eq_fzs": ("search", True),
    "ne_fzm": ("match", False),
    "ne_fzs": ("search", False),
}


class _Compiler:
    def __init__(self, context: rule_engine.Context) -> None:
        self._context = context
        self._decimal = context.decimal_context
        self._arithmetic: dict[str, Callable[[Decimal, Decimal], Decimal]] = {
            "mul": self._decimal.multiply,
            "tdiv": self._decimal.divide,
            "fdiv": self._decimal.divide_int,
            "mod": self._decimal.remainder,
            "pow": self._decimal.power,
        }

    def compile(self, node: Any) -> Evaluator:
        kind = type(node)
        if kind in (re_ast.BooleanExpression, re_ast.StringExpression, re_ast.NullExpression):
            return self._constant(node.value)
        if kind is re_ast.FloatExpression:
            return self._constant(_literal(node.value))
        handler = _HANDLERS.get(kind)
        if handler is None:
            raise _Unsupported(kind.__name__)
        return handler(self, node)

    @staticmethod
    def _constant(value: Any) -> Evaluator:
        return lambda event: value

    def _symbol(self, node: Any) -> Evaluator:
        if node.scope is not None:
            raise _Unsupported("scoped symbol")
        name: str = node.name
        if name in FIELD_TYPES:
            return operator.attrgetter(name)

        def extra_field(event: Any) -> Any:
            value = getattr(event, name, None)
            if value is msgspec.UNSET:
                return None
            if not isinstance(value, _SCALARS):
                raise _Fallback(name)
            return value

        return extra_field

    def truth(self, node: Any) -> Evaluator:
        """An evaluator of `node` that gives True or False, by Python's (and rule-engine's)
        truthiness of its value."""
        evaluator = self.compile(node)
        if _gives_bool(node):
            return evaluator
        return lambda event: bool(evaluator(event))

    def _logic(self, node: Any) -> Evaluator:
        left, right = self.truth(node.left), self.truth(node.right)
        if node.type == "and":
            return lambda event: left(event) and right(event)
        return lambda event: left(event) or right(event)

    def _unary(self, node: Any) -> Evaluator:
        right = self.compile(node.right)
        if node.type == "not":
            return lambda event: not right(event)
        minus = self._decimal.minus

        def negative(event: Any) -> Any:
            value = right(event)
            if _is_exact_float(value):
                return -value
            return minus(_number_operand(value))

        return negative

    def _comparison(self, node: Any) -> Evaluator:
        if node.type in ("eq", "ne") and type(node.right) is re_ast.StringExpression:
            return self._against_string(node)
        left, right = self.compile(node.left), self.compile(node.right)
        if node.type == "eq":
            return lambda event: _equal(left(event), right(event))
        if node.type == "ne":
            return lambda event: not _equal(left(event), right(event))
        raise _Unsupported(node.type)

    def _against_string(self, node: Any) -> Evaluator:
        # the hot path of conditions on names: only a string equals a string, in Python as in
        # rule-engine, so Python's == and != say it all
        text, value = node.right.value, self.compile(node.left)
        if node.type == "eq":
            return lambda event: value(event) == text
        return lambda event: value(event) != text

    def _ordering(self, node: Any) -> Evaluator:
        compare = _ORDERINGS[node.type]
        left = self.compile(node.left)
        right_node = node.right
        if type(right_node) is re_ast.FloatExpression and type(_literal(right_node.value)) is float:
            # the hot path of threshold rules: a field against a number
            bound = float(right_node.value)

            def against_number(event: Any) -> bool:
                value = left(event)
                if type(value) is float:
                    return compare(value, bound)
                return _ordered(compare, value, bound)

            return against_number
        right = self.compile(node.right)
        return lambda event: _ordered(compare, left(event), right(event))

    def _regex(self, node: Any) -> Evaluator:
        if type(node.right) is not re_ast.StringExpression:
            raise _Unsupported("regex from an expression")
        method, wanted = _REGEX_OPERATORS[node.type]
        search = getattr(re.compile(node.right.value, self._context.regex_flags), method)
        left = self.compile(node.left)

        def regex(event: Any) -> bool:
            text = left(event)
            if text is None:
                return not wanted
            if type(text) is not str:
                raise ConditionError(_TYPE_MISMATCH)
            return (search(text) is not None) is wanted

        return regex

    def _contains(self, node: Any) -> Evaluator:
        member = self.compile(node.member)
        container_node = node.container
        if type(container_node) in (re_ast.ArrayExpression, re_ast.SetExpression):
            if not container_node.is_reduced:
                raise _Unsupported("collection with computed members")
            members = frozenset(container_node.evaluate(None))
            return lambda event: _membership_key(member(event)) in members
        container = self.compile(container_node)

        def within(event: Any) -> bool:
            whole = container(event)
            if type(whole) is not str:
                if _is_number(whole) or whole is None or type(whole) is bool:
                    raise ConditionError(_TYPE_MISMATCH)
                raise _Fallback("container")
            part = member(event)
            if type(part) is not str:
                raise ConditionError(_TYPE_MISMATCH)
            return part in whole

        return within

    def _add(self, node: Any) -> Evaluator:
        left, right = self.compile(node.left), self.compile(node.right)
        add = self._decimal.add

        def plus(event: Any) -> Any:
            a, b = left(event), right(event)
            if type(a) is str or type(b) is str:
                if type(a) is not str or type(b) is not str:
                    raise ConditionError(f"{_TYPE_MISMATCH} (not a string value)")
                return a + b
            return add(_number_operand(a), _number_operand(b))

        return plus

    def _subtract(self, node: Any) -> Evaluator:
        return self._decimal_operation(node, self._decimal.subtract)

    def _arithmetic_operation(self, node: Any) -> Evaluator:
        return self._decimal_operation(node, self._arithmetic[node.type])

    def _decimal_operation(
        self, node: Any, operation: Callable[[Decimal, Decimal], Decimal]
    ) -> Evaluator:
        left, right = self.compile(node.left), self.compile(node.right)

        def calculate(event: Any) -> Decimal:
            a = _number_operand(left(event))
            b = _number_operand(right(event))
            try:
                return operation(a, b)
            except ArithmeticError:
                raise ConditionError("arithmetic error") from None

        return calculate

    def _ternary(self, node: Any) -> Evaluator:
        condition = self.compile(node.condition)
        when_true, when_false = self.compile(node.case_true), self.compile(node.case_false)
        return lambda event: when_true(event) if condition(event) else when_false(event)


_BOOLEAN_NODES = (
    re_ast.BooleanExpression,
    re_ast.LogicExpression,
    re_ast.ComparisonExpression,
    re_ast.ArithmeticComparisonExpression,
    re_ast.FuzzyComparisonExpression,
    re_ast.ContainsExpression,
)


def _gives_bool(node: Any) -> bool:
    """Whether the compiled form of `node` always gives True or False."""
    if type(node) in _BOOLEAN_NODES:
        return True
    if type(node) is re_ast.UnaryExpression:
        return bool(node.type == "not")
    return type(node) is re_ast.SymbolExpression and _static_type(node) is DataType.BOOLEAN


_SIGNS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


class _Fuser:
    """The compiled form of a condition as one Python function: one call an event, rather
    than one per node. The shapes threshold rules are made of (a field, a field against a
    string or a number, and, or, not) are written out as Python; any other part is the
    compiler's closure, called from it. The order of evaluation, the short-circuits, the
    values and the errors are the closures'. Only names go into the source: every value
    (a string, a bound, a closure) is bound in its namespace."""

    def __init__(self, compiler: _Compiler) -> None:
        self._compiler = compiler
        self._names: dict[str, Any] = {"_ordered": _ordered}
        self._count = 0

    def functions(self, node: Any) -> tuple[Evaluator, Selector]:
        """The condition for one event, and over a list of events (the ones it holds for):
        the same expression, the second in a comprehension that makes no call an event."""
        truth = self._truth(node)
        source = (
            f"def fused(e):\n    return {truth}\n"
            f"def select(events):\n    return [e for e in events if {truth}]\n"
        )
        exec(compile(source, "<condition>", "exec"), self._names)
        return self._names["fused"], self._names["select"]

    def _name(self, value: Any = None) -> str:
        self._count += 1
        name = f"_{self._count}"
        if value is not None:
            self._names[name] = value
        return name

    def _truth(self, node: Any) -> str:
        source = self._value(node)
        return source if _gives_bool(node) else f"bool({source})"

    def _value(self, node: Any) -> str:
        kind = type(node)
        if kind is re_ast.SymbolExpression and node.scope is None and node.name in FIELD_TYPES:
            return f"e.{node.name}"
        if kind is re_ast.LogicExpression:
            word = "and" if node.type == "and" else "or"
            return f"({self._truth(node.left)} {word} {self._truth(node.right)})"
        if kind is re_ast.UnaryExpression and node.type == "not":
            return f"(not {self._value(node.right)})"
        if _against_string(node):
            sign = "==" if node.type == "eq" else "!="
            return f"({self._value(node.left)} {sign} {self._name(node.right.value)})"
        if _against_float(node):
            return self._against_number(node, float(node.right.value))
        return f"{self._name(self._compiler.compile(node))}(e)"

    def _against_number(self, node: Any, bound: float) -> str:
        """`_Compiler._ordering`'s hot path: a float compared at once, anything else as
        rule-engine compares it."""
        value, bound_name = self._name(), self._name(bound)
        compare = self._name(_ORDERINGS[node.type])
        return (
            f"({value} {_SIGNS[node.type]} {bound_name} if type({value} := "
            f"{self._value(node.left)}) is float else _ordered({compare}, {value}, {bound_name}))"
        )


def _against_string(node: Any) -> bool:
    return (
        type(node) is re_ast.ComparisonExpression
        and node.type in ("eq", "ne")
        and type(node.right) is re_ast.StringExpression
    )


def _against_float(node: Any) -> bool:
    return (
        type(node) is re_ast.ArithmeticComparisonExpression
        and type(node.right) is re_ast.FloatExpression
        and type(_literal(node.right.value)) is float
    )


_HANDLERS: dict[type, Callable[[_Compiler, Any], Evaluator]] = {
    re_ast.SymbolExpression: _Compiler._symbol,
    re_ast.LogicExpression: _Compiler._logic,
    re_ast.UnaryExpression: _Compiler._unary,
    re_ast.ComparisonExpression: _Compiler._comparison,
    re_ast.ArithmeticComparisonExpression: _Compiler._ordering,
    re_ast.FuzzyComparisonExpression: _Compiler._regex,
    re_ast.ContainsExpression: _Compiler._contains,
    re_ast.AddExpression: _Compiler._add,
    re_ast.SubtractExpression: _Compiler._subtract,
    re_ast.ArithmeticExpression: _Compiler._arithmetic_operation,
    re_ast.TernaryExpression: _Compiler._ternary,
}
