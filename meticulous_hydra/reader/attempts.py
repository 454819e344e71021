"""One row per sweep job: a job re-run by ``meticulous rerun`` has several runs
(attempts) with the same sweep id and job number; its latest one stands for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

ATTEMPTS = "attempts"


def latest_attempts(frame: pd.DataFrame, *, all_attempts: bool = False) -> pd.DataFrame:
    """``frame`` with, when some sweep job was run more than once, an
    ``attempts`` column (how many runs each job took; 1 for runs outside
    sweeps) and, unless ``all_attempts``, only the latest attempt of each job
    (by start time)."""
    if frame.empty or "sweep.id" not in frame.columns:
        return frame
    swept = frame["sweep.id"].notna() & frame["sweep.job_num"].notna()
    keys = frame.loc[swept, ["sweep.id", "sweep.job_num"]].astype(str)
    if "root" in (frame.index.names or ()):
        # copies of one root read side by side are not attempts of each other
        keys.insert(0, "root", keys.index.get_level_values("root").astype(str))
    jobs = keys.agg("\0".join, axis=1)
    if not jobs.duplicated().any():
        return frame
    frame = frame.assign(**{ATTEMPTS: 1})
    frame.loc[swept, ATTEMPTS] = jobs.map(jobs.value_counts())
    if all_attempts:
        return frame
    # the latest attempt of a job is its last start; stable sort keeps id order on ties
    order = frame.loc[swept, "start_time"].sort_values(kind="stable").index
    latest = jobs.loc[order][~jobs.loc[order].duplicated(keep="last")].index
    return frame[~swept | frame.index.isin(latest)]
