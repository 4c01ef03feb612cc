"""Write a printable calibration board: PNG and PDF at true size, and a JSON description.

    python -m pipeline.board [--board charuco:7x5:32mm:24mm:DICT_5X5_100] [--page A4] [--out board.png]

The picture carries its own parameters (kind, counts, square and marker sizes, dictionary) and a
100 mm scale bar: print at 100 % ("actual size", no "fit to page"), then measure the bar and a
square; if they differ, give the measured square size to `python -m pipeline.calibrate --board`.
The JSON sidecar (board.json) can be passed as `--board board.json`. Glue the print to something
flat and rigid: a bent board calibrates badly.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.core.errors import PipelineError, report
from pipeline.multicam.calibration_board import DEFAULT_BOARD, write_printable_board


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.board", description=__doc__.splitlines()[0])
    ap.add_argument("--board", default=DEFAULT_BOARD,
                    help=f"charuco:COLSxROWS:SQUARE:MARKER[:DICT] (squares) or checkerboard:COLSxROWS:SQUARE "
                         f"(inner corners); default {DEFAULT_BOARD}")
    ap.add_argument("--page", help="A4, A3, letter or WxHmm (default: the smallest of A4, A3 that fits)")
    ap.add_argument("--dpi", type=int, default=300)
    ap.add_argument("--out", default="board.png", help="PNG path; the PDF and JSON go next to it")
    a = ap.parse_args(argv)
    try:
        board, d = write_printable_board(a.board, a.out, a.page, a.dpi)
    except PipelineError as e:
        return report(e)
    out = Path(a.out)
    print(f"{out.with_suffix('.png')}, {out.with_suffix('.pdf')}: {board.describe()} on a "
          f"{d['page_mm'][0]:.0f}x{d['page_mm'][1]:.0f} mm page; {out.with_suffix('.json')}: its description")
    print(f"print at 100 %, check that the scale bar measures 100 mm, then calibrate with "
          f"--board {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
