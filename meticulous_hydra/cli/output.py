"""What every command does when the reader of its output goes away
(``meticulous reproduce 1 | head -1``): it stops there, quietly, with exit
code 0, as ``head`` expects; nothing is said and no traceback shown."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def quietly(command: Callable[[], int]) -> int:
    """``command()``, its printing flushed; 0 when its output pipe closed."""
    try:
        code = command()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # what is still buffered would fail again when Python flushes at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
