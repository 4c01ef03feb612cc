"""Live tracking of the freshest group of frames: frames of every camera in, FrameResults out.

`LiveTracker` drains the cameras' drop-oldest queues (capture.sync), groups their frames by
capture time, hands the newest complete group to one `FaceBodyTracker` per camera, each on its own
thread (`_TrackerWorker`; frames larger than `track_max_side` pixels are scaled down for tracking
only; each follows the subject chosen by `LiveOptions.subject`, see pipeline.tracking.subject),
and keeps every result by (camera, frame number), the latest one per camera for the preview,
and per-camera counters (`CameraStats`: tracked and dropped frames, capture-to-result latency in
seconds). With `LiveOptions.vmc` it hands the first camera's results to the VMC
streamer (pipeline.live.vmc).
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from capture.sync import DropOldestQueues, Frame, FrameGrouper
from pipeline.face.calibration import live_calibration
from pipeline.live.options import LiveOptions
from pipeline.live.vmc import LiveVMCStreamer, parse_target
from pipeline.tracking.subject import AUTO
from pipeline.tracking.tracker import FaceBodyTracker

INBOX_POLL_S = 0.05  # how long the dispatcher waits for frames before checking whether to stop
WORKER_JOIN_S = 10   # how long the end of a take waits for each tracker worker's last frame
MS_PER_S = 1e3       # the VMC summary gives latencies in milliseconds


@dataclass
class CameraStats:
    """One camera's live tracking counters; latencies and times in seconds (time.monotonic)."""

    tracked: int = 0
    face_frames: int = 0
    body_frames: int = 0
    dropped_unmatched: int = 0      # no frame of the other cameras within the tolerance
    dropped_busy: int = 0           # a newer group was ready when the tracker became free
    latency_s: list = field(default_factory=list)   # capture -> result, per tracked frame
    ready_t: list = field(default_factory=list)     # monotonic time each result was ready
    track_busy_s: float = 0.0       # wall time inside FaceBodyTracker.track (MediaPipe runs its
                                    # graphs on threads of its own, so thread CPU time would miss it)
    tracker_errors: int = 0         # frames whose tracking raised (the take goes on without them)
    last_tracker_error: str | None = None


class _TrackerWorker(threading.Thread):
    """One camera's FaceBodyTracker on its own thread."""

    _create_lock = threading.Lock()  # MediaPipe start-up redirects fd 2: one at a time

    def __init__(self, camera: int, size: tuple[int, int], t0_ref: list, max_side: int, done,
                 subject: str | int = AUTO):
        super().__init__(name=f"tracker{camera}", daemon=True)
        self.camera = camera
        self._size = size
        self._t0 = t0_ref
        self._scale = min(1.0, max_side / max(size))
        self._subject = subject
        self._jobs: list = []
        self._cond = threading.Condition()
        self._done = done
        self.ready = threading.Event()
        self.error: BaseException | None = None  # the tracker could not be created
        self.busy_s = 0.0
        self.subject_report: dict | None = None  # FaceBodyTracker.report() once the take ends

    def submit(self, frame: Frame | None):
        with self._cond:
            self._jobs.append(frame)
            self._cond.notify()

    def _small(self, img: np.ndarray) -> np.ndarray:
        if self._scale >= 1.0:
            return img
        w, h = img.shape[1], img.shape[0]
        return cv2.resize(img, (round(w * self._scale), round(h * self._scale)), interpolation=cv2.INTER_AREA)

    def run(self):
        try:
            with self._create_lock:
                tracker = FaceBodyTracker(subject=self._subject)
                # every model's first inference initialises its graphs (hundreds of ms): not in the take
                small = self._small(np.zeros((self._size[1], self._size[0], 3), np.uint8))
                tracker.preload((small.shape[1], small.shape[0]))
        except BaseException as e:  # reported by run_take
            self.error = e
            self.ready.set()
            return
        self.ready.set()
        try:
            while True:
                with self._cond:
                    while not self._jobs:
                        self._cond.wait()
                    f = self._jobs.pop(0)
                if f is None:
                    break
                c0 = time.monotonic()
                failure = None
                try:
                    r = tracker.track(self._small(f.image), f.t_s - self._t0[0])
                except Exception as e:  # one bad frame must not end the take: counted and reported
                    r, failure = None, f"{type(e).__name__}: {e}"
                t_ready = time.monotonic()
                self.busy_s += t_ready - c0
                self._done.put((f, r, t_ready, failure))
        finally:
            self.subject_report = tracker.report()
            tracker.close()


