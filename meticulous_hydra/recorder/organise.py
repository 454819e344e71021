"""Tags, notes, the archive marker and the trash: what a user adds to recorded
runs, each a plain file in the run folder (see docs/FORMAT.md).

No operation reads a shared file, changes it and writes it back, so two
processes tagging or noting the same run at once lose nothing: a tag is a file
created or removed atomically, a note one line appended with one ``write``.
Every change also changes the run folder's modification time (creating or
removing a file does; an append does not, so :func:`add_note` touches the
folder), which is what the reader's cache watches.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meticulous_hydra import layout

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Note:
    time: str | None
    user: str | None
    text: str


def _touch(folder: Path) -> None:
    # An append leaves the folder's mtime alone; the reader's cache needs it moved.
    try:
        os.utime(folder)
    except OSError:
        pass  # not ours to touch: the file changed anyway, only the cache is slower to see it


def add_tag(run: Path, tag: str) -> bool:
    """Tag ``run``; False when it already had the tag."""
    path = run / (layout.TAG_PREFIX + layout.validate_tag(tag))
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, layout.FILE_MODE))
    except FileExistsError:
        return False
    return True


def remove_tag(run: Path, tag: str) -> bool:
    """Remove the tag; False when ``run`` did not have it."""
    try:
        os.unlink(run / (layout.TAG_PREFIX + layout.validate_tag(tag)))
    except FileNotFoundError:
        return False
    return True


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def _unescape(text: str) -> str:
    out, chars = [], iter(text)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            out.append({"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(nxt, "\\" + nxt))
        else:
            out.append(ch)
    return "".join(out)


def add_note(run: Path, text: str, user: str, when: str | None = None) -> Note:
    """Append a note to ``run``'s NOTES: one line ``time<TAB>user<TAB>text``."""
    when = when or layout.now().isoformat(timespec="seconds")
    line = f"{when}\t{_escape(user)}\t{_escape(text)}\n".encode()
    fd = layout.open_append(run / layout.NOTES)
    try:
        os.write(fd, line)  # one write: concurrent notes never interleave
    finally:
        os.close(fd)
    _touch(run)
    return Note(when, user, text)


def parse_notes(text: str) -> list[Note]:
    """NOTES lines as notes; a line typed by hand without tabs is all text."""
    notes = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) == 3:
            notes.append(Note(parts[0] or None, _unescape(parts[1]) or None, _unescape(parts[2])))
        else:
            notes.append(Note(None, None, _unescape(line)))
    return notes


def set_archived(run: Path, archived: bool) -> bool:
    """Archive (or unarchive) ``run``; False when it already was (or was not)."""
    path = run / layout.ARCHIVED
    if archived:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, layout.FILE_MODE))
        except FileExistsError:
            return False
        return True
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def markers(run: str) -> dict[str, Any]:
    """The reader's columns for one run folder: ``tags`` (a sorted tuple),
    ``notes`` (a tuple of texts) and ``archived``, from one listing."""
    try:
        names = os.listdir(run)
    except OSError:
        names = []
    notes = ""
    if layout.NOTES in names:
        try:
            notes = layout.read_file(os.path.join(run, layout.NOTES)).decode("utf-8", "replace")
        except OSError:
            pass  # a FIFO or worse: no notes to show
    return marks(names, notes)


def marks(names: Collection[str], notes: str) -> dict[str, Any]:
    """:func:`markers` of a folder holding ``names`` whose NOTES say ``notes``."""
    tags = sorted(n[len(layout.TAG_PREFIX) :] for n in names if n.startswith(layout.TAG_PREFIX))
    texts = tuple(n.text for n in parse_notes(notes)) if notes else ()
    return {"tags": tuple(tags), "notes": texts, "archived": layout.ARCHIVED in names}


# -- the trash -------------------------------------------------------------------


def trash_dir(root: Path) -> Path:
    return root / layout.TRASH_DIR


def trash(run: Path) -> Path:
    """Move ``run`` into its root's trash; return where it went. A second run
    with the same (custom) id goes to ``<id>~2``, ``<id>~3``, ..."""
    folder = trash_dir(run.parent)
    layout.make_dir(folder, exist_ok=True)
    keep_number(run)
    target, n = folder / run.name, 1
    while True:
        try:
            # rename onto a missing name; an existing (even empty) folder is never replaced
            if target.exists() or target.is_symlink():
                raise FileExistsError(target)
            os.rename(run, target)
            return target
        except FileExistsError:
            n += 1
            target = folder / f"{run.name}~{n}"


def trashed(root: Path) -> list[str]:
    """Names in the trash of ``root``."""
    try:
        return sorted(e.name for e in os.scandir(trash_dir(root)) if e.is_dir())
    except FileNotFoundError:
        return []


def restore(root: Path, name: str) -> Path:
    """Move ``.trash/<name>`` back to ``<root>/<id>``. Raises FileExistsError
    when a run with that id is there already."""
    source = trash_dir(root) / name
    target = root / name.split("~", 1)[0]
    if target.exists() or target.is_symlink():
        raise FileExistsError(target)
    os.rename(source, target)
    return target


def keep_number(run: Path) -> None:
    """Make sure the run's number is never given again: its ``.numbers/N``
    marker (a root from before the markers may lack it)."""
    if layout.is_numbered(run.name) and run.parent.name != layout.TRASH_DIR:
        layout.make_dir(run.parent / layout.NUMBERS_DIR / run.name, exist_ok=True)


def purge(folder: Path) -> None:
    """Delete a run folder (live or trashed) for good."""
    keep_number(folder)
    shutil.rmtree(folder)


def hide_archived(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without its archived runs."""
    if "archived" not in frame.columns:
        return frame  # a reader subclass that builds its own rows
    return frame[~frame["archived"].fillna(False).astype(bool)]
