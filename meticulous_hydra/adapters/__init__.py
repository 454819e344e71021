"""The adapters: a program's resolved configuration into the recorder.

:mod:`.hydra_callback` (:class:`~.hydra_callback.MeticulousCallback`, with
:mod:`.hydra_config` reading the job's config and Hydra's own files) and
:mod:`.argparse_adapter` (:func:`~.argparse_adapter.record`).
"""
