"""Tags, notes, the archive marker and the trash: what a user adds to recorded
runs, each a plain file in the run folder (see docs/FORMAT.md).

No operation reads a shared file, changes it and writes it back, so two
processes tagging or noting the same run at once lose nothing: a tag is a file
created or removed atomically, a note one line appended with one ``write``.
Every change also changes the run folder's modification time (creating or
removing a file does; an append does not, so :func:`add_note` touches the
folder), which is what the reader's cache watches.

Nothing here follows a symbolic link: a run folder, a file in it, the root's
``.trash`` or ``.numbers`` that is a link raises
:class:`~meticulous_hydra.exceptions.LinkRefused`, and every file is created,
renamed or deleted relative to a folder opened without following links, so a
link put in place meanwhile leads nowhere either. A change the disk refuses
(read-only, full, no permission) raises
:class:`~meticulous_hydra.exceptions.ChangeError` naming the file. Another
process that got there first (two ``rm`` at once) is no error: the functions
say so in what they return.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meticulous_hydra import layout
from meticulous_hydra.exceptions import ChangeError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Note:
    time: str | None
    user: str | None
    text: str


@contextlib.contextmanager
def _changing(path: Path) -> Iterator[None]:
    """A failing file operation on ``path`` as one :class:`ChangeError`."""
    try:
        yield
    except OSError as e:
        raise ChangeError(f"cannot change {path}: {e.strerror or e}") from e


@contextlib.contextmanager
def _in_run(run: Path, name: str = "") -> Iterator[int]:
    """An fd of the run folder ``run`` (never a link), errors naming ``run/name``."""
    with (
        _changing(run / name if name else run),
        layout.own_folder(run.parent, run.name, create=False) as fd,
    ):
        yield fd


def _open_in(run_fd: int, run: Path, name: str, flags: int) -> int:
    """Open ``name`` in the run folder without following a link there."""
    try:
        return os.open(name, flags | os.O_NOFOLLOW, layout.FILE_MODE, dir_fd=run_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise layout.link_refused(run / name) from None
        raise


def _add_marker(run: Path, name: str) -> bool:
    """Create the empty file ``name`` in ``run``; False when it was there (a
    link there counts as there: nothing is written through it)."""
    with _in_run(run, name) as fd:
        try:
            os.close(_open_in(fd, run, name, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return False
    return True


def _remove_marker(run: Path, name: str) -> bool:
    """Remove ``name`` from ``run``; False when it was not there."""
    with _in_run(run, name) as fd:
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            return False
    return True


def add_tag(run: Path, tag: str) -> bool:
    """Tag ``run``; False when it already had the tag."""
    return _add_marker(run, layout.TAG_PREFIX + layout.validate_tag(tag))


def remove_tag(run: Path, tag: str) -> bool:
    """Remove the tag; False when ``run`` did not have it."""
    return _remove_marker(run, layout.TAG_PREFIX + layout.validate_tag(tag))


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
    with _in_run(run, layout.NOTES) as run_fd:
        fd = _open_in(run_fd, run, layout.NOTES, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, line)  # one write: concurrent notes never interleave
        finally:
            os.close(fd)
        # An append leaves the folder's mtime alone; the reader's cache needs it moved.
        try:
            os.utime(run_fd)
        except OSError:
            pass  # not ours to touch: the file changed anyway, only the cache is slower to see it
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
    if archived:
        return _add_marker(run, layout.ARCHIVED)
    return _remove_marker(run, layout.ARCHIVED)


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


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


_TAKEN = (errno.EEXIST, errno.ENOTEMPTY)


def trash(run: Path) -> Path | None:
    """Move ``run`` into its root's trash; return where it went, or None when
    ``run`` was gone already (another process moved or deleted it). A second
    run with the same (custom) id goes to ``<id>~2``, ``<id>~3``, ..."""
    root = run.parent
    with (
        _changing(run),
        layout.own_folder(root) as root_fd,
        layout.own_folder(root, layout.TRASH_DIR) as trash_fd,
    ):
        if os.path.islink(run):
            raise layout.link_refused(run)
        keep_number(run)
        target, n = run.name, 1
        while True:
            # rename onto a missing name; an existing (even empty) folder is never replaced
            if not _exists(target, trash_fd):
                try:
                    os.rename(run.name, target, src_dir_fd=root_fd, dst_dir_fd=trash_fd)
                    return trash_dir(root) / target
                except FileNotFoundError:
                    return None
                except OSError as e:
                    if e.errno not in _TAKEN:
                        raise
            n += 1
            target = f"{run.name}~{n}"


def trashed(root: Path) -> list[str]:
    """Names in the trash of ``root`` (its folders; never a link)."""
    try:
        with layout.own_folder(root, layout.TRASH_DIR, create=False) as fd:
            entries = list(os.scandir(fd))
    except FileNotFoundError:
        return []
    return sorted(
        e.name for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
    )


def restore(root: Path, name: str) -> Path | None:
    """Move ``.trash/<name>`` back to ``<root>/<id>``; None when it left the
    trash meanwhile (another process restored or purged it). Raises
    FileExistsError when a run with that id is there already."""
    target = name.split("~", 1)[0]
    with (
        _changing(trash_dir(root) / name),
        layout.own_folder(root) as root_fd,
        layout.own_folder(root, layout.TRASH_DIR, create=False) as trash_fd,
    ):
        taken = _exists(target, root_fd)
        if not taken:
            try:
                os.rename(name, target, src_dir_fd=trash_fd, dst_dir_fd=root_fd)
                return root / target
            except FileNotFoundError:
                return None
            except OSError as e:
                if e.errno not in _TAKEN:
                    raise
        elif not _exists(name, trash_fd):
            return None  # restored by another process, which put it there
    raise FileExistsError(root / target)


def keep_number(run: Path) -> None:
    """Make sure the run's number is never given again: its ``.numbers/N``
    marker (a root from before the markers may lack it)."""
    if layout.is_numbered(run.name) and run.parent.name != layout.TRASH_DIR:
        with (
            _changing(run.parent / layout.NUMBERS_DIR / run.name),
            layout.own_folder(run.parent, layout.NUMBERS_DIR) as fd,
        ):
            try:
                os.mkdir(run.name, layout.DIR_MODE, dir_fd=fd)
            except FileExistsError:
                pass


def purge(folder: Path) -> bool:
    """Delete a run folder (live, or ``.trash/<name>``) for good; False when it
    was gone already (another process deleted or moved it). The folder is
    renamed to a hidden name first, which no reader lists: it leaves the root
    at once and whole, and of two processes purging it only one does."""
    in_trash = folder.parent.name == layout.TRASH_DIR
    root = folder.parent.parent if in_trash else folder.parent
    inner = (layout.TRASH_DIR,) if in_trash else ()
    with _changing(folder), layout.own_folder(root, *inner, create=False) as fd:
        if os.path.islink(folder):
            raise layout.link_refused(folder)
        keep_number(folder)
        doomed = f".{folder.name}.purging-{os.getpid()}"
        try:
            os.rename(folder.name, doomed, src_dir_fd=fd, dst_dir_fd=fd)
        except FileNotFoundError:
            return False
        if sys.version_info >= (3, 11):
            shutil.rmtree(doomed, dir_fd=fd)
        else:  # no dir_fd: the path, checked above
            shutil.rmtree(folder.parent / doomed)
    return True


def hide_archived(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without its archived runs."""
    if "archived" not in frame.columns:
        return frame  # a reader subclass that builds its own rows
    return frame[~frame["archived"].fillna(False).astype(bool)]
