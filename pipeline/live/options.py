"""TODO docstring."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class LiveOptions:
    seconds: float | None = None        # end the take after this long
    tolerance_s: float | None = None    # grouping tolerance; None: default_tolerance_s
    queue_frames: int = 4               # per camera, between the camera and the grouper
    track_max_side: int = 1280          # larger frames are scaled down for tracking only
    lost_after_s: float = 1.0           # a camera silent this long ends the take
    segment_s: float = 2.0
    jpeg_quality: int = 90
    join: bool = True                   # join each camera's segments into cam<i>.avi at the end
    keep_segments: bool = False
    vmc: str | None = None              # "[host:]port" to stream over the VMC protocol ("" = default)


class StopRequest:
    """Why the take ends; the first reason given wins (signal handlers, threads and the UI call it)."""

    def __init__(self):
        self.event = threading.Event()
        self.reason: str | None = None
        self.camera: int | None = None
        self.error: str | None = None   # set when the end is a failure (recording could not be written)
        self.t: float | None = None
        self._lock = threading.Lock()

    def request(self, reason: str, camera: int | None = None, error: str | None = None) -> None:
        with self._lock:
            if self.reason is None:
                self.reason, self.camera, self.error, self.t = reason, camera, error, time.monotonic()
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()
