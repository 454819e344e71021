"""Keep secrets out of the recorded config, metadata and command line."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from typing import Any

DEFAULT_PATTERNS: tuple[str, ...] = (
    "*password*",
    "*passwd*",
    "*secret*",
    "*token*",
    "*api_key*",
    "*apikey*",
    "*credential*",
    "*private_key*",
)
REDACTED = "<redacted>"


def _norm(name: str) -> str:
    return name.lower().replace("-", "_").lstrip("_")


class Redactor:
    """Matches keys (leaf name or dotted path, case-insensitive, ``-`` as ``_``)
    against glob patterns. An empty pattern list redacts nothing."""

    def __init__(self, patterns: Iterable[str] | None = DEFAULT_PATTERNS) -> None:
        self.patterns = tuple(_norm(p) for p in (patterns or ()))
        # one regex for all patterns: this runs for every key of every config
        self._regex = (
            re.compile("|".join(fnmatch.translate(p) for p in self.patterns))
            if self.patterns
            else None
        )

    def matches(self, dotted_key: str) -> bool:
        if self._regex is None:
            return False
        leaf = dotted_key.rsplit(".", 1)[-1]
        return bool(self._regex.match(_norm(leaf)) or self._regex.match(_norm(dotted_key)))

    def tree(self, value: Any, prefix: str = "", found: list[str] | None = None) -> Any:
        """A copy of a plain dict/list tree with secret values replaced.
        Redacted dotted keys are appended to ``found``."""
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                key = f"{prefix}.{k}" if prefix else str(k)
                if self.matches(key) and not isinstance(v, (dict, list)):
                    out[k] = REDACTED if v is not None else None
                    if found is not None and v is not None:
                        found.append(key)
                else:
                    out[k] = self.tree(v, key, found)
            return out
        if isinstance(value, list):
            return [self.tree(v, f"{prefix}[{i}]", found) for i, v in enumerate(value)]
        return value

    def overrides(self, items: Sequence[str]) -> list[str]:
        """``key=value`` items (Hydra overrides) with secret values hidden."""
        out = []
        for item in items:
            key, sep, _ = item.partition("=")
            if sep and self.matches(key.lstrip("+~")):
                item = f"{key}={REDACTED}"
            out.append(item)
        return out

    def argv(self, argv: Sequence[str]) -> list[str]:
        """A command line with the values of secret options hidden:
        ``--api-key X``, ``--api-key=X`` and Hydra's ``db.password=X``."""
        out: list[str] = []
        hide_next = False
        for arg in argv:
            if hide_next:
                out.append(REDACTED)
                hide_next = False
                continue
            if arg.startswith("-") and "=" not in arg:
                hide_next = self.matches(arg.lstrip("-"))
                out.append(arg)
                continue
            key, sep, _ = arg.partition("=")
            if sep and self.matches(key.lstrip("-+~")):
                arg = f"{key}={REDACTED}"
            out.append(arg)
        return out
