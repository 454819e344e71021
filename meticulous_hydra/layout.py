"""The on-disk format of an experiments root, shared by the writer and the reader.

Everything that decides a file name, how a folder is numbered, or how a file is
written lives here; docs/FORMAT.md is the prose version of this module.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import enum
import errno
import json
import math
import os
import re
import stat
from collections.abc import Container, Iterator, Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

# Older code imports these from here.
from .exceptions import InvalidIdError, LinkRefused, NotSerializable, RecordingError, StorageError

FORMAT_VERSION = 1

CONFIG_YAML = "config.yaml"
CONFIG_JSON = "config.json"
METADATA = "metadata.json"
STATUS = "STATUS"
STDOUT = "stdout"
STDERR = "stderr"
# room held while a run records, freed to write its end on a full disk
END_RESERVE = ".end-reserve"
# metadata "capture": how fd 1 (2) was captured: teed through a pipe (a pipe
# or file), through a pseudo-terminal (a terminal), or not (closed at start);
# stderr IN_STDOUT: it was stdout's terminal, and its bytes are in stdout
CAPTURE_PIPE, CAPTURE_TERMINAL, CAPTURE_CLOSED, CAPTURE_IN_STDOUT = (
    "pipe",
    "terminal",
    "closed",
    STDOUT,
)
SUMMARY = "summary.json"
METRICS = "metrics.jsonl"
GIT_DIFF = "git.diff"
PACKAGES = "packages.txt"  # name==version of every installed distribution
# untracked code that ran, under its path in the repository (capture12, issue 12 #5)
UNTRACKED_DIR = "untracked"
ROOT_GITIGNORE = ".gitignore"
# Requeued SLURM jobs find their folder again through markers kept here.
SWEEPS_DIR = ".sweeps"
# One empty folder per number ever given in the root, so that none is given twice.
NUMBERS_DIR = ".numbers"
# One claim per failed sweep job being run again by `meticulous rerun`.
RERUNS_DIR = ".reruns"
# The empty file that marks a folder as a run this project made, created when
# the folder is claimed (runs from before it are told by metadata.json + STATUS).
RUN_MARKER = ".meticulous-run"

RUNNING = "RUNNING"
SUCCESS = "SUCCESS"
ERROR = "ERROR"
INTERRUPTED = "INTERRUPTED"
# The scheduler (SLURM) ended the run at its time limit.
TIMEOUT = "TIMEOUT"
# The scheduler put the job back in its queue: it runs again, in this folder.
REQUEUED = "REQUEUED"
DIED = "DIED"
# The reader could not tell (a STATUS missing or damaged): read_error says why.
UNKNOWN = "UNKNOWN"
FINAL_STATUSES = (SUCCESS, ERROR, INTERRUPTED, TIMEOUT)
STATUSES = (RUNNING, REQUEUED, *FINAL_STATUSES)

# JSON has no NaN or infinity: NaN is written as null and +-inf as +-1e999,
# which every JSON parser reads back as a float overflowing to +-inf.
_POS_INF = "1e999"
_NEG_INF = "-1e999"
# to_jsonable stands infinities in as this string (plus "+" or "-"), which
# dumps_json swaps for the numbers: text with a NUL byte in it is no config value.
_INF = "\x00meticulous-inf"
_INF_MARK = json.dumps(_INF)[1:-1]

_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,255}")

# Modes before the umask is applied: whatever the umask, nothing the recorder
# creates is writable by other users.
DIR_MODE = 0o775
FILE_MODE = 0o664


def make_dir(path: Path, *, exist_ok: bool = False) -> None:
    """mkdir with DIR_MODE, parents included (each created with DIR_MODE too)."""
    missing = []
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass
    path.mkdir(mode=DIR_MODE, exist_ok=exist_ok)


def open_append(path: Path) -> int:
    """An fd appending to ``path`` (created with FILE_MODE); a symbolic link
    there is not followed (OSError ELOOP)."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)


def validate_id(experiment_id: str) -> str:
    """Return the id if it is one path component of ``[A-Za-z0-9._-]`` not
    starting with ``.`` (those names are the root's own), else raise."""
    text = str(experiment_id)
    if not _ID_RE.fullmatch(text) or text.startswith("."):
        # a name starting with '.' is the root's own (.trash), and no reader lists it
        raise InvalidIdError(
            f"invalid experiment id {text!r}: use 1-255 characters from A-Z a-z 0-9 . _ -, "
            "not starting with '.'"
        )
    return text


