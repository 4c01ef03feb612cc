"""Replay a processed take to a VMC protocol receiver (VSeeFace, Warudo, EVMC4U, ...).

    python -m pipeline.vmc SESSION [--host H] [--port P] [--blend perfectsync,vrm0] [--loop] [--fast]

Sends the session's avatar.glb take frame by frame, in real time unless --fast, over OSC/UDP
(pipeline.live.vmc says what each frame holds). Prints how many frames were sent. Exit codes:
0 sent, 2 a bad --blend set, --port or --host, or a network error while sending, the error's own
for an unusable session (3: missing, incomplete or altered, pipeline.core.errors), 130 stopped
with Ctrl+C, 143 with SIGTERM. Every error is one line on stderr.
"""
from __future__ import annotations

import argparse
import socket
import sys

from pipeline.core.errors import EXIT_INTERRUPTED, PipelineError, Terminated, install_cli_signals, interrupted, report
from pipeline.live.vmc import BLEND_SETS, DEFAULT_HOST, DEFAULT_PORT, stream_session

MAX_PORT = 65535  # UDP ports are 16-bit; 0 is not a port a receiver listens on


def check_target(host: str, port: int) -> None:
    """ValueError (one line) for a port outside 1..65535 or a host name that does not resolve,
    before any frame is sent."""
    if not 1 <= port <= MAX_PORT:
        raise ValueError(f"--port must be 1..{MAX_PORT}, not {port}")
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as e:
        raise ValueError(f"--host {host!r} does not resolve ({getattr(e, 'strerror', None) or e})") from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.vmc",
                                 description="Replay a processed take to a VMC protocol receiver "
                                             "(VSeeFace, Warudo, EVMC4U, ...)")
    ap.add_argument("session", help="session folder (or its avatar.glb)")
    ap.add_argument("--host", default=DEFAULT_HOST, help=f"receiver address (default {DEFAULT_HOST})")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"receiver port (default {DEFAULT_PORT})")
    ap.add_argument("--blend", default="perfectsync",
                    help=f"comma-separated blendshape name sets: {','.join(BLEND_SETS)} (default perfectsync)")
    ap.add_argument("--loop", action="store_true", help="repeat until Ctrl+C")
    ap.add_argument("--fast", action="store_true", help="do not wait for real time")
    a = ap.parse_args(argv)
    install_cli_signals()
    sets = tuple(s.strip() for s in a.blend.split(",") if s.strip())
    try:
        check_target(a.host, a.port)
        n = stream_session(a.session, a.host, a.port, sets, realtime=not a.fast, loop=a.loop)
    except PipelineError as e:
        return report(e)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the network refused the datagrams (no route, ...)
        print(f"error: cannot send to {a.host}:{a.port}: {e.strerror or e}", file=sys.stderr)
        return 2
    except Terminated as e:
        return interrupted("", e)
    except KeyboardInterrupt:  # Ctrl-C is the way to stop a --loop: no message
        return EXIT_INTERRUPTED
    print(f"sent {n} frames to {a.host}:{a.port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
