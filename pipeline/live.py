"""The live take: cameras -> every frame recorded, and the freshest group of frames tracked.

    camera thread (one per camera) --every frame--> recorder thread (one per camera)
                 \\--drop-oldest queue--> grouper -> freshest group -> tracker thread per camera

The tracker always takes the newest complete group and skips (counts) older ones, so a tracker
slower than the cameras lowers the tracked frame rate but never lets the capture-to-result latency
grow. One FaceBodyTracker per camera on its own thread: MediaPipe's inference runs outside the GIL,
so two cameras can use both cores (benchmarks/bench_capture.py measures how many this machine
really gives). The main thread only watches: stop conditions, preview or counters.
"""
from __future__ import annotations

import bisect
import os
import resource
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from capture.cameras import CameraReader, CameraSource, SourceInfo
from capture.recorder import RecordingError, RecordingSummary, SegmentRecorder
from capture.sync import DropOldestQueues, Frame, FrameGrouper, default_tolerance_s
from pipeline.tracks import ARKIT_NAMES, Tracks

FIRST_FRAME_TIMEOUT_S = 5.0  # a device may take a while to deliver its first frame
STATUS_WINDOW_S = 2.0        # live counters are over the last this many seconds


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


@dataclass
class CameraStats:
    tracked: int = 0
    face_frames: int = 0
    body_frames: int = 0
    dropped_unmatched: int = 0      # no frame of the other cameras within the tolerance
    dropped_busy: int = 0           # a newer group was ready when the tracker became free
    latency_s: list = field(default_factory=list)   # capture -> result, per tracked frame
    ready_t: list = field(default_factory=list)     # monotonic time each result was ready
    track_busy_s: float = 0.0       # wall time inside FaceBodyTracker.track (MediaPipe runs its
                                    # graphs on threads of its own, so thread CPU time would miss it)


class _TrackerWorker(threading.Thread):
    """One camera's FaceBodyTracker on its own thread."""

    _create_lock = threading.Lock()  # MediaPipe start-up redirects fd 2: one at a time

    def __init__(self, camera: int, size: tuple[int, int], t0_ref: list, max_side: int, done):
        super().__init__(name=f"tracker{camera}", daemon=True)
        self.camera = camera
        self._size = size
        self._t0 = t0_ref
        self._scale = min(1.0, max_side / max(size))
        self._jobs: list = []
        self._cond = threading.Condition()
        self._done = done
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.busy_s = 0.0

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
        from pipeline.tracking import FaceBodyTracker
        try:
            with self._create_lock:
                tracker = FaceBodyTracker()
                # the first inference initialises the graphs (hundreds of ms): not in the take
                tracker.track(self._small(np.zeros((self._size[1], self._size[0], 3), np.uint8)), 0.0)
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
                try:
                    r = tracker.track(self._small(f.image), f.t_s - self._t0[0])
                except Exception as e:  # one bad frame must not end the take
                    r, self.error = None, e
                t_ready = time.monotonic()
                self.busy_s += t_ready - c0
                self._done.put((f, r, t_ready))
        finally:
            tracker.close()


