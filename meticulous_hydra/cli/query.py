"""A safe ``--filter`` language: comparisons over DataFrame columns, and nothing else.

The expression is parsed with :mod:`ast` and evaluated node by node against
columns; there is no ``eval``, so attribute access, calls, subscripts and
imports are rejected before anything runs. Arithmetic is bounded by the size
of what it would make, checked before it is computed (:func:`_bound`): no
expression takes forever or every byte of memory (``9**9**9``,
``'a' * 10**10``). Column names are :mod:`.names`'.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

from meticulous_hydra.exceptions import QueryError  # older code imports it from here
from meticulous_hydra.reader.frame import hashable

from .names import resolve

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
#: The largest number a filter computes, in bits (10**3000 is about 10,000),
#: and the longest text or list it makes by repeating one.
MAX_BITS = 10_000
MAX_LENGTH = 100_000
# pandas' habits, and other languages': what to write instead
_PANDAS = {ast.BitAnd: ("&", "and"), ast.BitOr: ("|", "or"), ast.Invert: ("~", "not")}
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_HABITS = (
    (re.compile(r"&&"), "write and instead of &&"),
    (re.compile(r"\|\|"), "write or instead of ||"),
    (re.compile(r"=>"), "write >= instead of =>"),
    (re.compile(r"=<"), "write <= instead of =<"),
    (re.compile(r"(?<![=!<>])=(?!=)"), "compare with ==, not ="),
    (re.compile(r"!(?!=)"), "write not instead of !"),
)


def resolve_column(name: str, columns: Sequence[str]) -> str:
    """The column ``name`` (its full or printed name) stands for; otherwise a
    QueryError with the closest names (:func:`.names.resolve`)."""
    return resolve(name, columns)


def _is_int(value: Any) -> bool:
    return isinstance(value, int)  # bools too: True ** 10**9 is cheap, and bounded below


class _TooLarge(QueryError):
    """What a filter would compute is too large: said with the filter."""


def _bound(op: type, left: Any, right: Any) -> None:
    """Refuse ``left op right`` when its result would be larger than
    MAX_BITS or MAX_LENGTH, judged from the operands' sizes alone."""
    if op is ast.Pow and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        if right.bit_length() > 64:  # whatever the base
            raise _TooLarge(
                f"a power too large to compute (an exponent of {right.bit_length()} bits)"
            )
        bits = right * math.log2(abs(left))
        if bits > MAX_BITS:
            raise _TooLarge(
                f"a power too large to compute (about {bits:.3g} bits; the limit is {MAX_BITS:,})"
            )
    elif op is ast.Mult:
        if _is_int(left) and _is_int(right):
            if left.bit_length() + right.bit_length() > MAX_BITS + 1:
                raise _TooLarge(f"a product too large to compute (over {MAX_BITS:,} bits)")
            return
        for items, times in ((left, right), (right, left)):
            if not (isinstance(items, (str, list, tuple)) and _is_int(times)):
                continue
            size = (len(items) if isinstance(items, str) else _items(items)) * times
            if size > MAX_LENGTH:
                raise _TooLarge(
                    f"a repetition too large to compute ({size:.3g} items; "
                    f"the limit is {MAX_LENGTH:,})"
                )


def _items(value: Any, seen: dict[int, int] | None = None) -> int:
    """How many items a list holds, those of the lists inside it included,
    each time they are in it: ``[[1] * 10**4] * 10**4`` is small in memory
    but 10**8 items once compared. A list met again is not walked again."""
    if not isinstance(value, (list, tuple)):
        return 1
    seen = {} if seen is None else seen
    if id(value) not in seen:
        seen[id(value)] = max(1, sum(_items(v, seen) for v in value))
    return seen[id(value)]


def _missing(value: Any) -> bool:
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, float) and value != value


def _arithmetic(op: type, left: Any, right: Any) -> Any:
    """``left op right`` for values and columns, bounded. Columns of numbers
    (int64, float64, ...) are computed by numpy at a fixed width; columns of
    Python values (text, mixed kinds) one value at a time, each bounded."""
    import pandas as pd  # ~175 ms: loaded when a frame is built, not at import

    compute = _BINARY[op]
    columns = [v for v in (left, right) if isinstance(v, pd.Series)]
    if not columns:
        _bound(op, left, right)
        return compute(left, right)
    if all(pd.api.types.is_numeric_dtype(c) for c in columns) and not any(
        isinstance(v, (str, list, tuple)) for v in (left, right)
    ):
        return compute(left, right)
    lefts = left.tolist() if isinstance(left, pd.Series) else repeat(left)
    rights = right.tolist() if isinstance(right, pd.Series) else repeat(right)
    out: list[Any] = []
    for a, b in zip(lefts, rights, strict=False):
        if _missing(a) or _missing(b):
            out.append(None)
            continue
        _bound(op, a, b)
        out.append(compute(a, b))
    return pd.Series(out, index=columns[0].index, dtype=object)


