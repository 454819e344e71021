"""The recorder: one run's folder, written while the program runs.

:mod:`.experiment` (:class:`~.experiment.Experiment`, the run) claims the
folder and writes the start files; :mod:`.capture` tees stdout/stderr;
:mod:`.gitstate`, :mod:`.environment` and :mod:`.provenance` say what ran
where; :mod:`.redact` keeps secrets off disk; :mod:`.hooks` holds the active
runs and ends them on exit, exceptions and signals; :mod:`.announce` prints
the recording line; :mod:`.organise` writes what users add later (tags, notes,
the archive mark, the trash). Everything here writes through
:mod:`meticulous_hydra.layout`.
"""
