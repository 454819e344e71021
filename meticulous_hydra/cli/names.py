"""Column names as people read and type them: one rule for the table's
headers, ``meticulous diff``'s rows and every option that takes a column
(``--filter``, ``--sort``, ``--group-by``, ``--columns``).

A column has its full name (``config.optimizer.lr``, ``summary.loss``,
``metadata.hydra.choices.model``) and a short one, the full name without its
section (``optimizer.lr``, ``loss``, ``model`` for a Hydra config group's
choice). The short name is printed, and accepted, wherever it names one
column only; where it would name two (``config.loss`` and ``summary.loss``)
both are printed and typed in full. What is printed always works as typed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from meticulous_hydra.exceptions import QueryError

#: The sections a short name leaves out; a config group's choice before the
#: rest of the metadata, so that ``metadata.hydra.choices.model`` is ``model``.
SECTIONS = ("config.", "summary.", "metadata.hydra.choices.", "metadata.")
#: The run id's name (the frame's index, a column of the exports): never a
#: column's short name, so ``metadata.id`` is printed whole.
INDEX = "id"


def _short(column: str) -> str:
    for section in SECTIONS:
        if column.startswith(section) and len(column) > len(section):
            return column[len(section) :]
    return column


def _candidates(name: str, columns: set[str]) -> list[str]:
    """The columns ``name`` could stand for: itself, or a section + name."""
    return [c for c in (name, *(s + name for s in SECTIONS)) if c in columns]


def short_names(columns: Iterable[str]) -> dict[str, str]:
    """Each column's printed name among ``columns`` (every column there is, not
    just those shown: a name must mean the same whatever is on screen)."""
    known = set(columns)
    out = {}
    for column in known:
        short = _short(column)
        unique = short != INDEX and _candidates(short, known) == [column]
        out[column] = short if unique else column
    return out


def resolve(name: str, columns: Sequence[str]) -> str:
    """The column ``name`` (full or short) stands for; otherwise a QueryError
    with the closest names as they are printed."""
    known = set(columns)
    if name in known:
        return name
    found = _candidates(name, known)
    if len(found) == 1:
        return found[0]
    if found:
        raise QueryError(f"{name!r} may be {' or '.join(found)}; write the whole name")
    printed = short_names(columns)
    # a section that is not the column's (config.loss for summary.loss): the
    # columns of that name, as they are printed
    tails = [name[len(s) :] for s in SECTIONS if name.startswith(s) and len(name) > len(s)]
    moved = list(dict.fromkeys(printed[c] for t in tails for c in _candidates(t, known)))
    if moved:
        raise QueryError(f"unknown column {name!r}; did you mean {' or '.join(moved[:3])}?")
    # both spellings are matched; each column is suggested once, as it matched
    spelled = {**{p: c for c, p in printed.items()}, **{c: c for c in known}}
    close = difflib.get_close_matches(name, list(spelled), n=6, cutoff=0.6)
    if not close:
        tail = "." + name.rsplit(".", 1)[-1]
        close = [p for c, p in printed.items() if c.endswith(tail)]
    # each column once, spelled as it matched best
    first: dict[str, str] = {}
    for c in close:
        first.setdefault(spelled[c], c)
    close = list(first.values())[:3]
    hint = f"; did you mean {' or '.join(close)}?" if close else "; list them with --list-columns"
    raise QueryError(f"unknown column {name!r}{hint}")
