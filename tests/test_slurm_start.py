"""tests/slurm/start.sh's own logic, without a cluster: the script is sourced
for its functions and run on harmless stand-ins for the daemons."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "slurm" / "start.sh"


@pytest.mark.skipif(os.geteuid() != 0, reason="start.sh starts its daemons as root")
def test_a_daemon_just_started_is_known_by_its_pid_at_once(tmp_path: Path) -> None:
    # $! is setsid (then setpriv) until it has exec'd the daemon; a check made
    # in that moment took a starting munged for one that had exited (CI, once)
    probe = f"""
    source {SCRIPT}
    for i in $(seq 40); do
        run_daemon sleep root sleep 30
        pid_of sleep >/dev/null || {{ echo "run $i: not known yet"; exit 1; }}
        kill "$(cat "$STATE/sleep.pid")"
        run_daemon sleep daemon sleep 30
        pid_of sleep >/dev/null || {{ echo "run $i (as daemon): not known yet"; exit 1; }}
        kill "$(cat "$STATE/sleep.pid")"
    done
    """
    env = {**os.environ, "METICULOUS_SLURM_STATE": str(tmp_path)}
    done = subprocess.run(["bash", "-c", probe], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
