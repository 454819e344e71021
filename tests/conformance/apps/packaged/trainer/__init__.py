"""A package-shaped Hydra project, run as ``python -m trainer.train``."""
