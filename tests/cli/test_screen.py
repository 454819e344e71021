"""What `meticulous show --tail` prints of a run's output (cli/screen.py):
what a terminal showed, progress bars as their last frame."""

from __future__ import annotations

from pathlib import Path

import pytest

from meticulous_hydra.cli import screen


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("plain\ntext\n", ["plain", "text"]),
        ("no newline at the end", ["no newline at the end"]),
        # tqdm: \r redraws, the last frame stays
        (
            "".join(f"\r{i:3d}%|{'#' * (i // 10):<10}|" for i in range(101)) + "\n",
            ["100%|##########|"],
        ),
        # a shorter frame leaves the end of the longer one, as on a terminal
        ("abcdef\rXY\n", ["XYcdef"]),
        # ...unless the line is erased first (rich, tqdm's ncols)
        ("abcdef\r\x1b[2KXY\n", ["XY"]),
        ("abcdef\rXY\x1b[K\n", ["XY"]),
        # colours and OSC hyperlinks are left out
        ("\x1b[1;32mgreen\x1b[0m \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\n", ["green link"]),
        # rich's live display: cursor up and redraw the block
        ("a 1\nb 1\n\x1b[2A\ra 2\x1b[K\nb 2\x1b[K\n", ["a 2", "b 2"]),
        ("one\ntwo\nthree\x1b[1F\x1b[Jnew\n", ["one", "new"]),
        # backspace, tabs, a bell, a NUL
        ("ab\bc\td\x07\x00\n", ["ac      d"]),
        ("\r\n\r\n", ["", ""]),
        ("", []),
    ],
)
def test_render(text: str, lines: list[str]) -> None:
    assert screen.render(text) == lines


def test_tail_reads_only_the_end_of_a_big_file(tmp_path: Path) -> None:
    out = tmp_path / "stdout"
    frames = "".join(f"\rstep {i:07d}" for i in range(300_000))  # 4.5 MB, one line
    out.write_text("first line\n" + frames + "\nlast line\n")
    # the bar's line starts before the last MiB: its last frame is whole
    assert screen.tail(out, 5) == ["step 0299999", "last line"]
    assert screen.tail(out, 1) == ["last line"]
    assert screen.tail(tmp_path / "missing", 5) == []
    assert screen.tail(out, 0) == []
