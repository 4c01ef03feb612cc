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
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from capture.board import BoardSpec
from pipeline.errors import InputError, PipelineError, report

DEFAULT_BOARD = "charuco:7x5:32mm:24mm:DICT_5X5_100"
PAGES_MM = {"A4": (210.0, 297.0), "A3": (297.0, 420.0), "letter": (215.9, 279.4)}
MARGIN_MM = 12.0
LABEL_MM = 22.0  # room below the board for the text and the scale bar


def _page_size_mm(text: str | None, board_mm: tuple[float, float]) -> tuple[float, float]:
    """Page (width, height) in mm: the named or given size, landscape when the board is wider;
    by default the smallest standard page the board fits on, else a page just big enough."""
    need = (board_mm[0] + 2 * MARGIN_MM, board_mm[1] + 2 * MARGIN_MM + LABEL_MM)

    def orient(p):
        w, h = sorted(p)
        return (h, w) if need[0] > need[1] else (w, h)
    if text:
        if text in PAGES_MM:
            page = orient(PAGES_MM[text])
        else:
            try:
                w, h = (float(v) for v in text.lower().removesuffix("mm").split("x"))
            except ValueError:
                raise InputError(f"page {text!r} not understood: A4, A3, letter or WxHmm") from None
            page = (w, h)
        if page[0] < need[0] or page[1] < need[1]:
            raise InputError(f"the board needs {need[0]:.0f}x{need[1]:.0f} mm with its margins; "
                             f"page {text} is {page[0]:.0f}x{page[1]:.0f} mm")
        return page
    for name in ("A4", "A3"):
        page = orient(PAGES_MM[name])
        if page[0] >= need[0] and page[1] >= need[1]:
            return page
    return need


def render(board: BoardSpec, page_mm: tuple[float, float], dpi: int) -> tuple[np.ndarray, float]:
    """The page (uint8 grey) and the printed square side in mm (pixel rounding)."""
    px_mm = dpi / 25.4
    pps = int(round(board.square_m * 1000 * px_mm))
    img = board.image(pps)
    W, H = int(round(page_mm[0] * px_mm)), int(round(page_mm[1] * px_mm))
    page = np.full((H, W), 255, np.uint8)
    top = int(round(MARGIN_MM * px_mm))
    left = (W - img.shape[1]) // 2
    page[top:top + img.shape[0], left:left + img.shape[1]] = img
    square_mm = pps / px_mm
    y = top + img.shape[0] + int(round(6 * px_mm))
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.11 * px_mm, max(1, int(0.25 * px_mm))
    text = board.describe().replace(f"square {board.square_m * 1000:g} mm", f"square {square_mm:.2f} mm")
    cv2.putText(page, text, (left, y), font, scale, 0, thick, cv2.LINE_AA)
    y2 = y + int(round(5 * px_mm))
    cv2.putText(page, f"--board {board.text()}   print at 100% (actual size)", (left, y2), font,
                scale * 0.8, 0, thick, cv2.LINE_AA)
    # 100 mm scale bar with 10 mm ticks, to check the print's scale
    yb = y2 + int(round(5 * px_mm))
    x0, x1 = left, left + int(round(100 * px_mm))
    cv2.line(page, (x0, yb), (x1, yb), 0, thick)
    for k in range(11):
        x = x0 + int(round(10 * k * px_mm))
        cv2.line(page, (x, yb), (x, yb - int(round((2.5 if k % 5 else 4) * px_mm))), 0, thick)
    cv2.putText(page, "100 mm", (x1 + int(2 * px_mm), yb), font, scale * 0.8, 0, thick, cv2.LINE_AA)
    return page, square_mm


def write_board(board: BoardSpec, out: Path, page: str | None = None, dpi: int = 300) -> dict:
    """Write out (.png), its .pdf and .json; return the JSON description."""
    a, b = board.inner
    squares = (board.cols, board.rows) if board.kind == "charuco" else (a + 1, b + 1)
    board_mm = (squares[0] * board.square_m * 1000, squares[1] * board.square_m * 1000)
    if board.kind == "checkerboard":  # its white border, one square each side
        board_mm = (board_mm[0] + 2 * board.square_m * 1000, board_mm[1] + 2 * board.square_m * 1000)
    page_mm = _page_size_mm(page, board_mm)
    img, square_mm = render(board, page_mm, dpi)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png, pdf, js = out.with_suffix(".png"), out.with_suffix(".pdf"), out.with_suffix(".json")
    if not cv2.imwrite(str(png), img):
        raise PipelineError(f"cannot write {png}")
    try:
        from PIL import Image
        Image.fromarray(img).save(pdf, "PDF", resolution=float(dpi))
    except ImportError:
        pdf = None
    desc = board.to_dict() | {"printed_square_mm": round(square_mm, 4), "page_mm": list(page_mm),
                              "dpi": dpi, "png": png.name, "pdf": pdf.name if pdf else None,
                              "spec": board.text()}
    js.write_text(json.dumps(desc, indent=2))
    return desc


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
        board = BoardSpec.parse(a.board)
        d = write_board(board, Path(a.out), a.page, a.dpi)
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
