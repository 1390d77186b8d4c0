"""The code checker's verdict, decided outside the sandbox from data the sandbox sends back.

A reference test is Python with asserts. Before it enters the sandbox, each assert is rewritten
into a probe: `assert f(3) == 9 and g() is None` becomes `_probe(0, (f(3), g()))` — the
values the answer's code computes travel out, the literals they are compared with (9, None)
stay here with the assert's shape. The scorer then evaluates the shape over those values.

So the verdict cannot be forged from inside: the sandbox never sees the expected values (no
reading them from the tests' source or a caller's frame), it sends plain data only (an object
whose `__eq__` always says yes arrives as "an object of type X" and equals nothing), and
anything it writes is values, not a verdict. Every comparison of a reference assert therefore
needs one literal side (checked when the references load): a comparison of two computed
values would be computed where the answer's code could change both.
"""

from __future__ import annotations

import ast
import json
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

PROBE = "_probe"
MAX_DEPTH = 32

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


class Opaque:
    """A value the sandbox only named (not plain data): equal to nothing but itself, neither true nor false."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __bool__(self) -> bool:
        raise TypeError(f"an object of type {self.kind}")


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return False
    return True


def _parts(node: ast.expr, value: bool = False) -> Iterator[tuple[ast.expr, bool]]:
    """An assert's condition top down: (node, False) for an and/or/not/comparison the scorer
    evaluates itself, (node, True) for a value it takes as it is (computed, or a literal)."""
    is_not = isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)
    if value or not (is_not or isinstance(node, ast.BoolOp | ast.Compare)):
        yield node, True
        return
    yield node, False
    if isinstance(node, ast.BoolOp):
        children = node.values
    elif isinstance(node, ast.Compare):
        children = [node.left, *node.comparators]  # a comparison's operands are values, whatever they are
    elif isinstance(node, ast.UnaryOp):  # not
        children = [node.operand]
    for child in children:
        yield from _parts(child, value=isinstance(node, ast.Compare))


def _computed(node: ast.expr) -> list[ast.expr]:
    """The values the sandbox computes for this condition, in evaluation order."""
    return [part for part, value in _parts(node) if value and not _is_literal(part)]


@dataclass(frozen=True)
class ProbedTest:
    source: str  # what enters the sandbox: the test with each assert turned into a probe
    first_line: str
    asserts: tuple[ast.expr, ...]  # what stays here: each assert's condition, its literals included


class _ToProbes(ast.NodeTransformer):
    def __init__(self) -> None:
        self.asserts: list[ast.expr] = []

    def visit_Assert(self, node: ast.Assert) -> ast.stmt:
        for compare in (part for part, value in _parts(node.test) if isinstance(part, ast.Compare) and not value):
            if all(not _is_literal(n) for n in (compare.left, *compare.comparators)):
                raise ValueError(f"compare with a literal, not two computed values: {ast.unparse(compare)}")
        values = ast.Tuple(elts=_computed(node.test), ctx=ast.Load())
        call = ast.Call(ast.Name(PROBE, ast.Load()), [ast.Constant(len(self.asserts)), values], [])
        self.asserts.append(node.test)
        return ast.copy_location(ast.Expr(call), node)


def probed(test: str) -> ProbedTest:
    """The test with its asserts as probes; ValueError for an assert that compares two computed values."""
    rewriter = _ToProbes()
    tree = ast.fix_missing_locations(rewriter.visit(ast.parse(test)))
    if not rewriter.asserts:
        raise ValueError(f"a test without an assert checks nothing: {test.splitlines()[0]!r}")
    return ProbedTest(ast.unparse(tree), test.splitlines()[0][:60], tuple(rewriter.asserts))


def decode(value: Any, depth: int = 0) -> Any:
    """Tagged JSON from the sandbox back to plain data; ValueError for anything else."""
    if depth > MAX_DEPTH:
        raise ValueError("too deep")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [decode(v, depth + 1) for v in value]
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError("not a tagged value")
    ((tag, body),) = value.items()
    match tag, body:
        case "opaque", str():
            return Opaque(sandbox_name(body))
        case "float", "inf" | "-inf" | "nan":
            return float(body)
        case "bytes", str():
            return bytes.fromhex(body)
        case "tuple" | "set" | "frozenset", list():
            items = [decode(v, depth + 1) for v in body]
            return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
        case "dict", list():
            return {decode(k, depth + 1): decode(v, depth + 1) for k, v in body}
    raise ValueError(f"unknown tag {tag!r}")


def holds(condition: ast.expr, values: Iterator[Any]) -> bool:
    """The assert's condition over the values the sandbox sent (in `_parts` order) and its own literals."""

    def operand(node: ast.expr) -> Any:
        return ast.literal_eval(node) if _is_literal(node) else next(values)

    if isinstance(condition, ast.BoolOp):
        results = [holds(v, values) for v in condition.values]  # every operand was evaluated: consume all
        return all(results) if isinstance(condition.op, ast.And) else any(results)
    if isinstance(condition, ast.UnaryOp) and isinstance(condition.op, ast.Not):
        return not holds(condition.operand, values)
    if isinstance(condition, ast.Compare):
        operands = [operand(n) for n in (condition.left, *condition.comparators)]
        pairs = zip(condition.ops, operands[:-1], operands[1:], strict=True)
        return all([bool(_COMPARE[type(op)](a, b)) for op, a, b in pairs])
    return bool(operand(condition))


@dataclass(frozen=True)
class TestOutcome:
    passed: bool
    why: str = ""


def judge(test: ProbedTest, records: list[dict]) -> TestOutcome:
    """Did the test run to its end with every assert holding each time it ran?"""
    raised = [r["raised"] for r in records if "raised" in r]
    if raised:
        return TestOutcome(False, sandbox_name(raised[0]))
    if not any(r.get("done") is True for r in records):
        return TestOutcome(False, "did not finish")
    for k, condition in enumerate(test.asserts):
        seen = [r["values"] for r in records if r.get("assert") == k and isinstance(r.get("values"), list)]
        if not seen:
            return TestOutcome(False, "an assert did not run")
        for values in seen:
            try:
                if not holds(condition, iter([decode(v) for v in values])):
                    return TestOutcome(False, "AssertionError")
            except (ValueError, TypeError, StopIteration, RuntimeError) as exc:  # RecursionError included
                return TestOutcome(False, f"not comparable ({str(exc)[:40]})")
    return TestOutcome(True)


def sandbox_name(text: object) -> str:
    """A name the sandbox sent (an exception's, a type's) if it looks like one: it reaches notes and terminals."""
    return text if isinstance(text, str) and text.isidentifier() and text.isascii() and len(text) <= 40 else "?"


def parse_records(raw: bytes) -> list[dict]:
    """The JSON lines the sandbox wrote; lines that are not a JSON object are skipped."""
    records = []
    for line in raw.splitlines():
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
