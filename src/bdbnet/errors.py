"""The user-facing errors of bdbnet: one hierarchy, so callers (and the command line) can tell
a mistake in the input from a bug in the package.

Everything a user can cause (a wrong path, a bad file, a config key out of range, a device that
is not there, an output that cannot be written) raises a subclass of :class:`BDBNetError` with a
message that names the file or key and says what to do. The command line catches exactly these
(exit status 2, one line, no traceback); any other exception is a bug and keeps its traceback.

Example:
    >>> try:
    ...     raise ConfigError("optim.lr must be a finite number; got nan")
    ... except BDBNetError as err:
    ...     print(err)
    optim.lr must be a finite number; got nan
"""

from __future__ import annotations


class BDBNetError(Exception):
    """Base class of every error caused by the user's input, files or machine."""


class ConfigError(BDBNetError, ValueError):
    """A preset, config file or ``key=value`` override does not fit the configuration schema,
    or a resumed run was asked to change what it trained."""


class DataError(BDBNetError, FileNotFoundError):
    """A dataset's files are missing, misnamed or do not have the expected layout."""


class ImageError(BDBNetError, OSError):
    """An image file cannot be opened or decoded (corrupt, truncated, too large)."""


class CheckpointError(BDBNetError, RuntimeError):
    """A checkpoint or weights file is unreadable, unsafe, or not what it claims to be."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint or model file does not exist (or is a broken link)."""


class DeviceError(BDBNetError, RuntimeError):
    """The requested device (for example ``cuda``) is not available on this machine."""


class OutputError(BDBNetError, OSError):
    """An output file or folder cannot be written (not a folder, read-only, disk full)."""


class TrainingError(BDBNetError, RuntimeError):
    """Training cannot go on meaningfully (a non-finite loss or gradient); the last good
    checkpoint is kept."""


__all__ = [
    "BDBNetError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DeviceError",
    "ImageError",
    "OutputError",
    "TrainingError",
]
