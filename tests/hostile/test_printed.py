"""Hostile text in the record (issue 21.20): a note, a tag, a config value, a
summary key, a description or a status detail holding terminal escapes or
other control characters is printed escaped (``\\x1b``), never acted on by the
terminal, by the table, show, diff and every other command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from meticulous_hydra import Experiment, cli
from meticulous_hydra.cli import summary as summary_cli
from meticulous_hydra.cli.table import printable

ESC = "\x1b"
# what a terminal acts on: C0 controls but newline, DEL, C1 controls, and the
# bidirectional overrides that show text in another order than it is
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "experiments"
    for i in (1, 2):
        exp = Experiment(
            {"name": f"{ESC}[31mred{ESC}[0m{i}", f"k{ESC}]0;title\x07": i, "bidi": "a\u202eb"},
            root=root,
            capture_output=False,
            code_dir=tmp_path,
            description=f"desc{ESC}[2J{i}",
        )
        exp.summary({f"loss{ESC}[2J": 0.5 * i, "msg": f"bell\x07\x9b{i}\r"})
        detail = f"Traceback (most recent call last):\nValueError: {ESC}[5mboom\x08{i}"
        exp.finish("ERROR" if i == 1 else "SUCCESS", detail if i == 1 else "")
    (root / "1" / f"TAG.{ESC}[8mhidden").touch()
    assert cli.main(["note", "1", f"{ESC}[31mnote\x1b[0m\ttab", "--root", str(root)]) == 0
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")
    return root


def outputs(capsys: pytest.CaptureFixture[str], root: Path) -> dict[str, tuple[str, str]]:
    def verb(*argv: str) -> tuple[str, str]:
        cli.main(list(argv))
        return capsys.readouterr()

    def table(*argv: str) -> tuple[str, str]:
        summary_cli.main(["--no-pager", str(root), *argv])
        return capsys.readouterr()

    return {
        "show": verb("show", "1", "2", "--root", str(root)),
        "diff": verb("diff", "1", "2", "--root", str(root), "--all"),
        "diff github": verb("diff", "1", "2", "--root", str(root), "--format", "github"),
        "table": table(),
        "table --all": table("--all"),
        "table grid": table("--format", "grid", "--all"),
        "table one run": table("1"),
        "group-by": table("--group-by", "name"),
        "an error naming a key": table("--sort", "loss[2J"),
        "a filter error": table("--filter", f"`k{ESC}]0;title\x07` == 'x' and"),
        "curve": table("--columns", "name", "--tag", f"{ESC}[8mhidden"),
        "json": table("--format", "json"),
        "tag list": verb("untag", "1", "nothing", "--root", str(root)),
    }


def test_nothing_from_a_file_reaches_the_terminal_raw(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, (out, err) in outputs(capsys, root).items():
        for stream, text in (("stdout", out), ("stderr", err)):
            found = RAW.findall(text.replace("\t", "") if name == "show" else text)
            assert not found, (name, stream, found, text[:3000])
    shown = outputs(capsys, root)
    assert "\\x1b[31mnote\\x1b[0m" in shown["show"][0] and "\\x1b[5mboom" in shown["show"][0]
    assert "\\x1b[31mred\\x1b[0m1" in shown["table"][0]
    assert "loss\\x1b[2J" in shown["table --all"][0] and "a\\u202eb" in shown["diff"][0]
    assert "ValueError: \\x1b[5mboom\\x08" in shown["table"][0]
    # an export stays exact: JSON's own escapes read back as the same text
    rows = json.loads(shown["json"][0])
    assert rows[0]["config.name"] == f"{ESC}[31mred{ESC}[0m1"
    assert rows[0]["summary.msg"] == "bell\x07\x9b1\r"


def test_printable_escapes_every_control_and_keeps_what_it_is_told() -> None:
    assert printable("a\x1b[0mb\x00\x7f\x9b\u202e\t\n") == "a\\x1b[0mb\\x00\\x7f\\x9b\\u202e\\t\\n"
    assert printable("line\n\tindented\r", keep="\n\t") == "line\n\tindented\\r"
    assert printable("plain, ünïcödé, 日本, ▁▂▃") == "plain, ünïcödé, 日本, ▁▂▃"
