"""The version, in its own module so that every part can read it without
importing the package's public surface (which imports the parts)."""

__version__ = "0.1.0"
