"""The live take's user interface, apart from the engine (pipeline.live.take): what the person
capturing sees while the take runs.

`ConsoleMonitor` prints per-camera counters (delivered and tracked frames per second, dropped
frames, capture-to-result latency median / p95 in ms, recorded frames) on one refreshing line, or a
line every few seconds into a log; `PreviewWindow` adds a cv2 window with each camera's last tracked
frame, its landmarks and the strongest blendshapes (`compose_preview`, BGR), where q or Esc ends
the take. The take calls `update(take, now)` every `poll_s` seconds and `close()` at its end.
"""
from __future__ import annotations

import bisect
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from pipeline.core.overlay import blendshape_bars, draw_landmarks
from pipeline.core.tracks import ARKIT_NAMES
from pipeline.live.options import StopRequest
from pipeline.live.tracker import CameraStats

STATUS_WINDOW_S = 2.0        # live counters are over the last this many seconds
PREVIEW_FPS = 25             # the preview window's refresh rate: it does not need the cameras' rate
MAX_WINDOW_WIDTH_PX = 1600   # the preview window opens at most this wide (it stays resizable)
BARS_WIDTH_PX = 220          # the blendshape bars panel beside the camera tiles
STATUS_STRIP_PX = 28         # the counters' strip under the tiles
ESC_KEY = 27
# Console counters: a terminal's line refreshes every TTY_EVERY_S; a log gets a line every
# LOG_EVERY_S for the first LOG_DENSE_S of the take, then every LOG_SPARSE_EVERY_S (seconds).
FIRST_COUNTERS_AFTER_S = 1.0  # the first counters once there is something to count
TTY_EVERY_S = 0.5
LOG_EVERY_S = 1.0
LOG_DENSE_S = 10
LOG_SPARSE_EVERY_S = 5.0


def _window_stats(s: CameraStats, now: float, window: float) -> tuple[float, float, float]:
    """Tracked fps and latency median / p95 (ms) over the last `window` seconds."""
    k = bisect.bisect_left(s.ready_t, now - window)
    lat = s.latency_s[k:]
    if not lat:
        return 0.0, float("nan"), float("nan")
    return len(lat) / window, 1e3 * float(np.median(lat)), 1e3 * float(np.percentile(lat, 95))


def status_line(take, now: float) -> str:
    """One line of every camera's counters over the last STATUS_WINDOW_S seconds of the take."""
    parts = []
    window = min(STATUS_WINDOW_S, max(now - take.t0, 1e-3))
    for c, r in enumerate(take.readers):
        s = take.tracker.stats[c]
        with take.tracker.lock:
            fps_t, med, p95 = _window_stats(s, now, window)
        fps_c = (len(r.times) - bisect.bisect_left(r.times, now - window)) / window
        dropped = take.tracker.inbox.dropped[c] + s.dropped_unmatched + s.dropped_busy
        lat = f"{med:3.0f}/{p95:3.0f} ms" if np.isfinite(med) else "  -/  - ms"
        errors = f", TRACKER ERRORS {s.tracker_errors}" if s.tracker_errors else ""
        parts.append(f"cam{c} {fps_c:4.1f} fps, tracked {fps_t:4.1f}, dropped {dropped}, latency {lat}, "
                     f"rec {take.recorders[c].frames}{errors}")
    return f"{now - take.t0:6.1f} s | " + " | ".join(parts)


def compose_preview(latest: list, labels: list[str], status: str, tile_h: int = 360) -> np.ndarray:
    """Preview picture: each camera's last tracked frame with its landmarks, the strongest
    blendshapes of the first camera with a face, and the counters. BGR.

    latest: per camera (Frame, FrameResult or None) or None before its first result; tile_h: the
    tiles' height in pixels (a camera without a frame gets a black 4:3 tile).
    """
    tiles, scores = [], None
    for item, label in zip(latest, labels):
        if item is None:
            tile = np.zeros((tile_h, tile_h * 4 // 3, 3), np.uint8)
        else:
            f, r = item
            h, w = f.image.shape[:2]
            small = cv2.resize(f.image, (max(1, round(w * tile_h / h)), tile_h), interpolation=cv2.INTER_AREA)
            face = r.face if r is not None else None
            pose = r.pose if r is not None else None
            tile = draw_landmarks(small, face.landmarks if face else None, pose.image if pose else None,
                                  pose.visibility if pose else None)
            if face is not None and scores is None:
                scores = face.blendshapes
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        cv2.rectangle(tile, (0, 0), (tw + 12, th + 12), (24, 24, 24), -1)
        cv2.putText(tile, label, (6, th + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    # `_neutral` (index 0) is not an expression: the bars show the 51 ARKit shapes only
    bars = blendshape_bars(scores[1:] if scores is not None else np.zeros(len(ARKIT_NAMES)),
                           ARKIT_NAMES, size=(BARS_WIDTH_PX, tile_h))
    top = np.hstack(tiles + [bars])
    strip = np.full((STATUS_STRIP_PX, top.shape[1], 3), 24, np.uint8)
    cv2.putText(strip, status[: top.shape[1] // 7], (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (220, 220, 220), 1, cv2.LINE_AA)
    return np.vstack([top, strip])


class ConsoleMonitor:
    """Counters on one refreshing line (terminal) or a line every few seconds (log, pipe)."""

    poll_s = 0.1  # how often the take's watch loop calls update (seconds)

    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = TTY_EVERY_S if self.tty else LOG_EVERY_S
        self._next = 0.0
        self._width = 0

    def update(self, take, now: float) -> None:
        if self.quiet or now < self._next:
            return
        if self._next == 0.0:  # first call
            self._next = take.t0 + FIRST_COUNTERS_AFTER_S
            return
        self._next = now + (self.every if self.tty or now - take.t0 < LOG_DENSE_S else LOG_SPARSE_EVERY_S)
        line = status_line(take, now)
        if self.tty:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        if self.tty and not self.quiet and self._width:
            self.stream.write("\n")
            self.stream.flush()


class PreviewWindow(ConsoleMonitor):
    """cv2.imshow window (needs a display); q or Esc in the window ends the take."""

    NAME = "dhcap capture (q: stop)"
    poll_s = 0.02  # the window needs cv2.waitKey often to stay responsive

    def __init__(self, stop: StopRequest, stream=None, quiet: bool = False):
        super().__init__(stream, quiet)
        self.stop = stop
        self._next_frame = 0.0
        self._sized = False
        # resizable, aspect kept, without Qt's toolbar
        cv2.namedWindow(self.NAME, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)

    def update(self, take, now: float) -> None:
        super().update(take, now)
        if now >= self._next_frame:
            self._next_frame = now + 1 / PREVIEW_FPS
            with take.tracker.lock:
                latest = list(take.tracker.latest)
            labels = [f"cam{c}: {Path(take.infos[c].spec).name}" for c in range(len(latest))]
            img = compose_preview(latest, labels, status_line(take, now))
            if not self._sized:  # open at the picture's own size (Qt's default is 400x300)
                scale = min(1.0, MAX_WINDOW_WIDTH_PX / img.shape[1])
                cv2.resizeWindow(self.NAME, int(img.shape[1] * scale), int(img.shape[0] * scale))
                self._sized = True
            cv2.imshow(self.NAME, img)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), ESC_KEY):
            self.stop.request("stopped from the preview window")

    def close(self):
        super().close()
        cv2.destroyAllWindows()


def display_available() -> bool:
    """Whether a window can be opened (on Linux: an X11 or Wayland display is set)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True
