"""Replay a processed take to a VMC protocol receiver (VSeeFace, Warudo, EVMC4U, ...).

    python -m pipeline.vmc SESSION [--host H] [--port P] [--blend perfectsync,vrm0] [--loop] [--fast]

Sends the session's avatar.glb take frame by frame, in real time unless --fast, over OSC/UDP
(pipeline.live.vmc says what each frame holds). Prints how many frames were sent. Exit codes:
0 sent, 2 a bad --blend set, the error's own for an unusable session (pipeline.core.errors),
130 stopped with Ctrl+C.
"""
from __future__ import annotations

import argparse
import sys

from pipeline.core.errors import PipelineError, report
from pipeline.live.vmc import BLEND_SETS, DEFAULT_HOST, DEFAULT_PORT, stream_session


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
    sets = tuple(s.strip() for s in a.blend.split(",") if s.strip())
    try:
        n = stream_session(a.session, a.host, a.port, sets, realtime=not a.fast, loop=a.loop)
    except PipelineError as e:
        return report(e)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(f"sent {n} frames to {a.host}:{a.port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
