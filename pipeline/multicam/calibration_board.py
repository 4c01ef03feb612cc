"""Calibration boards: their description, detection in an image, and a printable picture.

Not to be confused with: pipeline.multicam.board_views (finds this board in the frames of videos,
image folders or cameras), calibration_solver (board detections -> a Calibration), calibration (the
Calibration / Camera types and their files) and calibration_job (the whole calibration run).

In/out: `BoardSpec` (kind, counts, sizes in metres) from text or JSON; `detect` takes a BGR or grey
image and gives a `Detection` (corner ids, pixels) or None; `write_board` / `write_printable_board`
write the page as PNG, PDF (true size at the given dpi) and a JSON description.

Two kinds:
  * ChArUco (recommended): a chessboard whose white squares hold ArUco markers, so every corner is
    identified even when the board is partly out of view or seen from any side. `cols x rows` are
    squares (OpenCV's CharucoBoard); its (cols-1)(rows-1) inner corners are the points.
  * Checkerboard: `cols x rows` are INNER corners (OpenCV's patternSize, Pose2Sim's
    `intrinsics_corners_nb`). The whole board must be in view. A checkerboard with an odd and an
    even count (e.g. 9x6) has one orientation; detections are turned so that corner 0 is the one
    whose inner square (toward corners 1 and cols) is black, so cameras agree on which corner is
    which. A square-symmetric one (both even or both odd) does not: use it for intrinsics only.

Board frame (object points): metres, X along a row (cols), Y along a column (rows), Z = 0 on the
board, +Z into the board (OpenCV's convention: a camera facing the printed side has +Z pointing
away from it). ChArUco: origin at the board's outer corner (the first inner corner is at
(s, s)); checkerboard: origin at corner 0.

Text spec, as the CLIs take it (`--board`):
    charuco:7x5:35mm:26mm[:DICT_5X5_100]     squares, square side, marker side, ArUco dictionary
    checkerboard:9x6:25mm                    inner corners, square side
or the JSON file `python -m pipeline.board` writes next to the picture.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.core.atomic import atomic_path, cause, write_image, write_text
from pipeline.core.errors import InputError, OutputError

try:  # Pillow writes the PDF; without it, the PNG and JSON only
    from PIL import Image
except ImportError:
    Image = None

DEFAULT_DICTIONARY = "DICT_5X5_100"
MIN_CHARUCO_CORNERS = 6
# A real detection of a planar board fits a homography to within lens distortion; a scrambled one
# (a row matched to the wrong row) is off by a square or more.
MAX_HOMOGRAPHY_RESIDUAL = 0.25  # in squares (of the board's image scale)
HOMOGRAPHY_SLACK_PX = 1.0       # pixels of residual always allowed (tiny boards in the image)
WORK_SIDE_PX = 1000             # checkerboards are searched for at about this size
SUBPIX_WINDOW = 0.4             # corner refinement window, in squares of the image...
SUBPIX_WINDOW_PX = (3, 11)      # ... within these many pixels
SUBPIX_ITERATIONS, SUBPIX_EPS_PX = 40, 1e-3
DEFAULT_BOARD = "charuco:7x5:32mm:24mm:DICT_5X5_100"
PAGES_MM = {"A4": (210.0, 297.0), "A3": (297.0, 420.0), "letter": (215.9, 279.4)}
MARGIN_MM = 12.0
LABEL_MM = 22.0  # room below the board for the text and the scale bar
MM_PER_INCH = 25.4
# The printed label: two lines of text and a 100 mm scale bar with 10 mm ticks, under the board.
TEXT_GAP_MM = 6           # from the board to the first line's baseline
LINE_GAP_MM = 5           # between baselines (and to the scale bar)
FONT_MM = 0.11            # OpenCV font scale per mm
LINE_MM = 0.25            # stroke width
SMALL_FONT = 0.8          # second line and scale label, relative to the first
SCALE_BAR_MM = 100
TICK_MM = 10
TICK_HEIGHT_MM, LONG_TICK_HEIGHT_MM = 2.5, 4  # every fifth tick is long
SCALE_LABEL_GAP_MM = 2


@dataclass(frozen=True)
class BoardSpec:
    kind: str                      # "charuco" or "checkerboard"
    cols: int                      # charuco: squares across; checkerboard: inner corners across
    rows: int
    square_m: float
    marker_m: float = 0.0          # charuco only
    dictionary: str = DEFAULT_DICTIONARY

    def __post_init__(self):
        if self.kind not in ("charuco", "checkerboard"):
            raise InputError(f"board kind must be charuco or checkerboard, not {self.kind!r}")
        if self.cols < 2 or self.rows < 2 or (self.kind == "charuco" and min(self.cols, self.rows) < 3):
            raise InputError(f"board {self.cols}x{self.rows} is too small")
        if not self.square_m > 0:
            raise InputError("board square size must be positive")
        if self.kind == "charuco":
            if not 0 < self.marker_m < self.square_m:
                raise InputError("ChArUco marker side must be positive and smaller than the square")
            if not hasattr(cv2.aruco, self.dictionary):
                raise InputError(f"unknown ArUco dictionary {self.dictionary!r} (e.g. {DEFAULT_DICTIONARY})")
            n_markers = (self.cols * self.rows) // 2
            m = re.search(r"_(\d+)$", self.dictionary)  # DICT_5X5_100 holds 100 markers
            size = int(m.group(1)) if m else 1 << 30
            if n_markers > size:
                raise InputError(f"a {self.cols}x{self.rows} ChArUco board needs {n_markers} markers; "
                                 f"{self.dictionary} has {size}")

    # -- text / JSON -----------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> "BoardSpec":
        """From 'charuco:7x5:35mm:26mm[:DICT]', 'checkerboard:9x6:25mm' or a JSON sidecar path."""
        p = Path(text)
        if text.lower().endswith(".json") or (p.is_file() and not text.startswith(("charuco:", "checkerboard:"))):
            try:
                d = json.loads(p.read_text())
            except (OSError, ValueError) as e:
                raise InputError(f"{p}: cannot read the board description ({e})") from None
            return cls.from_dict(d)
        parts = text.split(":")
        try:
            kind = parts[0].lower()
            cols, rows = (int(v) for v in parts[1].lower().split("x"))
            square = _length_m(parts[2])
            if kind == "charuco":
                marker = _length_m(parts[3])
                dictionary = parts[4].upper() if len(parts) > 4 else DEFAULT_DICTIONARY
                if not dictionary.startswith("DICT_"):
                    dictionary = "DICT_" + dictionary
                return cls(kind, cols, rows, square, marker, dictionary)
            return cls(kind, cols, rows, square)
        except (IndexError, ValueError):
            raise InputError(f"board {text!r} not understood; e.g. charuco:7x5:35mm:26mm:DICT_5X5_100 "
                             f"or checkerboard:9x6:25mm (inner corners)") from None

    @classmethod
    def from_dict(cls, d: dict) -> "BoardSpec":
        try:
            return cls(d["kind"], int(d["cols"]), int(d["rows"]), float(d["square_mm"]) / 1000.0,
                       float(d.get("marker_mm", 0.0)) / 1000.0, d.get("dictionary", DEFAULT_DICTIONARY))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"board description is missing or has a bad {e}") from None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["square_mm"] = round(d.pop("square_m") * 1000.0, 4)
        d["marker_mm"] = round(d.pop("marker_m") * 1000.0, 4)
        if self.kind != "charuco":
            d.pop("marker_mm")
            d.pop("dictionary")
        d["corners"] = self.n_corners
        return d

    def describe(self) -> str:
        if self.kind == "charuco":
            return (f"ChArUco {self.cols}x{self.rows} squares, square {self.square_m * 1000:g} mm, "
                    f"marker {self.marker_m * 1000:g} mm, {self.dictionary}")
        return f"checkerboard {self.cols}x{self.rows} inner corners, square {self.square_m * 1000:g} mm"

    def text(self) -> str:
        if self.kind == "charuco":
            return (f"charuco:{self.cols}x{self.rows}:{self.square_m * 1000:g}mm:"
                    f"{self.marker_m * 1000:g}mm:{self.dictionary}")
        return f"checkerboard:{self.cols}x{self.rows}:{self.square_m * 1000:g}mm"

    # -- geometry --------------------------------------------------------------------------------

    @property
    def inner(self) -> tuple[int, int]:
        """(across, down) inner corner counts."""
        return (self.cols - 1, self.rows - 1) if self.kind == "charuco" else (self.cols, self.rows)

    @property
    def n_corners(self) -> int:
        a, b = self.inner
        return a * b

    @property
    def oriented(self) -> bool:
        """Every corner is identified in any view (ChArUco, or a checkerboard without 180-degree
        symmetry)."""
        a, b = self.inner
        return self.kind == "charuco" or (a + b) % 2 == 1

    def object_points(self) -> np.ndarray:
        """(n_corners, 3) float64 corner positions in the board frame, metres (see module doc)."""
        if self.kind == "charuco":
            return self.cv_board().getChessboardCorners().astype(np.float64).reshape(-1, 3)
        a, b = self.inner
        g = np.mgrid[0:a, 0:b].T.reshape(-1, 2) * self.square_m
        return np.c_[g, np.zeros(len(g))]

    def centre_m(self) -> np.ndarray:
        """(3,) the middle of the corner grid in the board frame."""
        return self.object_points().mean(0)

    def cv_board(self):
        d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        return cv2.aruco.CharucoBoard((self.cols, self.rows), self.square_m, self.marker_m, d)

    # -- picture ---------------------------------------------------------------------------------

    def image(self, px_per_square: int) -> np.ndarray:
        """The board alone, uint8 grey, px_per_square pixels per square, with a one-square white
        margin for checkerboards (their outer squares need a white border to be found)."""
        if self.kind == "charuco":
            w, h = self.cols * px_per_square, self.rows * px_per_square
            return self.cv_board().generateImage((w, h), marginSize=0, borderBits=1)
        a, b = self.inner
        sq = (a + 1, b + 1)  # squares
        img = np.full(((sq[1] + 2) * px_per_square, (sq[0] + 2) * px_per_square), 255, np.uint8)
        for j in range(sq[1]):
            for i in range(sq[0]):
                if (i + j) % 2 == 0:
                    y, x = (j + 1) * px_per_square, (i + 1) * px_per_square
                    img[y:y + px_per_square, x:x + px_per_square] = 0
        return img


def _length_m(text: str) -> float:
    m = re.fullmatch(r"\s*([0-9.]+)\s*(mm|cm|m|in)?\s*", text.lower())
    if not m:
        raise ValueError(text)
    v = float(m.group(1))
    unit = m.group(2) or "mm"
    return v * {"mm": 1e-3, "cm": 1e-2, "m": 1.0, "in": 0.0254}[unit]


@dataclass(eq=False)
class Detection:
    """Board corners found in one image.

    ids:        (k,) int, index of each corner in BoardSpec.object_points().
    corners_px: (k, 2) float64 pixel positions.
    """

    ids: np.ndarray
    corners_px: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def _gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _homography_ok(board: BoardSpec, det: Detection) -> bool:
    """The detected corners are where a plane would put them (rejects scrambled detections)."""
    obj = board.object_points()[det.ids, :2]
    if len(obj) < 4:
        return False
    H, _ = cv2.findHomography(obj, det.corners_px, 0)
    if H is None:
        return False
    proj = cv2.perspectiveTransform(obj.reshape(-1, 1, 2), H).reshape(-1, 2)
    res = np.linalg.norm(proj - det.corners_px, axis=1).max()
    # the image size of one square near the middle of the detection
    step = np.median(np.linalg.norm(np.diff(det.corners_px, axis=0), axis=1))
    return bool(res <= MAX_HOMOGRAPHY_RESIDUAL * max(step, 1.0) + HOMOGRAPHY_SLACK_PX)


def _square_mean(gray: np.ndarray, quad: np.ndarray) -> float:
    """Mean grey level inside the middle half of a quadrilateral (4, 2) of pixels."""
    centre = quad.mean(0)
    shrunk = (centre + 0.5 * (quad - centre)).round().astype(np.int32)
    mask = np.zeros(gray.shape, np.uint8)
    cv2.fillConvexPoly(mask, shrunk, 255)
    return float(cv2.mean(gray, mask)[0])


def _orient_checkerboard(board: BoardSpec, gray: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Turn a checkerboard detection half a turn if needed so that corner 0 is the one whose inner
    square is black (see the module docstring), comparing it with its neighbour, which is white."""
    a, _ = board.inner
    first = _square_mean(gray, corners[[0, 1, a + 1, a]])
    nxt = _square_mean(gray, corners[[1, 2, a + 2, a + 1]] if a >= 3 else corners[[a, a + 1, 2 * a + 1, 2 * a]])
    return corners[::-1].copy() if first > nxt else corners