class LiveTracker:
    """The dispatcher thread: drains the drop-oldest queues, groups by time, tracks the freshest
    group on the per-camera workers, and keeps every result by (camera, frame number)."""

    def __init__(self, sizes: list[tuple[int, int]], tolerance_s: float, opts: LiveOptions):
        n = len(sizes)
        self.n = n
        self.inbox = DropOldestQueues(n, opts.queue_frames)
        self.grouper = FrameGrouper(n, tolerance_s)
        self.stats = [CameraStats() for _ in range(n)]
        self.results: list[dict] = [{} for _ in range(n)]
        self.latest: list[tuple[Frame, object] | None] = [None] * n
        self.groups_tracked = 0
        self.t0 = [0.0]
        self._done = queue.SimpleQueue()
        self._workers = [_TrackerWorker(c, sizes[c], self.t0, opts.track_max_side, self._done, opts.subject)
                         for c in range(n)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)
        self.lock = threading.Lock()
        self.vmc = None
        if opts.vmc is not None:
            self.vmc = LiveVMCStreamer(*parse_target(opts.vmc), image_size=sizes[0],
                                       calibration=live_calibration(opts.face_calibration))

    def load(self) -> None:
        """Start the workers and wait until both models of every camera are loaded (and the VMC
        stream's body solve process has started)."""
        for w in self._workers:
            w.start()
        for w in self._workers:
            w.ready.wait()
            if w.error is not None:
                raise w.error
        if self.vmc is not None:
            self.vmc.wait_ready()  # the body streams from the first frame (its process started meanwhile)

    def start(self, t0: float) -> None:
        self.t0[0] = t0
        self._thread.start()

    def put(self, frame: Frame) -> None:
        self.inbox.put(frame.camera, frame)

    def _run(self):
        while not self._stop.is_set():
            for f in self.inbox.get_all(timeout=INBOX_POLL_S):
                self.grouper.add(f)
            groups = self.grouper.pop_groups()
            for c in range(self.n):
                self.stats[c].dropped_unmatched = self.grouper.unmatched[c]
            if not groups or self._stop.is_set():
                continue
            for g in groups[:-1]:
                for f in g:
                    self.stats[f.camera].dropped_busy += 1
            group = groups[-1]
            for f in group:
                self._workers[f.camera].submit(f)
            for _ in group:
                self._record(*self._done.get())
            self.groups_tracked += 1

    def _record(self, f: Frame, r, t_ready: float, failure: str | None):
        s = self.stats[f.camera]
        with self.lock:
            s.tracked += 1
            if failure is not None:
                s.tracker_errors += 1
                s.last_tracker_error = failure
            s.latency_s.append(t_ready - f.t_s)
            s.ready_t.append(t_ready)
            if r is not None:
                s.face_frames += r.face is not None
                s.body_frames += r.pose is not None
                self.results[f.camera][f.index] = r
            self.latest[f.camera] = (f, r)
        if self.vmc is not None and f.camera == 0 and r is not None:
            self.vmc.on_frame(r, captured_s=f.t_s)  # never blocks: the streamer's own thread sends

    def subject_report(self, camera: int) -> dict | None:
        """How camera's tracker chose and kept the subject (for its tracks' meta["subject"]), once
        the take has ended; None before."""
        return self._workers[camera].subject_report

    def vmc_summary(self) -> dict | None:
        """What the VMC streamer did: frames handed over, sent, dropped as stale, failed, and the
        capture-to-sent latency of the frames sent (ms: median, 95th percentile, max)."""
        v = self.vmc
        if v is None:
            return None
        lat_ms = MS_PER_S * np.asarray(v.latency_s)
        latency = {k: round(float(f(lat_ms)), 1) if len(lat_ms) else None
                   for k, f in (("median", np.median), ("p95", lambda a: np.percentile(a, 95)), ("max", np.max))}
        return {"target": f"{v.sender.host}:{v.sender.port}", "frames_received": v.received,
                "frames_sent": v.sent, "dropped_stale": v.dropped, "errors": v.errors,
                "last_error": v.last_error, "smoothing": v.poser.smoother is not None,
                "body_solves": v.poser.body_solves, "body_held": v.poser.body_held,
                "body_solve_error": v.poser.body_error,
                "capture_to_sent_ms": latency}

    def stop(self) -> None:
        """Finish the group in hand, then stop the workers (frames still queued stay untracked)."""
        self._stop.set()
        self.inbox.close()
        if self._thread.is_alive():
            self._thread.join()
        for w in self._workers:
            w.submit(None)
        for w in self._workers:
            w.join(timeout=WORKER_JOIN_S)
        for c, w in enumerate(self._workers):
            self.stats[c].track_busy_s = w.busy_s
        if self.vmc is not None:
            self.vmc.close()
