"""Cameras for live capture: a device index, a video file or a stream URL, each read on its own thread.

A video file stands in for a camera: its frames are released at the file's own frame rate in real
time (so the live path can be tested and benchmarked without hardware) and stamped, like a camera's,
with the monotonic clock at the moment they are released.
"""
from __future__ import annotations

import glob
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # OpenCV's warning for every index it probes

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from capture.sync import Frame  # noqa: E402
from capture.video import MAX_PLAUSIBLE_FPS, probe  # noqa: E402
from pipeline.core.errors import InputError  # noqa: E402
from pipeline.core.quiet import native_stderr_silenced  # noqa: E402

MAX_PROBED_INDEX = 10
DEFAULT_DEVICE_FPS = 30.0  # what a device that reports no frame rate is assumed to deliver
READ_RETRY_S = 0.01        # wait between reads of a live camera that delivers nothing


@dataclass(frozen=True)
class CameraSpec:
    text: str
    kind: str               # "device", "file" or "url"
    index: int | None = None

    @classmethod
    def parse(cls, text: str) -> "CameraSpec":
        if re.fullmatch(r"\d+", text):
            return cls(text, "device", int(text))
        if "://" in text:
            return cls(text, "url")
        return cls(text, "file")


def _backend() -> int:
    return cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY


def list_devices(max_index: int = MAX_PROBED_INDEX) -> list[int]:
    """Indices of the capture devices that open (probing 0..max_index-1 and any /dev/videoN)."""
    idx = set(range(max_index))
    idx |= {int(m.group(1)) for p in glob.glob("/dev/video*") if (m := re.search(r"(\d+)$", p))}
    found = []
    with native_stderr_silenced():
        for i in sorted(idx):
            if sys.platform.startswith("linux") and not os.path.exists(f"/dev/video{i}"):
                continue  # V4L2 indices are /dev/videoN: nothing to open
            cap = cv2.VideoCapture(i, _backend())
            if cap.isOpened():
                found.append(i)
            cap.release()
    return found


def missing_camera_message(index: int, found: list[int]) -> str:
    have = f"cameras found: {', '.join(map(str, found))}" if found else "no cameras found"
    return f"camera {index} does not exist; {have}"


@dataclass
class SourceInfo:
    """What a camera delivers (after any resize or frame-rate reduction we apply to a file)."""
    spec: str
    kind: str
    width: int
    height: int
    fps: float                     # nominal delivered frame rate
    native_size: tuple[int, int]   # what the device / file gives before our resize
    native_fps: float
    frame_count: int = 0           # files: frames in the file (0 = unknown / live)
    requested: dict | None = None  # --width/--height/--fps as asked

    def as_dict(self) -> dict:
        return {"source": self.spec, "kind": self.kind, "resolution": [self.width, self.height],
                "fps_nominal": round(self.fps, 3), "native_resolution": list(self.native_size),
                "native_fps": round(self.native_fps, 3), "requested": self.requested or {},
                **({"file_frames": self.frame_count} if self.kind == "file" else {})}


class CameraSource:
    """Opens one camera; `read()` returns the next BGR frame or None. Not thread-safe: one reader."""

    def __init__(self, spec: CameraSpec, width: int | None = None, height: int | None = None,
                 fps: float | None = None):
        self.spec = spec
        self._req = {k: v for k, v in (("width", width), ("height", height), ("fps", fps)) if v}
        self._cap: cv2.VideoCapture | None = None
        self._size: tuple[int, int] | None = None  # resize target for files/URLs
        self._first: np.ndarray | None = None
        self.info: SourceInfo | None = None

    @property
    def paced(self) -> bool:
        """Files are released at their own rate; live streams wait for frames by themselves."""
        return self.spec.kind == "file"

    def open(self) -> SourceInfo:
        s = self.spec
        if s.kind == "device":
            self._open_device()
        else:
            if s.kind == "file":
                probe(s.text)  # one-line InputError for missing, empty or unreadable files
            with native_stderr_silenced():
                self._cap = cv2.VideoCapture(s.text, cv2.CAP_FFMPEG)
            if not self._cap.isOpened():
                raise InputError(f"{s.text}: cannot open the stream")
        cap = self._cap
        with native_stderr_silenced():
            ok, first = cap.read()
        if not ok or first is None:
            self.close()
            where = f"camera {s.index}" if s.kind == "device" else s.text
            raise InputError(f"{where}: opened but delivers no frames")
        native = (first.shape[1], first.shape[0])
        native_fps = cap.get(cv2.CAP_PROP_FPS)
        if not np.isfinite(native_fps) or native_fps <= 0 or native_fps > MAX_PLAUSIBLE_FPS:
            native_fps = DEFAULT_DEVICE_FPS
        fps = native_fps
        if s.kind != "device":
            self._size = _target_size(native, self._req.get("width"), self._req.get("height"))
            fps = min(self._req.get("fps", native_fps), native_fps)
        size = self._size or native
        # A file's first frame is frame 0 of the take; a live camera's is stale by the time the
        # take starts, so it is not delivered.
        self._first = first if s.kind == "file" else None
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if s.kind == "file" else 0
        self.info = SourceInfo(s.text, s.kind, size[0], size[1], float(fps), native, float(native_fps),
                               count, self._req or None)
        return self.info

    def _open_device(self):
        i = self.spec.index
        if sys.platform.startswith("linux") and not os.path.exists(f"/dev/video{i}"):
            raise InputError(missing_camera_message(i, list_devices()))
        with native_stderr_silenced():
            cap = cv2.VideoCapture(i, _backend())
        if not cap.isOpened():
            cap.release()
            raise InputError(missing_camera_message(i, list_devices()))
        # Most webcams give 720p and above at full rate only as MJPG; one buffered frame keeps
        # latency low (the driver keeps the newest frame instead of a backlog).
        if "width" in self._req or "height" in self._req:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        if "width" in self._req:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._req["width"])
        if "height" in self._req:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._req["height"])
        if "fps" in self._req:
            cap.set(cv2.CAP_PROP_FPS, self._req["fps"])
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap = cap

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            frame, self._first = self._first, None
        else:
            ok, frame = self._cap.read()
            if not ok or frame is None:
                return None
        if self._size is not None and (frame.shape[1], frame.shape[0]) != self._size:
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        return frame

    def close(self):
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _target_size(native: tuple[int, int], w: int | None, h: int | None) -> tuple[int, int] | None:
    if not w and not h:
        return None
    if w and h:
        return int(w), int(h)
    if w:
        return int(w), int(round(native[1] * w / native[0] / 2) * 2)
    return int(round(native[0] * h / native[1] / 2) * 2), int(h)