def is_numbered(name: str) -> bool:
    return name.isascii() and name.isdigit()


# The roots this process created, until a run announces it (see new_root).
_new_roots: set[str] = set()


def ensure_root(root: str | os.PathLike[str]) -> Path:
    """Create the experiments root (with parents) and the ``*`` .gitignore that keeps
    it out of the user's git status; return its absolute path."""
    try:
        path = Path(root).expanduser().absolute()
        try:
            make_dir(path)
            _new_roots.add(os.path.normpath(path))
        except FileExistsError:
            if not path.is_dir():
                raise
        ignore = path / ROOT_GITIGNORE
        if not ignore.exists():
            atomic_write_text(ignore, "*\n")
    except ValueError as e:  # a NUL byte in the path
        raise RecordingError(f"invalid experiments root {str(root)!r}: {e}") from e
    except OSError as e:
        raise RecordingError(
            f"cannot create the experiments root {path}: {e.strerror or e}; "
            "choose another root or fix its permissions"
        ) from e
    return path


def new_root(root: Path) -> bool:
    """Whether this process created ``root`` and has not said so yet: True once."""
    try:
        _new_roots.remove(os.path.normpath(os.path.abspath(root)))
    except KeyError:
        return False
    return True


def link_refused(path: Path) -> LinkRefused:
    """The error for a symbolic link at ``path`` where a real folder or file must be."""
    try:
        target = f" (to {os.readlink(path)})"
    except OSError:
        target = ""
    return LinkRefused(
        f"{path} is a symbolic link{target}: meticulous-hydra never writes or deletes "
        "through a link, which could lead out of the experiments root; make it a real "
        "folder (or name the folder it points to)"
    )


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


@contextlib.contextmanager
def own_folder(root: Path, *names: str, create: bool = True) -> Iterator[int]:
    """An fd of the folder ``root/names...`` where each of ``names`` is a real
    folder, created if missing (with ``create``), never a symbolic link (one
    raises :class:`LinkRefused`). ``root`` itself may be a link (a root on
    another disk). Writes relative to the fd stay in that folder, whatever
    is renamed or replaced by a link meanwhile."""
    fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        path = root
        for name in names:
            path = path / name
            fds.append(_open_own(name, fds[-1], path, create))
        yield fds[-1]
    finally:
        for fd in fds:
            os.close(fd)


def _open_own(name: str, dir_fd: int, path: Path, create: bool) -> int:
    try:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            if not create:
                raise
        try:
            os.mkdir(name, DIR_MODE, dir_fd=dir_fd)
        except FileExistsError:
            pass  # made by another process meanwhile
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        if os.path.islink(path):
            raise link_refused(path) from None
        raise


