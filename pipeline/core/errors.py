"""Errors a user can act on. The CLIs print them as one line and exit non-zero (`report`).

Exit codes (the README's table): 2 usage, 3 unusable input (also a session whose files do not
match its manifest), 4 nothing tracked, 5 model files, 6 an output that cannot be written (full
disk, file-size limit, read-only or vanished folder), 130 interrupted (SIGINT), 143 terminated
(SIGTERM).
"""
import signal
import sys

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process ended by Ctrl-C
EXIT_TERMINATED = 143   # 128 + SIGTERM


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


class OutputError(PipelineError):
    """An output file or folder cannot be written: the message names the file and the system's
    cause ("No space left on device", "File too large", "Permission denied", ...)."""

    exit_code = 6


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is (`install_cli_signals`) so that it unwinds like Ctrl-C:
    half-written files and staging folders are removed on the way out."""


def report(e: PipelineError) -> int:
    """The CLIs' way out: the error as one line on stderr; its exit code."""
    print(f"error: {e}", file=sys.stderr)
    return e.exit_code


def interrupted(consequence: str = "", signal_error: BaseException | None = None) -> int:
    """The CLIs' way out on Ctrl-C or SIGTERM: one line saying what was (not) written; exit code
    130 (Ctrl-C) or 143 (SIGTERM, when `signal_error` is a `Terminated`)."""
    terminated = isinstance(signal_error, Terminated)
    what = "terminated (SIGTERM)" if terminated else "interrupted"
    print(f"error: {what}" + (f"; {consequence}" if consequence else ""), file=sys.stderr)
    return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


def _raise_terminated(signum, _frame):
    raise Terminated(signal.Signals(signum).name)


def install_cli_signals() -> None:
    """At a CLI's start: SIGTERM unwinds like Ctrl-C (raises `Terminated`), and SIGXFSZ is ignored
    so that a write over the file-size limit (`ulimit -f`) raises OSError (EFBIG), reported as one
    line, instead of killing the process with a half-written file."""
    signal.signal(signal.SIGTERM, _raise_terminated)
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
