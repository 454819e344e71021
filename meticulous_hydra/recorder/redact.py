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
# A value that is not there yet, as OmegaConf and the recorder write it.
MISSING = "???"
# Scrubbing replaces a secret wherever it appears in a string: shorter values
# (a port, "on") would mangle unrelated text.
_MIN_SCRUB = 4


def holds_no_secret(value: Any) -> bool:
    """A missing value (``???``) or a whole interpolation (``${oc.env:DB_PASS}``):
    what the user typed names where the secret is, not the secret."""
    if not isinstance(value, str):
        return False
    return value == MISSING or (value.startswith("${") and value.endswith("}"))


def _is_word(value: str) -> bool:
    # what stands for no value at all: the default of ${oc.env:HF_TOKEN,none}
    return value.lower() in ("true", "false", "null", "none")


def _is_literal_text(value: str) -> bool:
    # an override's value that is a number, bool or null is no password (in
    # a config, a number stays one: a string of digits there is a string)
    return not _is_word(value) and not _is_number(value)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _norm(name: str) -> str:
    return name.lower().replace("-", "_").lstrip("_")


# a word followed by ':' or '=' (a closing quote between them allowed)
_KEY_WORD = re.compile(r"([^\s:=\"'.,\[\]{}#-][^\s:=\"'.,\[\]{}#]*)[\"']?\s*[:=]")


def _literal(pattern: str) -> str:
    """The longest part of a glob that any match contains as it is."""
    return max(re.split(r"[*?]|\[[^\]]*\]", pattern), key=len)


# What replaces a secret inside an interpolation, in order of preference:
# OmegaConf's grammar takes the first in quoted strings and keys, the second
# where a resolver's argument is a whole value, the third inside a word.
_MARKS = (REDACTED, f"'{REDACTED}'", "REDACTED")


def _parses(text: str) -> bool:
    """Whether OmegaConf takes ``text`` as a value (it parses every string
    holding ``${`` as an interpolation, and refuses the node otherwise)."""
    if "${" not in text:
        return True
    from omegaconf.errors import GrammarParseError
    from omegaconf.grammar_parser import parse

    try:
        parse(text)
    except GrammarParseError:
        return False
    return True


def _scrub_text(text: str, ordered: Sequence[str]) -> str:
    """``text`` with every secret replaced; an interpolation stays one that
    OmegaConf parses (Hydra's .hydra/ files and pickles are loaded again)."""
    out = text
    for secret in ordered:
        out = out.replace(secret, REDACTED)
    if out == text or _parses(out) or not _parses(text):
        return out
    # one occurrence at a time, each by the first mark that keeps it parsable
    for secret in ordered:
        at = text.find(secret)
        while at >= 0:
            for mark in _MARKS:
                candidate = text[:at] + mark + text[at + len(secret) :]
                if _parses(candidate):
                    text = candidate
                    break
            else:
                return REDACTED  # no mark fits there: the whole value goes
            at = text.find(secret, at + len(mark))
    return text


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

    def may_apply(self, text: str, secrets: Iterable[str] = ()) -> bool:
        """Whether redacting a file of ``text`` could change anything: a
        pattern's literal part or a secret occurs in it. False is certain, so
        the file need not be parsed (most files hold no secret at all)."""
        if any(len(s) >= _MIN_SCRUB and s in text for s in secrets):
            return True
        if any("." in p for p in self.patterns):  # a dotted pattern: by its literal part
            normal = _norm(text)
            return any(_literal(p) in normal for p in self.patterns)
        # a key of the file (YAML's `key:`, an override's `a.key=`) that matches;
        # a pattern that only occurs as a value (the callback's own `redact`
        # list, say) changes nothing
        return any(self.matches(key) for key in _KEY_WORD.findall(text))

    def matches(self, dotted_key: str) -> bool:
        if self._regex is None:
            return False
        leaf = dotted_key.rsplit(".", 1)[-1]
        return bool(self._regex.match(_norm(leaf)) or self._regex.match(_norm(dotted_key)))

    def tree(self, value: Any, prefix: str = "", found: list[str] | None = None) -> Any:
        """A copy of a plain dict/list tree with secret values replaced: every
        leaf under a matching key (a list of tokens, a dict of credentials).
        Redacted dotted keys are appended to ``found``."""
        return self._tree(value, prefix, found, None, None, False)

    def _tree(
        self,
        value: Any,
        prefix: str,
        found: list[str] | None,
        literals: set[str] | None,
        typed: Any,
        secret: bool,
    ) -> Any:
        """:meth:`tree`, also adding to ``literals`` the secret strings worth
        scrubbing elsewhere; ``typed`` is the same tree as written (unresolved)."""
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                key = f"{prefix}.{k}" if prefix else str(k)
                sub = typed.get(k) if isinstance(typed, dict) else None
                out[k] = self._tree(v, key, found, literals, sub, secret or self.matches(key))
            return out
        if isinstance(value, list):
            subs = (
                typed
                if isinstance(typed, list) and len(typed) == len(value)
                else [None] * len(value)
            )
            return [
                self._tree(v, f"{prefix}[{i}]", found, literals, subs[i], secret)
                for i, v in enumerate(value)
            ]
        if not secret or value is None or holds_no_secret(value):
            return value
        if found is not None:
            found.append(prefix)
        # a default written in the interpolation (${oc.env:TOKEN,dummy} with
        # TOKEN unset) is what the user typed, kept as typed: no secret
        if literals is not None and isinstance(value, str) and not _is_word(value):
            default = isinstance(typed, str) and "${" in typed and value in typed
            literals.update(() if default else (value,))
        return REDACTED

    def overrides(self, items: Sequence[str]) -> list[str]:
        """``key=value`` items (Hydra overrides) with secret values hidden."""
        out = []
        for item in items:
            key, sep, value = item.partition("=")
            if sep and self.matches(key.lstrip("+~")) and not holds_no_secret(value):
                item = f"{key}={REDACTED}"
            out.append(item)
        return out

    def secrets(self, config: Any, overrides: Sequence[str] = (), typed: Any = None) -> set[str]:
        """The literal secret strings in a resolved config tree and in
        ``key=value`` overrides, to :meth:`scrub` from derived strings (a URL
        that interpolates a password, say). ``true``, ``false``, ``null``
        and ``none`` are no passwords (nor numbers, in overrides, where every
        value is text): scrubbing them would mangle unrelated text; nor is
        the default of an interpolation, when ``typed``, the config as
        written, shows it came from there."""
        found: set[str] = set()
        self._tree(config, "", None, found, typed, False)
        for item in overrides:
            key, sep, value = item.partition("=")
            value = value.strip("'\"")
            if (
                sep
                and self.matches(key.lstrip("+~"))
                and not holds_no_secret(value)
                and _is_literal_text(value)
            ):
                found.add(value)
        return {s for s in found if len(s) >= _MIN_SCRUB}

    @staticmethod
    def scrub(value: Any, secrets: Iterable[str]) -> Any:
        """A copy of a dict/list/str tree where every occurrence of a secret
        inside a string is replaced: a job id, a folder name or an override
        list derived from a secret value holds it too."""
        ordered = sorted(set(secrets), key=len, reverse=True)
        if not ordered:
            return value

        def clean(v: Any) -> Any:
            if isinstance(v, str):
                return _scrub_text(v, ordered)
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v

        return clean(value)

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
            key, sep, value = arg.partition("=")
            if sep and self.matches(key.lstrip("-+~")) and not holds_no_secret(value):
                arg = f"{key}={REDACTED}"
            out.append(arg)
        return out