def _mark(name: str, dir_fd: int) -> None:
    """Create the run marker in the folder ``name`` (relative to ``dir_fd``)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW
    os.close(os.open(os.path.join(name, RUN_MARKER), flags, FILE_MODE, dir_fd=dir_fd))


def mark_run(folder: Path) -> None:
    """Mark ``folder`` as a run of this project (see :data:`RUN_MARKER`)."""
    with own_folder(folder.parent, create=False) as fd:
        _mark(folder.name, fd)


def _largest_number(folder: Path) -> int:
    try:
        return max((int(e.name) for e in os.scandir(folder) if is_numbered(e.name)), default=0)
    except FileNotFoundError:
        return 0


def claim_next(root: Path) -> Path:
    """Atomically create the next numbered folder under ``root`` and return it.

    A number is taken by creating its marker ``.numbers/N`` and then the
    folder ``N``, both with ``mkdir``, which either creates or fails, on local
    and network file systems alike: two processes never get the same number,
    a loser of a race tries the next one, and a number stays taken after its
    folder is deleted. The next number is one more than the largest marker or
    folder, so roots from before the markers keep their numbers.
    """
    candidate = max(_largest_number(root), _largest_number(root / NUMBERS_DIR)) + 1
    try:
        with own_folder(root) as root_fd, own_folder(root, NUMBERS_DIR) as numbers_fd:
            while True:
                name = str(candidate)
                try:
                    os.mkdir(name, DIR_MODE, dir_fd=numbers_fd)
                    os.mkdir(name, DIR_MODE, dir_fd=root_fd)
                except FileExistsError:
                    candidate += 1
                    continue
                _mark(name, root_fd)
                return root / name
    except OSError as e:
        raise RecordingError(
            f"cannot create experiment folder {root / str(candidate)}: {e.strerror or e}"
        ) from e


def claim_folder(root: Path, experiment_id: str | None = None) -> tuple[Path, bool]:
    """Create the folder of a new run under ``root`` (created already): the next
    number, or ``experiment_id``. Returns the folder and whether it existed
    (an explicit id, to be resumed); an id that is not a folder inside the
    root is refused."""
    if experiment_id is None:
        return claim_next(root), False
    folder = root / validate_id(experiment_id)
    try:
        with own_folder(root) as root_fd:
            if is_numbered(experiment_id):  # a number chosen by hand is never given again either
                with own_folder(root, NUMBERS_DIR) as numbers_fd:
                    try:
                        os.mkdir(experiment_id, DIR_MODE, dir_fd=numbers_fd)
                    except FileExistsError:
                        pass
            try:
                os.mkdir(experiment_id, DIR_MODE, dir_fd=root_fd)
            except FileExistsError:
                return folder, _existing(root, folder, root_fd)
            _mark(experiment_id, root_fd)
    except OSError as e:
        raise StorageError(
            e.errno, f"cannot create experiment folder {folder}: {e.strerror or e}"
        ) from e
    return folder, False


def _existing(root: Path, folder: Path, root_fd: int) -> bool:
    """Whether the existing ``folder`` is a run to resume (True), or an empty
    folder to record into (False, marked now); anything else is refused."""
    if folder.is_symlink() or not folder.is_dir():
        raise RecordingError(
            f"{folder} is a symbolic link (a link out of {root}, or to another run) or not a "
            "folder: choose another experiment id"
        )
    if is_experiment_dir(folder) or os.path.exists(folder / RUN_MARKER):
        return True
    if any(folder.iterdir()):
        raise RecordingError(
            f"{folder} holds files that are not an experiment's: choose another experiment id"
        )
    _mark(folder.name, root_fd)
    return False


def claim_sweep_folder(root: Path, sweep_id: str, job_num: int) -> Path:
    """The folder of job ``job_num`` of Hydra sweep ``sweep_id`` under ``root``.

    The link ``.sweeps/<sweep_id>/<job_num>`` names it, so that a job that
    SLURM requeues continues in its folder. A link is followed only to a folder
    recorded for this very job (its metadata.json names this sweep and job
    number, or it has none yet); otherwise the job gets a new numbered folder
    and the link is replaced.
    """
    job_num = int(job_num)
    name = str(job_num)
    link = root / SWEEPS_DIR / validate_id(sweep_id) / name
    try:
        with own_folder(root, SWEEPS_DIR, sweep_id) as links:
            found = _linked_folder(root, links, name, sweep_id, job_num)
            if found is not None:
                return found
            folder = claim_next(root)
            # relative, so that the root can be copied or moved with its links
            target = f"../../{folder.name}"
            try:
                os.symlink(target, name, dir_fd=links)  # created whole or not at all
            except FileExistsError:
                found = _linked_folder(root, links, name, sweep_id, job_num)
                if found is not None:  # the same job started twice at once: the first one wins
                    (folder / RUN_MARKER).unlink()
                    folder.rmdir()
                    return found
                tmp = f".{name}.{os.getpid()}.tmp"
                os.symlink(target, tmp, dir_fd=links)
                os.replace(tmp, name, src_dir_fd=links, dst_dir_fd=links)  # the stale link, whole
    except OSError as e:
        raise RecordingError(f"cannot write the sweep link {link}: {e.strerror or e}") from e
    return folder


def sweep_file(root: Path, sweep_id: str, name: str) -> Path:
    """``.sweeps/<sweep_id>/<name>``: a file the launching process of a sweep
    keeps for its jobs (its folder created, and neither it nor ``.sweeps`` a
    symbolic link: LinkRefused)."""
    folder = root / SWEEPS_DIR / validate_id(sweep_id)
    with own_folder(root, SWEEPS_DIR, sweep_id):
        pass
    return folder / name


def _linked_folder(root: Path, links: int, name: str, sweep_id: str, job_num: int) -> Path | None:
    """The folder the link ``name`` (in the folder ``links``) names if it was
    recorded for this job, else None."""
    try:
        folder = root / validate_id(os.path.basename(os.readlink(name, dir_fd=links)))
    except (OSError, InvalidIdError):  # no link (or not a link), or one out of the root
        return None
    if not folder.is_dir() or not inside(root, folder):
        return None
    try:
        meta = read_json(folder / METADATA)
    except FileNotFoundError:
        return folder  # claimed for this job, which has not started recording yet
    except (OSError, ValueError):
        return None
    sweep = meta.get("sweep") if isinstance(meta, dict) else None
    if isinstance(sweep, dict) and (sweep.get("id"), sweep.get("job_num")) == (sweep_id, job_num):
        return folder
    return None


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` so that ``path`` holds either its old or its new content,
    whatever happens to the process meanwhile."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
        with open(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def dumps_json(obj: Any, *, indent: int | None = 2) -> str:
    """Serialise an object already converted by :func:`to_jsonable`."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False)
    if _INF_MARK in text:
        text = text.replace(f'"{_INF_MARK}+"', _POS_INF).replace(f'"{_INF_MARK}-"', _NEG_INF)
    return text


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, dumps_json(obj) + "\n")


