"""Bounded drop-oldest queues and the grouping of frames of several cameras by capture time.

Live tracking must never fall behind the cameras: when the tracker is slower than the frames
arrive, the oldest waiting frames are dropped (and counted), so the delay between a frame's capture
and its result stays bounded by the queue length instead of growing with the length of the take.
The recorder does not go through these queues: it keeps every frame.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    camera: int         # position of the camera in --cams
    index: int          # frame number of this camera in the take (= frame number in its recording)
    t_s: float          # time.monotonic() when the camera delivered the frame
    image: np.ndarray   # (H, W, 3) uint8 BGR


class DropOldestQueues:
    """One bounded FIFO per camera behind one condition variable, so a single consumer can wait
    for a frame from any camera. `put` never blocks: on a full queue the oldest item goes."""

    def __init__(self, n_cameras: int, maxsize: int):
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._q = [deque() for _ in range(n_cameras)]
        self._maxsize = maxsize
        self._cond = threading.Condition()
        self.dropped = [0] * n_cameras
        self.closed = False

    def put(self, camera: int, item) -> None:
        with self._cond:
            q = self._q[camera]
            if len(q) >= self._maxsize:
                q.popleft()
                self.dropped[camera] += 1
            q.append(item)
            self._cond.notify()

    def get_all(self, timeout: float | None = None) -> list:
        """Every waiting item of every camera (oldest first per camera); waits up to `timeout`
        seconds for at least one, returns [] on timeout or once closed and empty."""
        with self._cond:
            if not any(self._q) and not self.closed:
                self._cond.wait(timeout)
            out = []
            for q in self._q:
                out.extend(q)
                q.clear()
            return out

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._q)


def default_tolerance_s(fps: list[float]) -> float:
    """Half a frame period of the slowest camera: with free-running cameras every frame of the
    slowest one has a frame of each faster one within half its own period, so no camera loses frames
    to grouping merely because the cameras are out of phase, while frames a whole period apart
    never go together."""
    return 0.5 / max(min(f for f in fps if f > 0), 1e-3) if any(f > 0 for f in fps) else 1 / 60


@dataclass
class FrameGrouper:
    """Groups of one frame per camera whose capture times lie within `tolerance_s` of each other.

    Frames are added in capture order per camera (any order across cameras). A group is formed
    around the latest of the cameras' oldest waiting frames (the anchor): from every camera the
    latest frame not after the anchor is taken, if it is within the tolerance; older frames of that
    camera can no longer be in any group and are dropped as unmatched (counted per camera).
    Groups come out in time order; a group waits until every camera has a frame for it.
    """

    n_cameras: int
    tolerance_s: float
    max_waiting: int = 16  # frames kept per camera after grouping, while another camera has none
    unmatched: list[int] = field(default_factory=list)
    formed: int = 0

    def __post_init__(self):
        self._buf = [deque() for _ in range(self.n_cameras)]
        self.unmatched = [0] * self.n_cameras

    def add(self, frame: Frame) -> None:
        self._buf[frame.camera].append(frame)

    def waiting(self) -> int:
        return sum(len(b) for b in self._buf)

    def pop_groups(self) -> list[list[Frame]]:
        groups = []
        while all(self._buf):
            anchor = max(b[0].t_s for b in self._buf)
            complete = True
            for c, b in enumerate(self._buf):
                # keep only the latest frame at or before the anchor (the nearest to it)
                while len(b) > 1 and b[1].t_s <= anchor:
                    b.popleft()
                    self.unmatched[c] += 1
                if anchor - b[0].t_s > self.tolerance_s:
                    b.popleft()  # too old for this anchor or any later one
                    self.unmatched[c] += 1
                    complete = False
            if complete:
                groups.append([b.popleft() for b in self._buf])
                self.formed += 1
        for c, b in enumerate(self._buf):
            while len(b) > self.max_waiting:  # a camera has had nothing for a while
                b.popleft()
                self.unmatched[c] += 1
        return groups