def _is_column(value: Any) -> bool:
    import pandas as pd  # loaded already: a frame is being filtered

    return isinstance(value, pd.Series)


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

    def column(self, name: str, compared_with_column: bool = False) -> pd.Series:
        import pandas as pd  # ~175 ms: loaded when a frame is built, not at import

        quoted = name in self.quoted
        name = self.quoted.get(name, name)
        if name == "id" and "id" not in self.columns:  # the run id is the index
            ids = self.frame.index.get_level_values(-1)
            return pd.Series(ids, index=self.frame.index, dtype=object)
        try:
            return self.frame[resolve_column(name, self.columns)]
        except QueryError as e:
            if quoted or not compared_with_column or "did you mean" in str(e):
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
        if isinstance(node, (ast.BinOp, ast.UnaryOp)) and type(node.op) in _PANDAS:
            typed, word = _PANDAS[type(node.op)]
            raise QueryError(f"write {word} instead of {typed} in a filter")
        if isinstance(node, ast.UnaryOp):
            value = self.eval(node.operand)
            if isinstance(node.op, ast.Not):
                return ~self._bool(value)
            if isinstance(node.op, ast.USub):
                return -value
            if isinstance(node.op, ast.UAdd):
                return value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _arithmetic(type(node.op), self.eval(node.left), self.eval(node.right))
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
        left, left_node = self.eval(node.left), node.left
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            name = _dotted(right_node)
            if name is not None and name not in ("true", "false") and _is_column(left):
                right = self.column(name, compared_with_column=True)
            else:
                right = self.eval(right_node)
            if isinstance(op, (ast.In, ast.NotIn)):
                part = _contains(right, left) if _lists(right) else _isin(left, right)
                part = ~part if isinstance(op, ast.NotIn) else part
            elif isinstance(op, (ast.Is, ast.IsNot)):
                if right is not None:
                    raise QueryError("'is' compares with None only: x is None")
                part = left.isna() if hasattr(left, "isna") else left is None
                part = ~part if isinstance(op, ast.IsNot) else part
            elif isinstance(op, (ast.Eq, ast.NotEq)) and isinstance(right, list):
                part = _isin(left, [right])  # a list value: compared whole
                part = ~part if isinstance(op, ast.NotEq) else part
            elif isinstance(op, (ast.Eq, ast.NotEq)) and (_lists(left) or _lists(right)):
                # `tags == 'best'` would match nothing, silently
                lists, value = (left_node, right) if _lists(left) else (right_node, left)
                if value is not None and not hasattr(value, "dropna"):
                    name = ast.unparse(lists)
                    name = self.quoted.get(name, name)
                    raise QueryError(
                        f"{name} holds lists: {value!r} in {name} tests membership, "
                        f"{name} == [{value!r}] compares the whole list"
                    )
                part = _COMPARE[type(op)](left, right)
            else:
                try:
                    part = _COMPARE[type(op)](left, right)
                except TypeError:  # pandas: "Invalid comparison between dtype=float64 and str"
                    raise _mismatch(left_node, left, right_node, right) from None
            part = self._bool(part)
            result = part if result is None else result & part
            left, left_node = right, right_node
        return result


class _Mismatch(QueryError):
    """Two sides of a comparison that can't be compared (said with the filter)."""


def _side(node: ast.AST, value: Any) -> str:
    name = ast.unparse(node)
    if not _is_column(value):
        return f"{name} is {'text' if isinstance(value, str) else 'a number'}"
    import pandas as pd  # loaded already: a frame is being filtered

    numbers = pd.api.types.is_numeric_dtype(value.dtype)
    return f"{name} holds {'numbers' if numbers else 'lists' if _lists(value) else 'text'}"


def _mismatch(left_node: ast.AST, left: Any, right_node: ast.AST, right: Any) -> _Mismatch:
    """Why two sides can't be compared, and what to write."""
    sides = f"{_side(left_node, left)}, {_side(right_node, right)}"
    text = next((v for v in (left, right) if isinstance(v, str)), None)
    if text is not None and re.fullmatch(r"[-+]?\d+(\.\d*)?(e[-+]?\d+)?", text):
        return _Mismatch(f"{sides}: write {text} for a number")
    return _Mismatch(f"{sides}: numbers compare with numbers, text with quoted text")


def _lists(value: Any) -> bool:
    """A column of lists (tuples in the frame; ``tags``, say)."""
    if not hasattr(value, "dropna"):
        return False
    present = value.dropna()
    return not present.empty and all(isinstance(v, tuple) for v in present.tolist())


def _contains(lists: Any, item: Any) -> Any:
    """``item in lists`` for a column of lists: membership, value by value."""
    import pandas as pd

    items = item.tolist() if isinstance(item, pd.Series) else repeat(hashable(item))
    return pd.Series(
        [
            isinstance(values, tuple) and hashable(i) in values
            for values, i in zip(lists.tolist(), items, strict=False)
        ],
        index=lists.index,
        dtype=bool,
    )


def _isin(left: Any, values: Any) -> Any:
    """``left in values`` where list values (tuples in the frame) compare whole."""
    if not isinstance(values, list):
        raise QueryError(
            "'in' takes a list, status in ['ERROR', 'DIED'], or a column of lists, 'best' in tags"
        )
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
        code = _STRINGS.sub("''", text)
        hint = next((h for pattern, h in _HABITS if pattern.search(code)), e.msg)
        raise QueryError(f"cannot parse filter {expression!r}: {hint}") from None
    except (ValueError, RecursionError, MemoryError) as e:  # NUL bytes, deep nesting
        raise QueryError(f"cannot parse filter {expression!r}: {e}") from None
    import pandas as pd  # ~175 ms: loaded when a frame is built, not at import

    evaluator = _Evaluator(frame, quoted)
    try:
        mask = evaluator.eval(tree)
        if not isinstance(mask, pd.Series):
            raise QueryError(f"filter {expression!r} does not depend on any column")
        return frame[evaluator._bool(mask)]
    except (_TooLarge, _Mismatch) as e:
        raise QueryError(f"cannot evaluate filter {expression!r}: {e}") from None
    except QueryError:
        raise
    except OverflowError:  # 10.0 ** 400
        raise QueryError(
            f"cannot evaluate filter {expression!r}: a number too large for a float"
        ) from None
    except Exception as e:  # any failure of the expression is a one-line error
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise QueryError(f"cannot evaluate filter {expression!r}: {reason}") from None