def inside(root: Path, path: Path) -> bool:
    """Whether ``path`` really lies in ``root``, symlinks followed."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


#: The largest file the reader reads into a run's row (metadata.json,
#: config.json, summary.json, STATUS, NOTES): far more than any run writes; a
#: larger one is that run's read_error, not memory eaten without end.
READ_LIMIT = 64 << 20

_FILE_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def not_a_file(mode: int) -> OSError:
    """The error for reading a path of ``mode`` (a ``stat`` mode) that is no regular file."""
    kind = _FILE_KINDS.get(stat.S_IFMT(mode), "not a file")
    return OSError(errno.EINVAL, f"not a regular file ({kind})")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            break
        n /= 1024  # type: ignore[assignment]  # a float from here on
    return f"{n:.0f} {unit}" if n == int(n) else f"{n:.1f} {unit}"


def read_file(path: str | os.PathLike[str], limit: int | None = READ_LIMIT) -> bytes:
    """The bytes of the regular file ``path`` (a link to one is followed).

    Anything else raises OSError with a ``strerror`` that says what it is,
    without blocking or reading on: a FIFO (opened non-blocking), a device, a
    folder, or a file larger than ``limit`` bytes.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise not_a_file(info.st_mode)
        size = info.st_size
        if limit is not None and size > limit:
            raise OSError(
                errno.EFBIG, f"too large to read ({_size(size)}; the limit is {_size(limit)})"
            )
        data = os.read(fd, size + 1)  # all of it, as the size says, in one call
        if len(data) == size:
            return data
        chunks, total = [data], len(data)  # it changed size meanwhile: read to the end
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if limit is not None and total > limit:
                raise OSError(errno.EFBIG, f"too large to read (the limit is {_size(limit)})")
        return b"".join(chunks)
    finally:
        os.close(fd)


def block(metadata: Mapping[str, Any], key: str) -> dict[str, Any]:
    """metadata.json's object ``key`` (``git``, ``hydra``...): ``{}`` where it
    is absent or not an object, as in a hand-edited file."""
    value = metadata.get(key)
    return value if isinstance(value, dict) else {}


def texts(value: Any) -> list[str]:
    """metadata.json's list of strings (``overrides``, ``argv``...) as one:
    ``[]`` where it is no list, as in a hand-edited file; items as text."""
    return [v if isinstance(v, str) else str(v) for v in value] if isinstance(value, list) else []


def write_status(path: Path, status: str, detail: str = "") -> None:
    text = status + "\n" + (detail.rstrip("\n") + "\n" if detail else "")
    atomic_write_text(path, text)


def parse_status(text: str) -> tuple[str, str]:
    """Split STATUS content into its first line and the detail after it."""
    first, _, rest = text.partition("\n")
    return first.strip(), rest.rstrip("\n")


def now() -> _dt.datetime:
    return _dt.datetime.now().astimezone()


_ARRAY_MODULES = ("numpy", "torch", "jax", "jaxlib")

#: How deeply a config, summary or metrics value may nest: far more than any
#: real config, and far from Python's recursion limit in every writer and reader.
MAX_DEPTH = 100


