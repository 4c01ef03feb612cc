"""Silence native libraries (MediaPipe/LiteRT, FFmpeg) that print to the C-level stderr."""
from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
    """Point file descriptor 2 at /dev/null meanwhile; Python's own sys.stderr object is untouched
    (exceptions raised inside still propagate and are printed after fd 2 is restored).

    MediaPipe prints dozens of C++ log lines on start-up, on its first frame and on close, past
    GLOG_minloglevel; FFmpeg prints its own diagnosis of a broken file before OpenCV returns.
    Our CLIs promise one line per error, so these are silenced.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def send_native_stderr_to_devnull() -> None:
    """For command-line entry points: from now on native libraries write to /dev/null while
    Python's sys.stderr (errors, warnings, progress bars) keeps the real terminal.
    Set DHCAP_NATIVE_LOGS=1 to keep the native logs (debugging)."""
    if os.environ.get("DHCAP_NATIVE_LOGS"):
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(real, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")