class CameraReader(threading.Thread):
    """Reads one camera until stopped, the file ends or the camera stops delivering.

    Each frame goes to `deliver(Frame)` stamped with time.monotonic() when it was read (devices,
    streams) or released (files, paced from `start(t0)` at their nominal rate; a file frame that
    could not be decoded in time is released late, stamped with its real release time).
    A device or stream that fails to deliver for `lost_after_s` is reported lost.
    """

    def __init__(self, camera: int, source: CameraSource, deliver: Callable[[Frame], None],
                 lost_after_s: float = 1.0):
        super().__init__(name=f"camera{camera}", daemon=True)  # a blocked device read must not hang exit
        self.camera = camera
        self.source = source
        self.deliver = deliver
        self.lost_after_s = lost_after_s
        self.frames = 0
        self.times: list[float] = []     # delivery time of every frame (live frame-rate counter)
        self.last_t: float | None = None
        self.ended: str | None = None    # why the camera stopped delivering, if it did
        self.ended_t: float | None = None
        self.on_end: Callable[["CameraReader"], None] | None = None
        self._t0 = 0.0
        self._go = threading.Event()
        self._halt = threading.Event()

    def run_ahead(self) -> None:
        """Start reading a live camera now, discarding frames until `start_at`: its driver or
        network buffers then hold no stale backlog when the take starts (files wait instead)."""
        if not self.is_alive():
            self.start()

    def start_at(self, t0: float) -> None:
        self._t0 = t0
        self._go.set()
        if not self.is_alive():
            self.start()

    def stop(self) -> None:
        self._halt.set()
        self._go.set()

    def run(self):
        try:
            self._run()
        except Exception as e:  # a driver exception is a lost camera, not a crash of the take
            self._end(f"lost ({type(e).__name__}: {e})")
        finally:
            self.source.close()

    def _run(self):
        while not self._go.is_set():
            if self.source.paced:
                self._go.wait()
            elif self.source.read() is None:
                self._halt.wait(READ_RETRY_S)  # not delivering yet: the watchdog judges once the take runs
        info = self.source.info
        src_fps = info.native_fps if self.source.paced else info.fps
        step = src_fps / info.fps if self.source.paced else 1.0  # file frames per delivered frame
        src_i = 0          # file frame number
        next_keep = 0.0    # file frame number of the next frame to deliver (frame-rate reduction)
        fail_since = None
        while not self._halt.is_set():
            frame = self.source.read()
            if frame is None:
                if self.source.paced:
                    total = info.frame_count
                    self._end("end of file" if not total or src_i >= total - 2
                              else f"stopped delivering (read failed at frame {src_i} of {total})")
                    return
                now = time.monotonic()
                fail_since = fail_since or now
                if now - fail_since > self.lost_after_s:
                    self._end(f"lost (no frame for {self.lost_after_s:g} s)")
                    return
                self._halt.wait(READ_RETRY_S)
                continue
            fail_since = None
            if self.source.paced:
                i = src_i
                src_i += 1
                if i + 1e-6 < next_keep:
                    continue
                next_keep += step
                due = self._t0 + i / src_fps
                if self._halt.wait(max(0.0, due - time.monotonic())):
                    return
            t = time.monotonic()
            if t < self._t0:
                continue  # a live camera's frame from before the take's common start
            self.deliver(Frame(self.camera, self.frames, t, frame))
            self.frames += 1
            self.times.append(t)
            self.last_t = t

    def _end(self, why: str):
        self.ended = why
        self.ended_t = time.monotonic()
        if self.on_end is not None:
            self.on_end(self)
