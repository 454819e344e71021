"""Every error meticulous-hydra shows a user, in one place.

The recorder's errors are :class:`RecordingError`\\s: a program that starts
runs from Python (a sweep driver, a notebook) can catch them and go on. The
command line turns :class:`UsageError` and :class:`QueryError` into one line
and exit code 2, and :class:`ChangeError` (and a :class:`RecordingError` met
by a verb, such as :class:`LinkRefused`) into one line and exit code 1. The
modules that raise them re-export them, so older imports
(``meticulous_hydra.layout.RecordingError``, ...) keep working.
"""

from __future__ import annotations


class RecordingError(Exception):
    """A run could not be recorded; the message says why and what to do."""


class InvalidIdError(RecordingError, ValueError):
    """An experiment id that is not one safe path component."""


class StorageError(RecordingError, OSError):
    """A file of the experiment could not be written (disk full, read-only, ...).
    Built as ``StorageError(errno, message)``; prints as the message alone."""

    def __str__(self) -> str:
        return str(self.strerror)


class LinkRefused(RecordingError):
    """A symbolic link where meticulous-hydra would write, delete or number a
    run (a run folder, a file in one, the root's ``.trash``, ``.numbers``,
    ``.sweeps``, ``.reruns``): never followed, whatever it points to."""


class DirtyRepoError(RecordingError):
    """Tracked files have uncommitted changes and ``allow_dirty`` is off."""


class ResumeMismatchError(RecordingError):
    """An explicit experiment id exists but was recorded with another config or commit."""


class NotSerializable(TypeError):
    """A value (in ``summary()`` or ``log()``) that has no faithful JSON form."""


class ChangeError(Exception):
    """A recorded run or the trash could not be changed as asked (read-only or
    full disk, no permission): the command line shows one line naming the file,
    exit code 1."""


class UsageError(Exception):
    """Wrong input from the user on the command line: one line, exit code 2."""


class QueryError(ValueError):
    """A bad ``--filter`` expression or an unknown column; the message is one line."""


class ReadWarning(UserWarning):
    """Some experiment folders could not be read completely (see the
    ``read_error`` column), or a run's metrics file is no regular file."""