def check_depth(value: Any, what: str, error: type[Exception] = RecordingError) -> None:
    """Raise ``error`` naming the deepest key when ``value`` nests more than
    :data:`MAX_DEPTH` levels of mappings and lists (measured without recursion)."""
    containers = (Mapping, list, tuple)
    if isinstance(value, Mapping) and not any(isinstance(v, containers) for v in value.values()):
        return  # flat, as metrics mostly are
    stack = [(value, 0)]
    while stack:  # the common case, a few levels, costs a few microseconds
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            break
        if isinstance(node, Mapping):
            node = node.values()
        elif not isinstance(node, (list, tuple)):
            continue
        stack.extend(
            (v, depth + 1) for v in node if isinstance(v, containers) or depth >= MAX_DEPTH
        )
    else:
        return
    keys = _deepest(value)
    shown = ".".join(keys[:6]) + ("..." if len(keys) > 6 else "")
    raise error(
        f"{what} is nested {len(keys)} levels deep (at {shown}); at most {MAX_DEPTH} levels "
        "can be recorded: flatten it"
    )


def _deepest(value: Any) -> tuple[str, ...]:
    """The keys leading to the most deeply nested value in ``value``."""
    keys: tuple[str, ...] = ()
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if len(path) > len(keys):
            keys = path
        if isinstance(node, Mapping):
            stack.extend((v, (*path, str(k))) for k, v in node.items())
        elif isinstance(node, (list, tuple)):
            stack.extend((v, (*path, f"[{i}]")) for i, v in enumerate(node))
    return keys


def to_jsonable(value: Any, *, strict: bool = True, key: str = "", floats: bool = False) -> Any:
    """Convert ``value`` to plain JSON types.

    numpy scalars and arrays, Path, Enum, datetime, sets and tuples are
    converted; NaN becomes None (kept, with infinities, when ``floats``: YAML
    has ``.nan`` and ``.inf``). Anything else raises :class:`NotSerializable`
    naming ``key`` when ``strict``, or is stored as ``str(value)`` otherwise.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if floats:
            return value
        if math.isinf(value):
            return _INF + ("+" if value > 0 else "-")
        return None if math.isnan(value) else value
    if isinstance(value, Mapping):
        out = {
            str(k): to_jsonable(
                v, strict=strict, key=f"{key}.{k}" if key else str(k), floats=floats
            )
            for k, v in value.items()
        }
        if len(out) < len(value):  # two keys the same as text: never one lost silently
            first, second = _same_text(value)
            raise NotSerializable(
                f"{key or 'value'}: the keys {first!r} and {second!r} would both be stored "
                f"as {json.dumps(str(first))}: rename one"
            )
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [
            to_jsonable(v, strict=strict, key=f"{key}[{i}]", floats=floats)
            for i, v in enumerate(items)
        ]
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if type(value).__module__.partition(".")[0] in _ARRAY_MODULES and hasattr(value, "tolist"):
        # scalars and arrays of numpy, torch and jax all have tolist(): no import needed
        return to_jsonable(value.tolist(), strict=strict, key=key, floats=floats)
    if isinstance(getattr(value, "name", None), str) and hasattr(value, "fileno"):
        return value.name  # an open file, e.g. from argparse.FileType
    if strict:
        raise NotSerializable(
            f"{key or 'value'}: cannot store a {type(value).__name__} as JSON; "
            "convert it to a number, string, list or dict"
        )
    return str(value)


def _same_text(mapping: Mapping[Any, Any]) -> tuple[Any, Any]:
    """Two keys of ``mapping`` that are the same as text (``1`` and ``"1"``);
    called only where there are."""
    seen: dict[str, Any] = {}
    for k in mapping:
        if str(k) in seen:
            return seen[str(k)], k
        seen[str(k)] = k
    raise ValueError("no two keys are the same as text")


def _subscripts(path: Sequence[Any]) -> str:
    """A path of keys as unambiguous subscripts: ``["a.b"][0][1]``."""
    return "".join(f"[{json.dumps(k) if isinstance(k, str) else repr(k)}]" for k in path)


# values that are leaves of a tree as they are (no mapping, list or subclass)
_LEAVES = frozenset({str, int, float, bool, type(None)})
_TEXT = frozenset({str})


def check_keys(
    tree: Mapping[Any, Any], what: str, prefix: str, error: type[Exception] = RecordingError
) -> None:
    """Raise ``error`` naming two keys of ``tree`` whose values would become
    one: keys that are the same as text (``1`` and ``"1"``, which JSON stores
    alike), or two paths that make one dotted name (a key ``"a.b"`` beside
    ``"a": {"b": ...}``, one column ``prefix.a.b`` for the reader).
    ``what`` names the tree in the message. A loop, not a recursion."""
    if _TEXT.issuperset(map(type, tree)) and _LEAVES.issuperset(map(type, tree.values())):
        return  # flat, with text keys, as metrics mostly are: no two can meet (log() is hot)
    names: dict[str, tuple[Any, ...]] = {}
    stack: list[tuple[Any, tuple[Any, ...], str | None]] = [(tree, (), prefix)]
    while stack:
        node, path, dotted = stack.pop()
        if isinstance(node, Mapping):
            if len({str(k) for k in node}) < len(node):
                first, second = _same_text(node)
                raise error(
                    f"the {what} keys {_subscripts((*path, first))} and "
                    f"{_subscripts((*path, second))} would both be stored as "
                    f"{json.dumps(str(first))}: rename one"
                )
            for k, v in node.items():
                name = None if dotted is None else f"{dotted}.{k}" if path or prefix else str(k)
                if isinstance(v, (list, tuple)):  # a column of its own, holding the list
                    stack.append((v, (*path, k), None))
                elif isinstance(v, Mapping) and v:
                    stack.append((v, (*path, k), name))
                    continue
                if name is not None:
                    if name in names:
                        raise error(
                            f"the {what} keys {_subscripts(names[name])} and "
                            f"{_subscripts((*path, k))} would both be read as {name}: rename one"
                        )
                    names[name] = (*path, k)
        else:  # a list: the keys of the mappings in it are stored, but no columns
            stack.extend(
                (v, (*path, i), None)
                for i, v in enumerate(node)
                if isinstance(v, (Mapping, list, tuple)) and v
            )


def localise(value: Any, places: Sequence[tuple[str, str]]) -> Any:
    """``value`` with each path of ``places`` written as its name
    (``/abs/experiments/7/model.pt`` -> ``<run folder>/model.pt``), so values
    that only name each run's own place compare equal."""
    if isinstance(value, str):
        for path, name in places:
            if path:
                value = value.replace(path, name)
    return value