class LiveTracker:
    """The dispatcher thread: drains the drop-oldest queues, groups by time, tracks the freshest
    group on the per-camera workers, and keeps every result by (camera, frame number)."""

    def __init__(self, sizes: list[tuple[int, int]], tolerance_s: float, opts: LiveOptions):
        import queue
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
        self._workers = [_TrackerWorker(c, sizes[c], self.t0, opts.track_max_side, self._done) for c in range(n)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)
        self.lock = threading.Lock()
        self.vmc = None
        if opts.vmc is not None:
            from pipeline.vmc import LiveVMCStreamer, parse_target
            self.vmc = LiveVMCStreamer(*parse_target(opts.vmc), image_size=sizes[0])

    def load(self) -> None:
        """Start the workers and wait until both models of every camera are loaded."""
        for w in self._workers:
            w.start()
        for w in self._workers:
            w.ready.wait()
            if w.error is not None:
                raise w.error

    def start(self, t0: float) -> None:
        self.t0[0] = t0
        self._thread.start()

    def put(self, frame: Frame) -> None:
        self.inbox.put(frame.camera, frame)

    def _run(self):
        while not self._stop.is_set():
            for f in self.inbox.get_all(timeout=0.05):
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
                f, r, t_ready = self._done.get()
                self._record(f, r, t_ready)
            self.groups_tracked += 1

    def _record(self, f: Frame, r, t_ready: float):
        s = self.stats[f.camera]
        with self.lock:
            s.tracked += 1
            s.latency_s.append(t_ready - f.t_s)
            s.ready_t.append(t_ready)
            if r is not None:
                s.face_frames += r.face is not None
                s.body_frames += r.pose is not None
                self.results[f.camera][f.index] = r
            self.latest[f.camera] = (f, r)
        if self.vmc is not None and f.camera == 0 and r is not None:
            self.vmc.on_frame(r)  # never blocks: the streamer's own thread sends

    def vmc_summary(self) -> dict | None:
        """What the VMC streamer did: frames handed over, sent, dropped as stale, failed."""
        v = self.vmc
        if v is None:
            return None
        return {"target": f"{v.sender.host}:{v.sender.port}", "frames_received": v.received,
                "frames_sent": v.sent, "dropped_stale": v.dropped, "errors": v.errors,
                "last_error": v.last_error}

    def stop(self) -> None:
        """Finish the group in hand, then stop the workers (frames still queued stay untracked)."""
        self._stop.set()
        self.inbox.close()
        if self._thread.is_alive():
            self._thread.join()
        for w in self._workers:
            w.submit(None)
        for w in self._workers:
            w.join(timeout=10)
        for c, w in enumerate(self._workers):
            self.stats[c].track_busy_s = w.busy_s
        if self.vmc is not None:
            self.vmc.close()


@dataclass
class CameraTake:
    camera: int
    info: SourceInfo
    captured: int                 # frames the camera delivered
    dropped_queue: int            # dropped by the bounded queue before grouping
    stats: CameraStats
    recording: RecordingSummary
    rows: list                    # (camera frame number, t_monotonic_s) of every recorded frame
    results: dict                 # camera frame number -> FrameResult, for tracked frames
    ended: str | None = None      # why this camera stopped delivering, if it did
    ended_t_take_s: float | None = None


@dataclass
class TakeResult:
    session: Path
    started_utc: str
    t0: float
    duration_s: float
    reason: str
    end_camera: int | None
    error: str | None
    tolerance_s: float
    groups_formed: int
    groups_tracked: int
    cpu_s: float
    cameras: list[CameraTake]
    options: LiveOptions
    stop_t: float | None = None   # monotonic time the end was asked for
    vmc: dict | None = None       # VMC streaming counters when --vmc was given


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _window_stats(s: CameraStats, now: float, window: float) -> tuple[float, float, float]:
    """Tracked fps and latency median / p95 (ms) over the last `window` seconds."""
    k = bisect.bisect_left(s.ready_t, now - window)
    lat = s.latency_s[k:]
    if not lat:
        return 0.0, float("nan"), float("nan")
    return len(lat) / window, 1e3 * float(np.median(lat)), 1e3 * float(np.percentile(lat, 95))


def status_line(take: "LiveTake", now: float) -> str:
    parts = []
    window = min(STATUS_WINDOW_S, max(now - take.t0, 1e-3))
    for c, r in enumerate(take.readers):
        s = take.tracker.stats[c]
        with take.tracker.lock:
            fps_t, med, p95 = _window_stats(s, now, window)
        fps_c = (len(r.times) - bisect.bisect_left(r.times, now - window)) / window
        dropped = take.tracker.inbox.dropped[c] + s.dropped_unmatched + s.dropped_busy
        lat = f"{med:3.0f}/{p95:3.0f} ms" if np.isfinite(med) else "  -/  - ms"
        parts.append(f"cam{c} {fps_c:4.1f} fps, tracked {fps_t:4.1f}, dropped {dropped}, latency {lat}, "
                     f"rec {take.recorders[c].frames}")
    return f"{now - take.t0:6.1f} s | " + " | ".join(parts)


