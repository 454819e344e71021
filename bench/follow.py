"""`make bench`, issue 15: reading metrics and following live runs, each
figure next to a baseline measured in the same run. Prints a table and
writes bench/results-follow.json.

- load_metrics on 1,000 runs x 1,000 steps x 3 keys against concatenating
  pandas.read_json(lines=True) of the same files (target: no slower);
- meticulous-summary on 1,000 runs where one RUNNING run has a 1 GB
  metrics.jsonl, against the same root where that file is small (target:
  within 10%). The big file is sparse, a hole then 8 MB of real lines at its
  end: the table reads only the end, as it would of a real file.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
CLI = str(Path(PY).with_name("meticulous-summary"))
RUNS, STEPS = 1000, 1000


def metrics_lines(steps: int, start: int = 0) -> str:
    t0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc).astimezone()
    lines = []
    for step in range(start, start + steps):
        t = (t0 + datetime.timedelta(seconds=step)).isoformat()
        loss = 1.0 / (step + 1)
        lines.append(
            json.dumps({"step": step, "time": t, "loss": loss, "acc": 1 - loss, "lr": 0.1})
        )
    return "\n".join(lines) + "\n"


def make_root(root: Path) -> None:
    subprocess.run([PY, str(HERE / "generate.py"), str(root), str(RUNS)], check=True)
    text = metrics_lines(STEPS)  # the format Experiment.log() writes
    for entry in os.scandir(root):
        if entry.is_dir() and not entry.name.startswith("."):
            Path(entry.path, "metrics.jsonl").write_text(text)


TIME_LOAD = """
import json, os, sys, time
import pandas as pd
from meticulous_hydra import load_metrics
root = sys.argv[1]
ids = [e.name for e in os.scandir(root) if not e.name.startswith(".")]
def baseline():
    frames = []
    for i in ids:
        frame = pd.read_json(os.path.join(root, i, "metrics.jsonl"), lines=True)
        frame["id"] = i
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
out = {"load_metrics": [], "read_json": []}
for _ in range(3):
    for name, fn in (("load_metrics", lambda: load_metrics(root)), ("read_json", baseline)):
        start = time.perf_counter()
        frame = fn()
        out[name].append(time.perf_counter() - start)
        out.setdefault("rows", len(frame))
print(json.dumps(out))
"""

LIVE_RUN = """
import sys
from meticulous_hydra import Experiment
exp = Experiment._for_adapter({"live": True}, root=sys.argv[1], capture_output=False, git_state=None)
print(exp.dir, flush=True)
sys.stdin.read()  # live until the benchmark closes stdin
exp.finish()
"""


def table_times(roots: dict[str, Path], rounds: int = 7) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in roots}
    env = {**os.environ, "COLUMNS": "200"}
    for i in range(rounds + 1):
        for name, root in roots.items():
            start = time.perf_counter()
            subprocess.run([CLI, str(root)], stdout=subprocess.DEVNULL, env=env, check=True)
            if i:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="meticulous-bench-follow-"))
    results = []
    try:
        root = work / "metrics"
        make_root(root)
        proc = subprocess.run(
            [PY, "-c", TIME_LOAD, str(root)], capture_output=True, text=True, check=True
        )
        load = json.loads(proc.stdout.strip().splitlines()[-1])
        ours, base = statistics.median(load["load_metrics"]), statistics.median(load["read_json"])
        results.append(
            {
                "figure": f"load_metrics, {RUNS} runs x {STEPS} steps x 3 keys ({load['rows']:,} rows)",
                "measured": f"{ours:.2f} s vs {base:.2f} s for read_json+concat: {ours / base:.2f}x",
                "target": "<= 1.0x",
                "ok": ours <= base,
            }
        )
        # the same root twice, each with a live run; in one its metrics.jsonl is 1 GB
        small, big = work / "small", work / "big"
        shutil.copytree(root, small, symlinks=True)
        shutil.copytree(root, big, symlinks=True)
        lives = []
        for r in (small, big):
            live = subprocess.Popen(
                [PY, "-c", LIVE_RUN, str(r)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            lives.append((live, Path(live.stdout.readline().strip())))
        tail = metrics_lines(80_000, start=10_000_000)  # about 8 MB of real lines
        Path(lives[0][1], "metrics.jsonl").write_text(tail)
        with open(Path(lives[1][1], "metrics.jsonl"), "wb") as f:
            f.truncate(2**30 - len(tail.encode()))
            f.seek(0, os.SEEK_END)
            f.write(tail.encode())
        size = os.path.getsize(Path(lives[1][1], "metrics.jsonl"))
        try:
            times = table_times({"small": small, "big": big})
        finally:
            for live, _ in lives:
                live.stdin.close()
                live.wait()
        ratio = times["big"] / times["small"]
        results.append(
            {
                "figure": f"meticulous-summary, {RUNS} runs, one RUNNING with a {size / 2**30:.1f} GB metrics.jsonl",
                "measured": f"{times['big']:.2f} s vs {times['small']:.2f} s without it: {ratio:.2f}x",
                "target": "<= 1.10x",
                "ok": ratio <= 1.10,
            }
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(r["figure"]) for r in results)
    for r in results:
        print(
            f"{r['figure']:<{width}}  {r['measured']:<55}  {r['target']:<9} {'ok' if r['ok'] else 'MISSED'}"
        )
    (HERE / "results-follow.json").write_text(
        json.dumps(
            {"python": sys.version.split()[0], "cpus": os.cpu_count(), "results": results}, indent=2
        )
        + "\n"
    )
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
