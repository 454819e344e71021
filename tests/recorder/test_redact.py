"""Redaction of secrets: pure functions, tested in-process."""

from __future__ import annotations

import random

import pytest

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


# -- redaction never makes an unparsable interpolation (issue 20 #11) ---------------------------

SECRET = "hf_s3cret"
# (a value holding SECRET, as a config or Hydra's .hydra/config.yaml has it)
SHAPES = [
    "${oc.env:HF_TOKEN,hf_s3cret}",  # a default: the shape of the issue
    "${oc.env:HF_TOKEN,'hf_s3cret'}",
    '${oc.env:HF_TOKEN,"hf_s3cret"}',
    "${oc.env:A,${oc.env:B,hf_s3cret}}",  # nested
    "${oc.env:A,abc_hf_s3cret_def}",  # inside an unquoted word
    "${oc.env:A,'a,b{c}hf_s3cret'}",  # quoted, with commas and braces
    "${oc.env:A,'it\\'s hf_s3cret'}",  # an escaped quote
    "${oc.env:A,hf_s3cret\\,x}",  # an escaped comma
    "${oc.env:A,[hf_s3cret,2]}",  # a list argument
    "${oc.env:A,{key: hf_s3cret}}",  # a dict argument
    "${oc.env:A,{hf_s3cret: 1}}",  # ... its key
    '${oc.decode:\'{"k": "hf_s3cret"}\'}',
    "${hf_s3cret:x}",  # a resolver's name
    "${db.hf_s3cret}",  # a node's key
    "${db[hf_s3cret]}",
    "postgres://user:hf_s3cret@${db.host}/db",  # outside the interpolation
    "\\${hf_s3cret} ${x}",  # an escaped interpolation
    "${x} 'hf_s3cret' ${y}",
    "${oc.env:A,hf_s3cret} and ${oc.env:B,'x hf_s3cret y'} and hf_s3cret",
    "${oc.env:A,hf_s3cret}}",  # a secret next to the closing brace
]


def _parses(text: str) -> bool:
    """What Hydra's files go through when loaded: OmegaConf parses a string
    holding ``${`` with its grammar, and refuses the node if it can't."""
    from omegaconf import OmegaConf
    from omegaconf.errors import GrammarParseError

    try:
        OmegaConf.create({"v": text})
    except GrammarParseError:
        return False
    return True


@pytest.mark.parametrize("value", SHAPES)
def test_scrubbing_an_interpolation_keeps_it_parsable(value: str) -> None:
    assert _parses(value), "the shape itself is valid"
    for secret in (SECRET, "s3cre", "hf_s3cret}", "{key: hf"):
        scrubbed = Redactor.scrub(value, [secret])
        assert secret not in scrubbed
        assert _parses(scrubbed), (secret, scrubbed)
    # <redacted>, or 'REDACTED' inside a word (or as a key) where <> can't go
    assert "REDACTED" in Redactor.scrub(value, [SECRET]).upper()


def test_scrubbing_random_interpolations_keeps_them_parsable() -> None:
    # OmegaConf's grammar on generated shapes: a secret put anywhere in them
    rng = random.Random(20_11)
    pieces = ["${a.b}", "${oc.env:X,{}}", "${oc.env:Y,'{}'}", '"{}"', "{}", " , ", "\\${{z}}",
              "${oc.select:a,[{},1]}", "${oc.env:Z,{{k: {}}}}", "text"]  # fmt: skip
    checked = 0
    while checked < 150:
        value = "".join(
            rng.choice(pieces).replace("{}", SECRET, 1) for _ in range(rng.randint(1, 4))
        )
        value = value.replace("{}", "w")
        if SECRET not in value or not _parses(value):
            continue
        secret = SECRET[rng.randint(0, 3) : rng.randint(6, len(SECRET))]
        scrubbed = Redactor.scrub(value, [secret])
        assert secret not in scrubbed and _parses(scrubbed), (value, secret, scrubbed)
        checked += 1


def test_defaults_that_are_no_passwords_are_not_scrubbed() -> None:
    # ${oc.env:HF_TOKEN,none} with the variable unset resolves to "none"
    r = Redactor()
    config = {"hf_token": "none", "api_key": "null", "token_ok": "True", "pin": 1234}
    assert r.secrets(config) == set()
    assert r.tree(config) == {**dict.fromkeys(config, REDACTED), "pin": 1234}
    # a string of digits in a config is a string (a PIN from an env var): a secret
    assert r.secrets({"db": {"password": "20110412"}}) == {"20110412"}
    assert r.secrets({}, ["db.password=20110412"]) == set()  # an override's number


def test_a_default_typed_in_the_interpolation_is_no_secret() -> None:
    r = Redactor()
    resolved = {"hf_token": "dummy_token", "db": {"password": "from-the-env", "pw2": "x"}}
    typed = {"hf_token": "${oc.env:HF_TOKEN,dummy_token}", "db": {"password": "${oc.env:PW}"}}
    assert r.secrets(resolved, typed=typed) == {"from-the-env"}
    assert r.secrets(resolved) == {"dummy_token", "from-the-env"}
