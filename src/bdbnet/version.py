"""The package version, on the ground floor so that any module (export metadata, checkpoints)
can record it without importing the package's face, :mod:`bdbnet`."""

__version__ = "0.1.0"
