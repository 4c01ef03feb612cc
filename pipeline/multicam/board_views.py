"""Frames of several sources -> the calibration board's detections in each, frame set by frame set.

Not to be confused with: pipeline.multicam.calibration_board (the board itself: its spec, how it is
detected in one image, its printable page), calibration_solver (detections -> Calibration),
calibration (the Calibration / Camera types and their files) and calibration_job (the whole
`python -m pipeline.calibrate` run).

In:  sources, all of one kind: video files of one take (started together: frame times are matched,
     one frame set every `every_s` seconds), folders or glob patterns of images (matched by order
     after a natural sort), or live camera indices (read one after the other for `seconds`).
Out: `Sources` (names, image sizes in pixels, the frame sets) and, from `collect`, per camera per
     frame set a `Detection` (pixels) or None.
"""
from __future__ import annotations

import glob
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from capture.cameras import CameraSource, CameraSpec  # noqa: E402
from capture.video import probe  # noqa: E402
from pipeline.core.errors import InputError  # noqa: E402
from pipeline.multicam.calibration_board import BoardSpec, Detection, detect  # noqa: E402

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_EVERY_S = 0.25        # seconds between frame sets of videos and live cameras
DEFAULT_LIVE_SECONDS = 60.0   # seconds live cameras are recorded when not told


def _natural(p: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(p))]


def _images(spec: str) -> list[Path] | None:
    """Image files of a folder or glob pattern, naturally sorted; None if `spec` is neither."""
    p = Path(spec)
    if p.is_dir():
        files = [f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXT]
    elif any(ch in spec for ch in "*?["):
        files = [Path(f) for f in glob.glob(spec) if Path(f).suffix.lower() in IMAGE_EXT]
    elif p.suffix.lower() in IMAGE_EXT and p.is_file():
        files = [p]
    else:
        return None
    if not files:
        raise InputError(f"{spec}: no images found")
    return sorted(files, key=_natural)


class Sources:
    """Synchronised frame sets from videos, image lists or live cameras."""

    def __init__(self, specs: list[str], every_s: float, seconds: float | None = None):
        self.specs = specs
        self.every_s = every_s
        self.seconds = seconds
        if all(re.fullmatch(r"\d+", s) for s in specs):
            self.kind = "live"
        elif all(_images(s) is not None for s in specs):
            self.kind = "images"
            self.images = [_images(s) for s in specs]
        elif any(re.fullmatch(r"\d+", s) for s in specs):
            raise InputError("give either camera indices or files, not both")
        else:
            self.kind = "videos"
        self.names = self._names()
        self.sizes: list[tuple[int, int]] = []
        self.count = 0  # frame sets expected (0: unknown)
        if self.kind == "videos":
            self.infos = [probe(s) for s in specs]
            self.sizes = [(i.width, i.height) for i in self.infos]
            dur = min(i.duration_s for i in self.infos)
            self.count = int(dur / every_s) + 1
        elif self.kind == "images":
            self.count = max(len(f) for f in self.images)
            for files in self.images:
                im = cv2.imread(str(files[0]), cv2.IMREAD_GRAYSCALE)
                if im is None:
                    raise InputError(f"{files[0]}: not a readable image")
                self.sizes.append((im.shape[1], im.shape[0]))
                if any(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE).shape[::-1] != self.sizes[-1]
                       for f in files[1:2]):
                    raise InputError(f"{files[0].parent}: images of different sizes")
        else:
            self.count = int((seconds or DEFAULT_LIVE_SECONDS) / every_s)

    def _names(self) -> list[str]:
        if self.kind == "live":
            return [f"cam{s}" for s in self.specs]
        stems = []
        for s in self.specs:
            p = Path(s.rstrip("/"))
            if any(ch in p.name for ch in "*?["):  # 'left*.jpg' -> left
                stem = re.sub(r"[*?\[].*$", "", p.name).rstrip("_-.0123456789")
                stems.append(stem or p.parent.name)
            else:
                stems.append(p.stem if p.is_file() else p.name)
        if len(set(stems)) != len(stems):
            stems = [f"cam{i + 1}" for i in range(len(stems))]
        return stems

    def __iter__(self) -> Iterator[list[np.ndarray | None]]:
        return getattr(self, f"_iter_{self.kind}")()

    def _iter_images(self):
        for k in range(self.count):
            yield [cv2.imread(str(files[k])) if k < len(files) else None for files in self.images]

    def _iter_videos(self):
        caps = [cv2.VideoCapture(i.path, cv2.CAP_FFMPEG) for i in self.infos]
        pos = [0] * len(caps)  # index of the next frame each capture would return
        try:
            for k in range(self.count):
                t = k * self.every_s
                out = []
                for c, (cap, info) in enumerate(zip(caps, self.infos)):
                    want = int(round(t * info.fps))
                    while pos[c] < want and cap.grab():  # grab without decoding: cheap skipping
                        pos[c] += 1
                    ok, frame = cap.read()
                    pos[c] += 1
                    out.append(frame if ok else None)
                if all(f is None for f in out):
                    return
                yield out
        finally:
            for cap in caps:
                cap.release()

    def _iter_live(self):
        srcs = [CameraSource(CameraSpec.parse(s)) for s in self.specs]
        try:
            for s in srcs:
                info = s.open()
                self.sizes.append((info.width, info.height))
            t_end = time.monotonic() + (self.seconds or DEFAULT_LIVE_SECONDS)
            next_t = time.monotonic()
            while time.monotonic() < t_end:
                frames = [s.read() for s in srcs]  # each read waits for that camera's next frame
                if time.monotonic() >= next_t:
                    next_t += self.every_s
                    yield frames
        finally:
            for s in srcs:
                s.close()


def collect(board: BoardSpec, sources: Sources, progress: bool = True,
            thorough: bool | None = None) -> list[list[Detection | None]]:
    """Board detections per camera per frame set (two cameras detected at once: OpenCV releases
    the GIL)."""
    C = len(sources.specs)
    thorough = sources.kind == "images" if thorough is None else thorough
    dets: list[list[Detection | None]] = [[] for _ in range(C)]
    found = [0] * C
    bar = tqdm(total=sources.count or None, unit="frame", desc="finding the board", disable=not progress,
               dynamic_ncols=True)
    with ThreadPoolExecutor(max_workers=min(C, os.cpu_count() or 1)) as pool:
        try:
            for frames in sources:
                res = list(pool.map(lambda f: None if f is None else detect(board, f, thorough), frames))
                for c, d in enumerate(res):
                    dets[c].append(d)
                    found[c] += d is not None
                bar.set_postfix_str(" ".join(f"{n}:{k}" for n, k in zip(sources.names, found)))
                bar.update(1)
        except KeyboardInterrupt:
            if sources.kind != "live":
                raise
            # live: Ctrl-C ends the recording of views, calibration goes on
        finally:
            bar.close()
    return dets


