"""Errors a user can act on. The CLIs print them as one line and exit non-zero."""


class PipelineError(Exception):
    """A problem with the user's input or set-up, reported as one line (no traceback)."""

    exit_code = 2


class InputError(PipelineError):
    """Unreadable, missing or empty input (video, calibration, session)."""

    exit_code = 3


class NothingTrackedError(PipelineError):
    """The input is readable but holds nothing the pipeline can track (no face and no body)."""

    exit_code = 4


class AssetError(PipelineError):
    """A model file or checkpoint is missing or fails its checksum."""

    exit_code = 5
