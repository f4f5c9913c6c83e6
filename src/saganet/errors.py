"""User-facing errors: one line that names the problem and the fix; the CLI prints them without a traceback."""


class SaganetError(Exception):
    """Base class for errors caused by user input, files or configuration (not by bugs)."""


class InputError(SaganetError):
    """A video, mask, audio or job file cannot be used as given."""


class CheckpointError(SaganetError):
    """A checkpoint is missing, corrupt, of the wrong variant or does not match the model's keys."""
