"""Rebuild the face rig's generic ARKit prior from real training takes.

    python -m pipeline.face_rig build-prior [--samples franck cap13] [--out assets/face/arkit_prior.npz]

Tracks the sample videos with MediaPipe (one line per video), fits the prior
(pipeline/face/rig_prior.py) and writes it: `wrote OUT`, exit code 0.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.face.rig import PRIOR_PATH
from pipeline.face.rig_prior import DEFAULT_SAMPLES, build_prior_file


def _say(line: str) -> None:
    print(line, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.face_rig")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build-prior", help="rebuild assets/face/arkit_prior.npz from real training takes")
    b.add_argument("--samples", nargs="+", default=list(DEFAULT_SAMPLES),
                   help="names from `python -m pipeline.samples list` (default: franck cap13)")
    b.add_argument("--out", type=Path, default=PRIOR_PATH)
    a = ap.parse_args(argv)
    out = build_prior_file(a.samples, a.out, log=_say)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