def compose_preview(latest: list, labels: list[str], status: str, tile_h: int = 360) -> np.ndarray:
    """Preview picture: each camera's last tracked frame with its landmarks, the strongest
    blendshapes of the first camera with a face, and the counters. BGR."""
    from pipeline.render import blendshape_bars, draw_landmarks
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
                           ARKIT_NAMES, size=(220, tile_h))
    top = np.hstack(tiles + [bars])
    strip = np.full((28, top.shape[1], 3), 24, np.uint8)
    cv2.putText(strip, status[: top.shape[1] // 7], (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (220, 220, 220), 1, cv2.LINE_AA)
    return np.vstack([top, strip])


class ConsoleMonitor:
    """Counters on one refreshing line (terminal) or a line every few seconds (log, pipe)."""

    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = 0.5 if self.tty else 1.0
        self._next = 0.0
        self._width = 0

    def update(self, take: "LiveTake", now: float) -> None:
        if self.quiet or now < self._next:
            return
        if self._next == 0.0:  # first call: the first counters once there is something to count
            self._next = take.t0 + 1.0
            return
        # a log gets a line a second for the first 10 s, then one every 5 s
        self._next = now + (self.every if self.tty or now - take.t0 < 10 else 5.0)
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

    def __init__(self, stop: StopRequest, stream=None, quiet: bool = False):
        super().__init__(stream, quiet)
        self.stop = stop
        self._next_frame = 0.0
        self._sized = False
        # resizable, aspect kept, without Qt's toolbar
        cv2.namedWindow(self.NAME, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)

    def update(self, take: "LiveTake", now: float) -> None:
        super().update(take, now)
        if now >= self._next_frame:
            self._next_frame = now + 1 / 25  # the preview does not need the cameras' rate
            with take.tracker.lock:
                latest = list(take.tracker.latest)
            labels = [f"cam{c}: {Path(take.infos[c].spec).name}" for c in range(len(latest))]
            img = compose_preview(latest, labels, status_line(take, now))
            if not self._sized:  # open at the picture's own size (Qt's default is 400x300)
                scale = min(1.0, 1600 / img.shape[1])
                cv2.resizeWindow(self.NAME, int(img.shape[1] * scale), int(img.shape[0] * scale))
                self._sized = True
            cv2.imshow(self.NAME, img)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            self.stop.request("stopped from the preview window")

    def close(self):
        super().close()
        cv2.destroyAllWindows()


def display_available() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class LiveTake:
    """Owns the threads of one take; `run()` blocks until the take ends and everything is closed."""

    def __init__(self, sources: list[CameraSource], session: Path, opts: LiveOptions, stop: StopRequest):
        self.sources = sources
        self.infos = [s.info for s in sources]
        self.session = Path(session)
        self.opts = opts
        self.stop = stop
        self.tolerance_s = opts.tolerance_s if opts.tolerance_s is not None else \
            default_tolerance_s([i.fps for i in self.infos])
        self.tracker = LiveTracker([(i.width, i.height) for i in self.infos], self.tolerance_s, opts)
        self.recorders: list[SegmentRecorder] = []
        self.readers = [CameraReader(c, src, self._deliver_to(c), opts.lost_after_s)
                        for c, src in enumerate(sources)]
        for r in self.readers:
            r.on_end = lambda r: self.stop.request(f"camera {r.camera} {r.ended}", r.camera)
        self.t0 = 0.0

    def load(self):
        """Live cameras start running (frames discarded), then the models load."""
        for r in self.readers:
            r.run_ahead()
        try:
            self.tracker.load()
        except BaseException:
            for r in self.readers:
                r.stop()
            raise

    def run(self, monitor=None) -> TakeResult:
        opts = self.opts
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.t0 = t0 = time.monotonic() + 0.05  # a little ahead, so every camera starts together
        try:
            self.recorders = [SegmentRecorder(c, self.session, i.width, i.height, i.fps, t0, opts.segment_s,
                                              opts.jpeg_quality) for c, i in enumerate(self.infos)]
        except OSError as e:
            for r in self.readers:
                r.stop()
            self.tracker.stop()
            raise RecordingError(f"cannot record in {self.session}: {e.strerror or e}") from None
        for rec in self.recorders:
            rec.on_error = lambda r: self.stop.request(f"recording failed: {r.error}", r.camera, r.error)
            rec.start()
        cpu0 = _cpu_s()
        self.tracker.start(t0)
        for r in self.readers:
            r.start_at(t0)
        try:
            self._watch(monitor)
        finally:
            t_end = time.monotonic()
            cpu = _cpu_s() - cpu0
            self._shutdown()
            if monitor is not None:
                monitor.close()
        takes = []
        for c, (r, rec) in enumerate(zip(self.readers, self.recorders)):
            summary = rec.summary(join=opts.join, keep_segments=opts.keep_segments)
            takes.append(CameraTake(
                c, self.infos[c], r.frames, self.tracker.inbox.dropped[c], self.tracker.stats[c], summary,
                rec.rows, self.tracker.results[c], r.ended,
                None if r.ended_t is None else round(r.ended_t - t0, 3)))
        return TakeResult(self.session, started, t0, round(t_end - t0, 3), self.stop.reason or "stopped",
                          self.stop.camera, self.stop.error, self.tolerance_s, self.tracker.grouper.formed,
                          self.tracker.groups_tracked, round(cpu, 3), takes, opts, self.stop.t,
                          self.tracker.vmc_summary())

    def _deliver_to(self, c: int):
        def deliver(f: Frame):  # frames flow only once run() has made the recorders
            self.recorders[c].put(f)  # every frame
            self.tracker.put(f)       # the tracker may drop
        return deliver

    def _watch(self, monitor):
        deadline = self.t0 + self.opts.seconds if self.opts.seconds else None
        while not self.stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                self.stop.request(f"time limit ({self.opts.seconds:g} s)")
                break
            for r in self.readers:
                last = r.last_t if r.last_t is not None else self.t0
                limit = self.opts.lost_after_s if r.last_t is not None else FIRST_FRAME_TIMEOUT_S
                if now - last > limit and r.ended is None:
                    self.stop.request(f"camera {r.camera} lost (no frame for {now - last:.1f} s)", r.camera)
            if monitor is not None:
                monitor.update(self, now)
            self.stop.event.wait(0.02 if isinstance(monitor, PreviewWindow) else 0.1)

    def _shutdown(self):
        for r in self.readers:
            r.stop()
        for r in self.readers:
            r.join(timeout=2.0)
        self.tracker.stop()
        for rec in self.recorders:
            rec.finish()


def build_tracks(take: CameraTake, t0: float) -> Tracks:
    """One camera's Tracks over every recorded frame: tracked frames hold their results, frames the
    live tracker skipped are invalid (NaN), like frames where MediaPipe found nothing."""
    n = len(take.rows)
    idx = np.array([i for i, _ in take.rows], int)
    t = np.array([t for _, t in take.rows], np.float64)
    fps = float(1.0 / np.median(np.diff(t))) if n >= 2 and np.median(np.diff(t)) > 0 else take.info.fps
    tr = Tracks.empty(n, fps, (take.info.width, take.info.height), take.info.spec)
    if n:
        tr.t_s = t - t[0]
        tr.duration_s = float(tr.t_s[-1] + 1.0 / fps)
    for k, i in enumerate(idx):
        r = take.results.get(int(i))
        if r is None:
            continue
        if r.face is not None:
            tr.face_valid[k] = True
            tr.face_landmarks[k] = r.face.landmarks
            tr.blendshapes[k] = r.face.blendshapes
            tr.face_matrix[k] = r.face.matrix
        if r.pose is not None:
            tr.pose_valid[k] = True
            tr.pose_image[k] = r.pose.image
            tr.pose_world_m[k] = r.pose.world_m
            tr.pose_visibility[k] = r.pose.visibility
    tr.meta = {"camera": take.camera, "live": True,
               "t_take_start_s": round(float(t[0] - t0), 6) if n else None,
               "tracked_frames": int(sum(1 for i in idx if int(i) in take.results)),
               "recording": take.recording.video or take.recording.segments}
    return tr
