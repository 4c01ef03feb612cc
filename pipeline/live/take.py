"""The live take: cameras -> every frame recorded, and the freshest group of frames tracked.

    camera thread (one per camera) --every frame--> recorder thread (one per camera)
                 \\--drop-oldest queue--> grouper -> freshest group -> tracker thread per camera

The tracker always takes the newest complete group and skips (counts) older ones, so a tracker
slower than the cameras lowers the tracked frame rate but never lets the capture-to-result latency
grow. One FaceBodyTracker per camera on its own thread: MediaPipe's inference runs outside the GIL,
so two cameras can use both cores (benchmarks/bench_capture.py measures how many this machine
really gives). The main thread only watches: stop conditions, and a monitor's preview or counters
(pipeline.live.monitor, anything with `update(take, now)` and `close()`).

`LiveTake(sources, session, options, stop).run(monitor)` records and tracks until `stop` is
requested and returns a `TakeResult` (one `CameraTake` per camera); `build_tracks` turns a
camera's live results into `Tracks` over every recorded frame.
"""
from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from capture.cameras import CameraReader, CameraSource, SourceInfo
from capture.recorder import RecordingError, RecordingSummary, SegmentRecorder
from capture.sync import Frame, default_tolerance_s
from pipeline.core.tracks import Tracks
from pipeline.live.options import LiveOptions, StopRequest
from pipeline.live.tracker import CameraStats, LiveTracker
from pipeline.tracking.tracker import store_result

FIRST_FRAME_TIMEOUT_S = 5.0  # a device may take a while to deliver its first frame
START_AHEAD_S = 0.05         # the take starts this far ahead of now, so every camera starts together
READER_JOIN_S = 2.0          # how long the end of a take waits for each camera thread


@dataclass
class CameraTake:
    """What one camera delivered, recorded and tracked during the take (times: time.monotonic s)."""

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
    """The whole take: when and why it ended, grouping and CPU figures, every camera's CameraTake."""

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
    """CPU seconds (user + system) of this process so far, every thread included."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


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
        """Record and track from now until the stop is requested; every thread is closed and every
        recording finished (joined) before it returns."""
        opts = self.opts
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.t0 = t0 = time.monotonic() + START_AHEAD_S
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
            self.stop.event.wait(getattr(monitor, "poll_s", 0.1))

    def _shutdown(self):
        for r in self.readers:
            r.stop()
        for r in self.readers:
            r.join(timeout=READER_JOIN_S)
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
        store_result(tr, k, take.results.get(int(i)))
    tr.meta = {"camera": take.camera, "live": True,
               "t_take_start_s": round(float(t[0] - t0), 6) if n else None,
               "tracked_frames": int(sum(1 for i in idx if int(i) in take.results)),
               "recording": take.recording.video or take.recording.segments}
    return tr
