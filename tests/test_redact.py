"""Redaction of secrets: pure functions, tested in-process."""

from __future__ import annotations

from meticulous_hydra.redact import REDACTED, Redactor


def test_missing_values_and_interpolations_are_kept_literals_hidden() -> None:
    r = Redactor()
    tree = {"db": {"password": "???", "token": "${oc.env:DB_PASS}", "secret": "hunter2"}}
    assert r.tree(tree) == {
        "db": {"password": "???", "token": "${oc.env:DB_PASS}", "secret": REDACTED}
    }
    assert r.overrides(["+db.password=${oc.env:DB_PASS}", "db.password=hunter2", "lr=1"]) == [
        "+db.password=${oc.env:DB_PASS}",
        f"db.password={REDACTED}",
        "lr=1",
    ]
    assert r.argv(["app.py", "api_key=${oc.env:K}", "--token=abc"]) == [
        "app.py",
        "api_key=${oc.env:K}",
        f"--token={REDACTED}",
    ]


def test_secrets_are_scrubbed_from_derived_strings() -> None:
    r = Redactor()
    found = r.secrets(
        {"db": {"password": "hunter2", "host": "h"}, "max_tokens": 512},
        ["api_key=abc123xyz", "token_count=1024", "secret=${oc.env:S}", "password=ab"],
    )
    # numbers, interpolations and too-short values are not scrubbed
    assert found == {"hunter2", "abc123xyz"}
    derived = {"dir": "out/db.password=hunter2,x=1", "ids": ["job_abc123xyz"], "n": 3}
    assert r.scrub(derived, found) == {
        "dir": f"out/db.password={REDACTED},x=1",
        "ids": [f"job_{REDACTED}"],
        "n": 3,
    }
