"""Names and filters: every name the table or ``diff`` prints works, as
printed, in ``--filter``, ``--sort``, ``--group-by`` and ``--columns``; a
filter written in another language's habits says what to write; lists
(``tags``) take membership."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import record

from meticulous_hydra import cli
from meticulous_hydra.cli import names
from meticulous_hydra.cli import summary as summary_cli
from meticulous_hydra.cli.query import QueryError, filter_frame
from meticulous_hydra.reader.reader import load_experiments


@pytest.fixture
def run(realistic_root: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """``run(*argv)`` -> (exit code, stdout, stderr): ``meticulous VERB`` or,
    for argv starting with ``summary``, the table, in the realistic root's
    folder, no terminal."""
    monkeypatch.chdir(realistic_root.parent)
    monkeypatch.delenv("COLUMNS", raising=False)

    def call(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return call


def ids_of(out: str) -> list:
    return [r["id"] for r in json.loads(out)]


# -- names ------------------------------------------------------------------------


def test_a_config_group_choice_is_named_as_printed(run) -> None:
    """Issue 23.4: the header `model` (metadata.hydra.choices.model)."""
    code, out, err = run("summary", "--sweep", "latest", "--all")
    assert code == 0, err
    for shown in ("model", "db", "optimizer"):
        assert shown in out.splitlines()[0].split()
    code, out, err = run("summary", "--filter", "model == 'small'", "--format", "json")
    assert code == 0, err
    assert ids_of(out) == [7, 8, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]
    code, out, err = run("summary", "--group-by", "model", "--sort", "-model")
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["small", "resnet", "mlp", "large"]
    assert out.splitlines()[0].split()[:3] == ["model", "n", "failed"]
    code, out, err = run("summary", "--columns", "db", "model", "--sort", "model", "--last", "3")
    assert code == 0, err
    assert out.splitlines()[0].split() == ["id", "db", "model"]
    code, out, err = run("diff", "7", "9")
    assert code == 0, err
    keys = [line.split()[0] for line in out.splitlines()[2:] if line.strip()]
    assert "model" in keys and "choice.model" not in keys


def test_every_printed_name_works_in_every_option(run, realistic_root: Path) -> None:
    frame = load_experiments(realistic_root)
    columns = [str(c) for c in frame.columns]
    printed = names.short_names(columns)
    # the table's headers, the whole of them
    code, out, err = run("summary", "--all")
    assert code == 0, err
    headers = out.splitlines()[0].split()[1:]
    assert sorted(headers) == sorted(printed[c] for c in columns)
    # --list-columns: the same names, in the table's order, each with its full
    # name (that of the exports and the DataFrame) where that is longer
    code, out, err = run("summary", "--list-columns")
    assert code == 0, err
    listed = [line.split() for line in out.splitlines()]
    assert [words[0] for words in listed] == headers
    assert all(
        len(w) == 1 or (len(w) == 2 and names.resolve(w[0], columns) == w[1]) for w in listed
    )
    assert ["model", "metadata.hydra.choices.model"] in listed and ["status"] in listed
    # diff's rows, with every run of the root that differs
    code, out, err = run("diff", "1", "7", "15", "16", "--all")
    assert code == 0, err
    table = out.split("\n\n")[0].splitlines()[2:]
    keys = [line.split()[0] for line in table]
    assert keys and set(keys) <= set(printed.values()), set(keys) - set(printed.values())
    for name in {*headers, *keys}:
        assert names.resolve(name, columns) in columns
    # and through the options themselves, for a sample
    for name in ("model", "db", "optimizer.lr", "final_loss", "loss", "pid", "python.version"):
        for argv in (
            ["--sort", name],
            ["--columns", name],
            ["--group-by", name],
            ["--filter", f"`{name}` is not None"],
        ):
            code, _, err = run("summary", *argv, "--format", "csv")
            assert code == 0, (argv, err)


def test_a_name_two_columns_share_is_printed_and_typed_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = tmp_path / "experiments"
    record(root, {"loss": "l1", "lr": 0.1}, {"loss": 0.5})
    record(root, {"loss": "l2", "lr": 0.2}, {"loss": 0.4})
    assert summary_cli.main([str(root), "--no-pager"]) == 0
    head = capsys.readouterr().out.splitlines()[0].split()
    assert {"config.loss", "summary.loss", "lr"} <= set(head)
    assert summary_cli.main([str(root), "--sort", "loss"]) == 2
    err = capsys.readouterr().err
    assert "config.loss or summary.loss" in err and err.count("\n") == 1
    assert summary_cli.main([str(root), "--sort", "-summary.loss", "--format", "json"]) == 0
    assert ids_of(capsys.readouterr().out) == [1, 2]


# -- filters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("optimizer.lr = 0.1", "compare with ==, not ="),
        ("loss < 0.1 && status == 'SUCCESS'", "write and instead of &&"),
        ("loss < 0.1 || status == 'SUCCESS'", "write or instead of ||"),
        ("!(loss < 0.1)", "write not instead of !"),
        ("(loss < 0.1) & (status == 'SUCCESS')", "write and instead of &"),
        ("(loss < 0.1) | (status == 'SUCCESS')", "write or instead of |"),
        ("~(loss < 0.1)", "write not instead of ~"),
        ("tags == 'best'", "tags holds lists: 'best' in tags tests membership"),
        ("'best' == tags", "tags holds lists"),
        ("3 in seed", "'in' takes a list"),
        ("status == 'a=b' and", "invalid syntax"),  # an = inside a value is no hint
        ("seed => 1", "write >= instead of =>"),
        ("seed =< 1", "write <= instead of =<"),
        ("status == SUCCESS", "did you mean 'SUCCESS' (a value, quoted)?"),
        # a name unknown and compared with a value is no value: the columns' list helps
        ("seed > 0 and bs == 64", "unknown column 'bs'; list them with --list-columns"),
        ("'mlp' == net", "unknown column 'net'; list them with --list-columns"),
        # a section that is not the column's: the column as it is named
        ("config.loss < 1", "unknown column 'config.loss'; did you mean loss?"),
        ("loss > '1'", "loss holds numbers, '1' is text: write 1 for a number"),
        ("tags > 3", "tags holds lists, 3 is a number: numbers compare with numbers"),
    ],
)
def test_a_filter_in_other_habits_says_what_to_write(
    realistic_root: Path, expression: str, says: str
) -> None:
    frame = load_experiments(realistic_root)
    with pytest.raises(QueryError) as caught:
        filter_frame(frame, expression)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_the_run_id_is_the_one_column_named_id(tmp_path: Path, capsys) -> None:
    # metadata.id holds the id too: printed short it was a second "id"
    root = tmp_path / "experiments"
    record(root, {"lr": 0.1})
    record(root, {"lr": 0.2})
    assert summary_cli.main([str(root), "--columns", "id", "--no-pager"]) == 0
    assert capsys.readouterr().out.split() == ["id", "----", "1", "2"]
    assert summary_cli.main([str(root), "--list-columns"]) == 0
    listed = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["metadata.id"] in listed and not any(line[0] == "id" for line in listed)
    assert summary_cli.main([str(root), "--all", "--no-pager"]) == 0
    head = capsys.readouterr().out.splitlines()[0].split()
    assert head.count("id") == 1 and "metadata.id" in head
    assert summary_cli.main([str(root), "--columns", "metadata.id", "--no-pager"]) == 0
    assert capsys.readouterr().out.split()[:2] == ["id", "metadata.id"]


def test_tags_take_membership(tmp_path: Path, capsys) -> None:
    root = tmp_path / "experiments"
    for _ in range(4):
        record(root, {"x": 1})
    for argv in (["tag", "1", "2", "best"], ["tag", "2", "3", "seen"]):
        assert cli.main([*argv, "--root", str(root)]) == 0
    capsys.readouterr()
    frame = load_experiments(root)
    for expression, ids in (
        ("'best' in tags", [1, 2]),
        ("'best' not in tags", [3, 4]),
        ("'best' in tags and 'seen' in tags", [2]),
        ("tags == ['best']", [1]),
        ("tags == []", [4]),
        ("'be' in tags", []),
    ):
        assert filter_frame(frame, expression).index.tolist() == ids, expression
    assert cli.main(["show", "--root", str(root), "--filter", "'seen' in tags"]) == 0
    out = capsys.readouterr().out
    assert "experiment 2" in out and "experiment 3" in out and "experiment 1 " not in out
