"""Hostile ``--filter`` expressions: numbers and repetitions that would take
forever or every byte of memory are refused by their size, before they are
computed, with one line, in the table and in every verb that selects runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import record

from meticulous_hydra import cli
from meticulous_hydra.cli import summary as summary_cli
from meticulous_hydra.cli.query import QueryError, filter_frame
from meticulous_hydra.reader.reader import load_experiments

# issue 21.4's four, then variants: the same through a column, deeper towers,
# a bomb hidden behind a short-circuit, negative and float forms
BOMBS = [
    "9**9**9 > 1",
    "10**10**10 == 1",
    "'a' * 10**10 == 'b'",
    "[1]*10**9 == [1]",
    "-9**9**9 < 0",
    "10**10**10**10 == 1",
    "(2**4000)**(2**4000) > 1",
    "2**100000 > 1",
    "'ab' * 10**6 * 10**6 == 'b'",
    "10**6 * 'ab' * 10**6 == 'b'",
    "[1, 2] * 10**5 * 10**5 == [1]",
    "status * 10**10 == 'x'",
    "10**10 * status == 'x'",
    "mixed * 10**10 == 'x'",
    "mixed ** 10**9 > 1",
    "-(mixed ** 10**9) < 0",
    "status == 'SUCCESS' or 9**9**9 > 1",
    "(seed + 10**100) ** 10**6 > 1",
    # lists of lists: small in memory, each repetition within bounds, but
    # 10**8 items once compared (every inner list is turned into a tuple)
    "[[1]*10**4]*10**4 == [1]",
    "[[[1]*100]*100]*100 == [1]",
    "mixed in [[1]*10**4]*10**4",
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "experiments"
    for seed in (1, 2, 3):
        # `mixed` mixes kinds: an object column, computed value by value in Python
        record(root, {"seed": seed, "mixed": [7, 3, "a"][seed - 1], "big": 10**15 * seed})
    return root


@pytest.mark.parametrize("expression", BOMBS)
def test_a_filter_bomb_is_a_one_line_error(root: Path, expression: str) -> None:
    frame = load_experiments(root)
    with pytest.raises(QueryError, match="too large") as caught:
        filter_frame(frame, expression)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(f"cannot evaluate filter {expression!r}: ")


def test_bombs_are_refused_by_the_table_and_the_verbs(root: Path, capsys) -> None:
    for argv in (
        ["meticulous-summary", str(root), "--filter"],
        ["rm", "--root", str(root), "--filter"],
        ["tag", "--root", str(root), "best", "--filter"],
        ["show", "--root", str(root), "--filter"],
    ):
        for expression in BOMBS[:4]:
            if argv[0] == "meticulous-summary":
                code = summary_cli.main([*argv[1:], expression])
            else:
                code = cli.main([*argv, expression])
            err = capsys.readouterr().err
            assert code == 2 and err.count("\n") == 1 and "too large" in err, (argv, err)
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("expression", "ids"),
    [
        # what the bounds leave alone: big but bounded numbers, short repetitions
        ("seed ** 2 == 4", [2]),
        ("2 ** 64 > seed", [1, 2, 3]),
        ("10 ** 300 > big", [1, 2, 3]),
        ("big == 3 * 10 ** 15", [3]),
        ("mixed * 2 == 14", [1]),
        ("seed * 1.5 > 4", [3]),
        ("'a' * 3 == 'aaa' and seed == 1", [1]),
        ("[1] * 3 == [1, 1, 1] and seed > 2", [3]),
        ("2.0 ** -10000 < seed", [1, 2, 3]),
        ("seed in [[1] * 10] * 10 + [1]", [1]),
        ("mixed in ['abc' * 10**4] * 10 + ['a']", [3]),
    ],
)
def test_bounded_arithmetic_still_works(root: Path, expression: str, ids: list[int]) -> None:
    assert filter_frame(load_experiments(root), expression).index.tolist() == ids


def test_a_float_too_large_says_so(root: Path) -> None:
    with pytest.raises(QueryError) as caught:
        filter_frame(load_experiments(root), "10.0 ** 400 > seed")
    assert str(caught.value) == (
        "cannot evaluate filter '10.0 ** 400 > seed': a number too large for a float"
    )


@pytest.mark.parametrize("value", ["inf", "1e300", "1e400", "-inf", "nan", "0", "-1", "86401"])
def test_a_watch_interval_out_of_range_is_a_usage_error(root: Path, capsys, value: str) -> None:
    """Issue 21.6: `--watch inf` ended in an OverflowError traceback."""
    for argv in ([str(root), "--watch", value], [str(root), f"--watch={value}"]):
        assert summary_cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--watch takes" in err and value in err
