"""The ``meticulous`` command's dispatch, in-process."""

from meticulous_hydra import cli


def test_help_lists_every_verb_on_one_line_each(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for verb in cli.VERBS:
        assert sum(line.split()[:1] == [verb] for line in out.splitlines()) == 1


def test_unknown_verb_is_one_line_with_exit_2(capsys):
    assert cli.main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "frobnicate" in err


def test_summary_is_meticulous_summary(tmp_path, capsys):
    assert cli.main(["summary", str(tmp_path / "nothing")]) == 2
    assert "meticulous-summary" in capsys.readouterr().err


def test_the_readme_puts_the_commands_on_path_before_it_uses_them():
    """Issue 23.13: after `make demo`, `meticulous-summary` was "command not
    found": .venv/bin is not on PATH until activated."""
    from helpers import PROJECT

    lines = (PROJECT / "README.md").read_text().splitlines()
    first_use = next(
        i for i, line in enumerate(lines) if line.startswith(("$ meticulous", "$ python"))
    )
    activate = next(i for i, line in enumerate(lines) if "source .venv/bin/activate" in line)
    assert activate < first_use
    assert (
        lines.index(
            "$ make demo   # creates .venv, runs an 18-job sweep of the example app, prints the summary table"
        )
        < activate
    )


def test_a_run_read_incompletely_is_one_warning_line_in_every_command(tmp_path, capsys):
    """The table said `meticulous-summary: warning: ...`; a verb let Python
    print its warning with a file and line of ours and the source line under it."""
    from helpers import record

    root = tmp_path / "experiments"
    record(root, {"x": 1}, {"loss": 1.0})
    record(root, {"x": 2}, {"loss": 2.0})
    (root / "2" / "summary.json").write_text("{not json")
    capsys.readouterr()
    for argv in (["show", "--status", "SUCCESS", "--tail", "0"], ["diff", "1", "2"], ["summary"]):
        assert cli.main([*argv, "--root", str(root)]) == 0
        err = capsys.readouterr().err
        prog = "meticulous-summary" if argv[0] == "summary" else f"meticulous {argv[0]}"
        assert err.startswith(
            f"{prog}: warning: 1 experiment(s) under {root} read incompletely (2: "
        )
        assert err.count("\n") == 1 and "reader.py" not in err, err