def detect(board: BoardSpec, image: np.ndarray, thorough: bool = True) -> Detection | None:
    """Corners of `board` in a BGR or grey image, or None when the board is not (reliably) there.
    thorough: also try OpenCV's exhaustive checkerboard search (slow) before giving up."""
    gray = _gray(image)
    if board.kind == "charuco":
        det = _charuco_detector(board)
        cc, ci, _, _ = det.detectBoard(gray)
        if ci is None or len(ci) < MIN_CHARUCO_CORNERS:
            return None
        d = Detection(np.asarray(ci, int).ravel(), np.asarray(cc, np.float64).reshape(-1, 2))
        if board.cv_board().checkCharucoCornersCollinear(np.asarray(ci).reshape(-1, 1)):
            return None  # one row of corners: no pose from it
        return d if _homography_ok(board, d) else None
    size = board.inner
    ids = np.arange(board.n_corners)
    # Search on a working copy at most ~1000 px wide (4x faster than 1080p, finds as many), the
    # classic detector first (fastest), then the sector-based one, then the exhaustive search
    # (slow) for boards under strong perspective; refine to sub-pixel on the full image. Any of
    # them may scramble rows: the homography check catches it.
    scale = min(1.0, WORK_SIDE_PX / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    classic = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
    attempts = [(small, scale, lambda im: cv2.findChessboardCorners(im, size, flags=classic)),
                (small, scale, lambda im: cv2.findChessboardCornersSB(im, size, flags=cv2.CALIB_CB_NORMALIZE_IMAGE))]
    if scale < 1:
        attempts.append((gray, 1.0, lambda im: cv2.findChessboardCorners(im, size, flags=classic)))
    if thorough:
        attempts.append((small, scale, lambda im: cv2.findChessboardCornersSB(
            im, size, flags=cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_EXHAUSTIVE)))
    for im, sc, find in attempts:
        ok, c = find(im)
        if not ok:
            continue
        c = (np.asarray(c, np.float32).reshape(-1, 1, 2) + 0.5) / sc - 0.5
        step = np.median(np.linalg.norm(np.diff(c.reshape(-1, 2), axis=0), axis=1))
        win = int(np.clip(step * SUBPIX_WINDOW, *SUBPIX_WINDOW_PX))
        c = cv2.cornerSubPix(gray, c, (win, win), (-1, -1),
                             (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, SUBPIX_ITERATIONS, SUBPIX_EPS_PX))
        d = Detection(ids, np.asarray(c, np.float64).reshape(-1, 2))
        if _homography_ok(board, d):
            break
    else:
        return None
    if board.oriented:
        d.corners_px = _orient_checkerboard(board, gray, d.corners_px)
    return d


_DETECTORS: dict = {}


def _charuco_detector(board: BoardSpec):
    if board not in _DETECTORS:
        _DETECTORS[board] = cv2.aruco.CharucoDetector(board.cv_board())
    return _DETECTORS[board]


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
    px_mm = dpi / MM_PER_INCH
    pps = int(round(board.square_m * 1000 * px_mm))
    img = board.image(pps)
    W, H = int(round(page_mm[0] * px_mm)), int(round(page_mm[1] * px_mm))
    page = np.full((H, W), 255, np.uint8)
    top = int(round(MARGIN_MM * px_mm))
    left = (W - img.shape[1]) // 2
    page[top:top + img.shape[0], left:left + img.shape[1]] = img
    square_mm = pps / px_mm
    _draw_label(page, board, square_mm, left, top + img.shape[0], px_mm)
    return page, square_mm


def _draw_label(page: np.ndarray, board: BoardSpec, square_mm: float, left: int, bottom: int,
                px_mm: float) -> None:
    """Under the board (its bottom row `bottom`, pixels): what it is, how to use it, and a scale bar
    to check the print's scale, drawn into `page` at px_mm pixels per millimetre."""
    y = bottom + int(round(TEXT_GAP_MM * px_mm))
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, FONT_MM * px_mm, max(1, int(LINE_MM * px_mm))
    text = board.describe().replace(f"square {board.square_m * 1000:g} mm", f"square {square_mm:.2f} mm")
    cv2.putText(page, text, (left, y), font, scale, 0, thick, cv2.LINE_AA)
    y2 = y + int(round(LINE_GAP_MM * px_mm))
    cv2.putText(page, f"--board {board.text()}   print at 100% (actual size)", (left, y2), font,
                scale * SMALL_FONT, 0, thick, cv2.LINE_AA)
    yb = y2 + int(round(LINE_GAP_MM * px_mm))
    x0, x1 = left, left + int(round(SCALE_BAR_MM * px_mm))
    cv2.line(page, (x0, yb), (x1, yb), 0, thick)
    for k in range(SCALE_BAR_MM // TICK_MM + 1):
        x = x0 + int(round(TICK_MM * k * px_mm))
        tick = TICK_HEIGHT_MM if k % 5 else LONG_TICK_HEIGHT_MM
        cv2.line(page, (x, yb), (x, yb - int(round(tick * px_mm))), 0, thick)
    cv2.putText(page, "100 mm", (x1 + int(SCALE_LABEL_GAP_MM * px_mm), yb), font, scale * SMALL_FONT, 0, thick,
                cv2.LINE_AA)


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
    png, pdf, js = out.with_suffix(".png"), out.with_suffix(".pdf"), out.with_suffix(".json")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {out.parent}: {cause(e)}") from None
    write_image(png, img)  # atomic; OutputError naming the file and the cause when refused
    if Image is not None:
        with atomic_path(pdf) as tmp:
            Image.fromarray(img).save(tmp, "PDF", resolution=float(dpi))
    else:
        pdf = None
    desc = board.to_dict() | {"printed_square_mm": round(square_mm, 4), "page_mm": list(page_mm),
                              "dpi": dpi, "png": png.name, "pdf": pdf.name if pdf else None,
                              "spec": board.text()}
    write_text(js, json.dumps(desc, indent=2))
    return desc


def write_printable_board(spec: str, out: str | Path, page: str | None = None,
                          dpi: int = 300) -> tuple[BoardSpec, dict]:
    """The board of text spec `spec` (see the module docstring) written as out (.png), its .pdf and
    .json (write_board); returns the board and the JSON description."""
    board = BoardSpec.parse(spec)
    return board, write_board(board, Path(out), page, dpi)
