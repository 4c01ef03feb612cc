"""Errors a user can act on. The CLIs print them as one line and exit non-zero (`report`)."""
import sys


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


def report(e: PipelineError) -> int:
    """The CLIs' way out: the error as one line on stderr; its exit code."""
    print(f"error: {e}", file=sys.stderr)
    return e.exit_code


def interrupted(consequence: str = "") -> int:
    """The CLIs' way out on Ctrl-C: one line saying what was (not) written; exit code 130."""
    print("error: interrupted" + (f"; {consequence}" if consequence else ""), file=sys.stderr)
    return 130
