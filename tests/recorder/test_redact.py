"""Redaction of secrets: pure functions, tested in-process."""

from __future__ import annotations

from meticulous_hydra.recorder.redact import REDACTED, Redactor


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


def test_a_file_that_holds_no_secret_is_known_without_parsing() -> None:
    # may_apply() lets the callback skip parsing Hydra's files (~12 ms each):
    # its False must be certain, for YAML keys, override lists and dotted patterns
    import yaml

    texts = [
        "lr: 0.1\nmodel:\n  name: mlp\n",
        "callbacks:\n  meticulous:\n    redact:\n    - '*password*'\n    - '*token*'\n",
        "db:\n  password: hunter22\n",
        "db:\n  Api-Key: abcdef\n",
        "'my secret': hunter22\n",
        "db_password_store:\n  host: h\n",
        "- lr=0.1\n- +db.password=hunter22\n",
        "- lr=0.1\n- seed=3\n",
        "url: http://example.com\nname: x\n",
    ]
    for patterns in (None, ["db.host"], ["*key"]):
        r = Redactor() if patterns is None else Redactor(patterns)
        for text in texts:
            data = yaml.safe_load(text)
            changed = r.overrides(data) != data if isinstance(data, list) else r.tree(data) != data
            assert r.may_apply(text) or not changed, (patterns, text)
    r = Redactor()
    assert not r.may_apply(texts[0]) and not r.may_apply(texts[1])
    assert all(r.may_apply(t) for t in texts[2:7])
    assert r.may_apply("note: runs on hunter22\n", {"hunter22"})
