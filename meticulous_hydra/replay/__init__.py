"""Running recorded runs again: :mod:`.reproduce` (rebuild a run's code in a
git worktree, report what drifted, run it and compare) and :mod:`.rerun` (a
sweep's failed jobs, into the same sweep). Over the reader and the recorder's
provenance."""
