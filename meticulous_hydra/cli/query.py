"""A safe ``--filter`` language: comparisons over DataFrame columns, and nothing else.

The expression is parsed with :mod:`ast` and evaluated node by node against
columns; there is no ``eval``, so attribute access, calls, subscripts and
imports are rejected before anything runs.
"""

from __future__ import annotations

import ast
import difflib
import operator
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from meticulous_hydra.exceptions import QueryError  # older code imports it from here
from meticulous_hydra.reader.frame import hashable

if TYPE_CHECKING:
    import pandas as pd


_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_BACKTICK = re.compile(r"`([^`]*)`")
_PREFIXES = ("", "config.", "summary.", "metadata.")


def resolve_column(name: str, columns: Sequence[str]) -> str:
    """The column ``name`` stands for: itself, or ``config.``/``summary.``/
    ``metadata.`` + name; otherwise a QueryError with the closest names."""
    for prefix in _PREFIXES:
        if prefix + name in columns:
            return prefix + name
    close = difflib.get_close_matches(name, list(columns), n=3, cutoff=0.6)
    if not close:
        close = [c for c in columns if c.endswith("." + name.rsplit(".", 1)[-1])][:3]
    hint = f"; did you mean {' or '.join(close)}?" if close else "; list them with --list-columns"
    raise QueryError(f"unknown column {name!r}{hint}")


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


class _Evaluator:
    def __init__(self, frame: pd.DataFrame, quoted: dict[str, str]) -> None:
        self.frame = frame
        self.columns = [str(c) for c in frame.columns]
        self.quoted = quoted

    def column(self, name: str) -> pd.Series:
        import pandas as pd  # ~175 ms: loaded when a frame is built, not at import

        quoted = name in self.quoted
        name = self.quoted.get(name, name)
        if name == "id" and "id" not in self.columns:  # the run id is the index
            ids = self.frame.index.get_level_values(-1)
            return pd.Series(ids, index=self.frame.index, dtype=object)
        try:
            return self.frame[resolve_column(name, self.columns)]
        except QueryError as e:
            if quoted or "did you mean" in str(e):
                raise
            # status == SUCCESS: a value written without quotes
            raise QueryError(
                f"unknown column {name!r}; did you mean '{name}' (a value, quoted)?"
            ) from e

    def eval(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return self.eval(node.body)
        if isinstance(node, ast.BoolOp):
            values = [self._bool(self.eval(v)) for v in node.values]
            combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
            result = values[0]
            for v in values[1:]:
                result = combine(result, v)
            return result
        if isinstance(node, ast.UnaryOp):
            value = self.eval(node.operand)
            if isinstance(node.op, ast.Not):
                return ~self._bool(value)
            if isinstance(node.op, ast.USub):
                return -value
            if isinstance(node.op, ast.UAdd):
                return value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](self.eval(node.left), self.eval(node.right))
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Constant) and isinstance(
            node.value, (int, float, str, bool, type(None))
        ):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return [self.eval(e) for e in node.elts]
        name = _dotted(node)
        if name is not None:
            if name in ("true", "false"):
                return name == "true"
            return self.column(name)
        raise QueryError(
            f"not allowed in a filter: {ast.unparse(node)!r} (only columns, values, comparisons, and/or/not, arithmetic)"
        )

    def _bool(self, value: Any) -> Any:
        import pandas as pd  # ~175 ms: loaded when a frame is built, not at import

        if isinstance(value, pd.Series):
            # a number column used as a condition: true where non-zero
            return value.astype(object).where(value.notna(), False).astype(bool)
        return bool(value)

    def _compare(self, node: ast.Compare) -> Any:
        result = None
        left = self.eval(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.eval(right_node)
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right, list):
                    raise QueryError("'in' takes a list: status in ['ERROR', 'DIED']")
                part = _isin(left, right)
                part = ~part if isinstance(op, ast.NotIn) else part
            elif isinstance(op, (ast.Is, ast.IsNot)):
                if right is not None:
                    raise QueryError("'is' compares with None only: x is None")
                part = left.isna() if hasattr(left, "isna") else left is None
                part = ~part if isinstance(op, ast.IsNot) else part
            elif isinstance(op, (ast.Eq, ast.NotEq)) and isinstance(right, list):
                part = _isin(left, [right])  # a list value: compared whole
                part = ~part if isinstance(op, ast.NotEq) else part
            else:
                part = _COMPARE[type(op)](left, right)
            part = self._bool(part)
            result = part if result is None else result & part
            left = right
        return result


def _isin(left: Any, values: list[Any]) -> Any:
    """``left in values`` where list values (tuples in the frame) compare whole."""
    wanted = {hashable(v) for v in values}
    if hasattr(left, "map"):
        return left.map(lambda v: _member(v, wanted))
    return _member(hashable(left), wanted)


def _member(value: Any, wanted: set[Any]) -> bool:
    try:
        return value in wanted
    except TypeError:  # unhashable: a value no filter can name
        return False


def filter_frame(frame: pd.DataFrame, expression: str) -> pd.DataFrame:
    """Rows of ``frame`` where ``expression`` holds. Dotted column names are
    written as they are (``config.optimizer.lr > 0.01``); a name with other
    characters goes in backticks."""
    quoted: dict[str, str] = {}

    def quote(match: re.Match[str]) -> str:
        key = f"__quoted_{len(quoted)}__"
        quoted[key] = match.group(1)
        return key

    text = _BACKTICK.sub(quote, expression).strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise QueryError(f"cannot parse filter {expression!r}: {e.msg}") from e
    except (ValueError, RecursionError, MemoryError) as e:  # NUL bytes, deep nesting
        raise QueryError(f"cannot parse filter {expression!r}: {e}") from None
    import pandas as pd  # ~175 ms: loaded when a frame is built, not at import

    evaluator = _Evaluator(frame, quoted)
    try:
        mask = evaluator.eval(tree)
        if not isinstance(mask, pd.Series):
            raise QueryError(f"filter {expression!r} does not depend on any column")
        return frame[evaluator._bool(mask)]
    except QueryError:
        raise
    except Exception as e:  # any failure of the expression is a one-line error
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise QueryError(f"cannot evaluate filter {expression!r}: {reason}") from None