def deep_merge(base: dict, update: Mapping) -> dict:
    """Merge ``update`` into ``base`` in place: nested dicts merge key by key."""
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            deep_merge(base[k], v)
        else:
            base[k] = v
    return base


def is_run_listing(names: Container[str]) -> bool:
    """Whether a folder holding ``names`` is a run this project made: the run
    marker with ``metadata.json`` (or, its metadata damaged, ``STATUS``), or,
    in a run recorded before the marker, both ``metadata.json`` and
    ``STATUS``. A folder that merely holds a ``metadata.json`` (a dataset's,
    say) is no run. For a reader that lists each folder once (a set of
    names); :func:`is_experiment_dir` asks the disk."""
    if RUN_MARKER in names:
        return METADATA in names or STATUS in names
    return METADATA in names and STATUS in names


class _OnDisk:
    """The names of a folder, looked up one at a time (a stat each)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path

    def __contains__(self, name: object) -> bool:
        return os.path.exists(os.path.join(self.path, str(name)))


def is_experiment_dir(path: str | os.PathLike[str]) -> bool:
    """A run folder this project made (see :func:`is_run_listing`)."""
    return is_run_listing(_OnDisk(path))


# -- organising runs (issue 15): markers the user adds, each a plain file ------
# A tag is one empty file TAG.<name> (created or removed atomically, so two
# processes tagging at once lose nothing); NOTES gets one line per note,
# appended with a single write; ARCHIVED hides the run by default. Removed
# runs are moved to TRASH_DIR/<id>, a dot-name the reader never lists.
TAG_PREFIX = "TAG."
NOTES = "NOTES"
ARCHIVED = "ARCHIVED"
TRASH_DIR = ".trash"
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+=@-]{0,99}")


def validate_tag(tag: str) -> str:
    """Return the tag if it can be a file name suffix, else raise ValueError."""
    if not _TAG_RE.fullmatch(tag):
        raise ValueError(
            f"invalid tag {tag!r}: use 1-100 characters from A-Z a-z 0-9 _ . + = @ - "
            "(not starting with . + = @ -)"
        )
    return tag


# The config group that switches recording on (`+meticulous=on`): a choice the
# runs record, but the recorder's own switch, never a setting of the run.
OPT_IN_GROUP = "meticulous"
