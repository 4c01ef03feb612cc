"""What a live take is asked to do, and why it ends.

`CaptureOptions`: one take as `python -m pipeline.capture` asks for it (the session folder, what
the cameras are asked for, preview or counters, the export's gap filling) around `LiveOptions`, the
engine's settings (time limit, grouping tolerance, queues, recording segments, VMC streaming).
`StopRequest`: the first reason the take ends (signals, camera threads, the preview window).
Times are seconds unless a name says otherwise.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.tracking.subject import AUTO


@dataclass
class LiveOptions:
    """The live engine's settings (pipeline.live.take.LiveTake)."""

    seconds: float | None = None        # end the take after this long
    tolerance_s: float | None = None    # grouping tolerance; None: default_tolerance_s
    queue_frames: int = 4               # per camera, between the camera and the grouper
    track_max_side: int = 1280          # larger frames are scaled down for tracking only
    lost_after_s: float = 1.0           # a camera silent this long ends the take
    segment_s: float = 2.0              # recording segment length (after a crash each stays playable)
    jpeg_quality: int = 90              # MJPEG quality of the recordings (0..100)
    join: bool = True                   # join each camera's segments into cam<i>.avi at the end
    keep_segments: bool = False         # keep the segments after joining them
    vmc: str | None = None              # "[host:]port" to stream over the VMC protocol ("" = default)
    subject: str | int = AUTO           # who to follow when several people are in view (pipeline.tracking.subject)
    face_calibration: str | None = None  # the VMC stream's: SECONDS, FILE or SECONDS,FILE (pipeline.face.calibration)


@dataclass
class CaptureOptions:
    """One live take (pipeline.live.run.run_capture), as the command's options ask for it."""

    out: str | Path | None = None      # session folder; None: sessions/capture_<date-time>
    overwrite: bool = False            # replace a session already in `out` (removed before the take)
    width: int | None = None           # frame width asked of devices (files and streams are resized)
    height: int | None = None          # frame height, likewise
    fps: float | None = None           # frame rate asked of devices (files: at most their own rate)
    preview: bool = True               # a preview window when there is a display (else counters)
    quiet: bool = False                # no counters or progress lines
    max_gap_s: float = 0.25            # the export fills tracking gaps up to this long
    live: LiveOptions = field(default_factory=LiveOptions)


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
