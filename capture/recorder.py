"""Recording of every frame a camera delivers, in short MJPEG segments, on its own thread.

Per camera, in the session folder:
  cam<i>_segments/seg_00000.avi ...  written during the take, `segment_s` seconds each; a crash
                                     loses at most the frame being written (see capture/avi.py)
  cam<i>_frames.csv                  one row per recorded frame, appended and flushed as it is
                                     written: frame, segment, t_monotonic_s, t_take_s
  cam<i>.avi                         at the end, the segments joined by copying their JPEG bytes
                                     (no re-encoding); the segments are then removed. A recording
                                     over 4 GiB (one AVI's limit) keeps its segments instead, with
                                     segments.ffconcat to join them (`ffmpeg -f concat`)

Row k of the CSV is frame k of the joined video; `frame` is the camera's frame number, equal to k
unless the recorder had to drop frames (its queue is bounded in bytes; the manifest reports drops).
The recorder is fed by the camera thread, never by the tracker: tracking may skip frames, the
recording does not.
"""
from __future__ import annotations

import contextlib
import queue
import shutil
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from capture import avi
from capture.sync import Frame
from pipeline.core.errors import PipelineError

JPEG_QUALITY = 90            # visually lossless for tracking; about 240 KB per 720p frame
SEGMENT_S = 2.0
MIN_FREE_START_BYTES = 1 << 30   # refuse to start a take with less free disk than this
MIN_FREE_BYTES = 256 << 20       # end the take when free space falls below this (room to finish)
MAX_QUEUE_BYTES = 512 << 20      # frames waiting for the encoder, per camera, before it drops


class RecordingError(PipelineError):
    """The recording could not be written (disk full, folder not writable); what was recorded is kept."""

    exit_code = 6


def check_free_space(folder: Path, need: int = MIN_FREE_START_BYTES) -> int:
    free = shutil.disk_usage(folder).free
    if free < need:
        raise RecordingError(f"only {free >> 20} MB free in {folder}; a take needs at least "
                             f"{need >> 20} MB")
    return free


@dataclass
class RecordingSummary:
    camera: int
    frames: int                  # frames written to the recording
    dropped: int                 # frames the recorder could not keep (its queue overflowed)
    timestamps: str              # CSV, relative to the session folder
    video: str | None            # the joined recording, or None (then see segments)
    segments: list[str] = field(default_factory=list)  # segment files still on disk
    segments_written: int = 0
    bytes: int = 0
    fps_measured: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class SegmentRecorder(threading.Thread):
    """`put(frame)` from the camera thread (never blocks); `finish()` drains, closes and joins."""

    def __init__(self, camera: int, session: Path, width: int, height: int, fps: float, t0: float,
                 segment_s: float = SEGMENT_S, jpeg_quality: int = JPEG_QUALITY,
                 max_queue_bytes: int = MAX_QUEUE_BYTES, min_free_bytes: int = MIN_FREE_BYTES):
        super().__init__(name=f"recorder{camera}")
        self.camera = camera
        self.session = Path(session)
        self.seg_dir = self.session / f"cam{camera}_segments"
        self.csv_path = self.session / f"cam{camera}_frames.csv"
        self.size = (int(width), int(height))
        self.fps = float(fps)
        self.t0 = t0
        self.segment_s = segment_s
        self.min_free_bytes = min_free_bytes
        self._params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queued_bytes = 0
        self._max_queue_bytes = max_queue_bytes
        self.frames = 0
        self.dropped = 0
        self.error: str | None = None
        self.on_error = None  # callback(recorder) when writing fails
        self._seg: avi.MjpegAviWriter | None = None
        self._seg_t0 = self._seg_t1 = 0.0
        self._seg_paths: list[Path] = []
        self._t_first = self._t_last = None
        self.rows: list[tuple[int, float]] = []  # (camera frame number, t_monotonic_s) per recorded frame
        self.seg_dir.mkdir(parents=True, exist_ok=True)
        self._csv = open(self.csv_path, "w", buffering=1)
        self._csv.write("frame,segment,t_monotonic_s,t_take_s\n")

    def put(self, frame: Frame) -> None:
        n = frame.image.nbytes
        with self._lock:
            if self.error is not None or self._queued_bytes + n > self._max_queue_bytes:
                self.dropped += 1
                return
            self._queued_bytes += n
        self._q.put(frame)

    def finish(self) -> None:
        """Write what is queued, then stop the thread (call once the camera has stopped)."""
        self._q.put(None)
        if self.is_alive():
            self.join()

    def run(self):
        while True:
            f = self._q.get()
            if f is None:
                break
            with self._lock:
                self._queued_bytes -= f.image.nbytes
            if self.error is None:
                self._write(f)
            else:
                with self._lock:
                    self.dropped += 1
        self._close_segment()
        with contextlib.suppress(OSError):
            self._csv.close()

    def _write(self, f: Frame):
        path = None
        try:
            if self._seg is None or f.t_s - self._seg_t0 >= self.segment_s:
                self._close_segment()
                free = shutil.disk_usage(self.session).free
                if free < self.min_free_bytes:
                    raise OSError(28, f"disk almost full ({free >> 20} MB left)")
                path = self.seg_dir / f"seg_{len(self._seg_paths):05d}.avi"
                self._seg = avi.MjpegAviWriter(path, *self.size, self.fps)
                self._seg_paths.append(path)
                self._seg_t0 = f.t_s
            path = self._seg.path
            ok, jpeg = cv2.imencode(".jpg", f.image, self._params)
            if not ok:
                raise OSError(0, "JPEG encoding failed")
            self._seg.write_jpeg(jpeg)
            self._seg_t1 = f.t_s
            path = self.csv_path
            self._csv.write(f"{f.index},{len(self._seg_paths) - 1},{f.t_s:.6f},{f.t_s - self.t0:.6f}\n")
            self.frames += 1
            self.rows.append((f.index, f.t_s))
            self._t_first = f.t_s if self._t_first is None else self._t_first
            self._t_last = f.t_s
        except OSError as e:
            where = path or self.seg_dir
            self.error = f"cannot write {where}: {e.strerror or e}"
            if self._seg is not None:
                self._seg.abandon()  # as a crash would leave it: still playable
                self._seg = None
            if self.on_error is not None:
                self.on_error(self)

    def _close_segment(self):
        if self._seg is None:
            return
        seg, self._seg = self._seg, None
        span = self._seg_t1 - self._seg_t0
        fps = (seg.frames - 1) / span if seg.frames > 1 and span > 0 else None  # measured, for the header
        try:
            seg.close(fps)
        except OSError as e:
            self.error = self.error or f"cannot write {seg.path}: {e.strerror or e}"

    def summary(self, join: bool = True, keep_segments: bool = False) -> RecordingSummary:
        """After `finish()`: join the segments into cam<i>.avi (unless too big for one AVI or the
        disk is too full, then the segments stay), list what is on disk."""
        segs = [p for p in self._seg_paths if p.exists() and p.stat().st_size > avi.HEADER_BYTES]
        for p in self._seg_paths:
            if p not in segs:
                p.unlink(missing_ok=True)
        fps = ((self.frames - 1) / (self._t_last - self._t_first)
               if self.frames > 1 and self._t_last > self._t_first else self.fps)
        total = sum(p.stat().st_size for p in segs)
        rel = lambda p: str(p.relative_to(self.session))  # noqa: E731
        s = RecordingSummary(self.camera, self.frames, self.dropped, rel(self.csv_path), None,
                             [rel(p) for p in segs], len(self._seg_paths), total, round(fps, 3), self.error)
        if segs:
            (self.seg_dir / "segments.ffconcat").write_text(
                "ffconcat version 1.0\n" + "".join(f"file '{p.name}'\n" for p in segs))
        can_join = (join and segs and total < avi.AVI_MAX_BYTES
                    and shutil.disk_usage(self.session).free > total + self.min_free_bytes)
        if can_join:
            dst = self.session / f"cam{self.camera}.avi"
            try:
                n = avi.join(segs, dst, fps)
            except OSError:
                n = -1
            if n == sum(avi.scan(p).frames for p in segs):
                s.video, s.bytes = rel(dst), dst.stat().st_size
                if not keep_segments:
                    shutil.rmtree(self.seg_dir, ignore_errors=True)
                    s.segments = []
        elif not segs:
            shutil.rmtree(self.seg_dir, ignore_errors=True)
        return s


class RecordingReader:
    """Random access to the frames of a recording (joined file or segments), by frame number."""

    def __init__(self, session: Path, summary: RecordingSummary):
        files = [summary.video] if summary.video else summary.segments
        self._chunks: list[tuple[Path, tuple[int, int]]] = []
        for name in files:
            p = Path(session) / name
            self._chunks += [(p, c) for c in avi.scan(p).chunks]
        self._files: dict[Path, object] = {}

    def __len__(self) -> int:
        return len(self._chunks)

    def frame_at(self, i: int):
        if not 0 <= i < len(self._chunks):
            return None
        p, c = self._chunks[i]
        if p not in self._files:
            self._files[p] = open(p, "rb")
        return avi.decode(avi.read_jpeg(self._files[p], c))

    def close(self):
        for f in self._files.values():
            f.close()
        self._files.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def recover(session: Path) -> list[Path]:
    """After a crash: join each camera's leftover segments into cam<i>.avi (segments are kept)."""
    out = []
    for seg_dir in sorted(Path(session).glob("cam*_segments")):
        cam = seg_dir.name[: -len("_segments")]
        segs = sorted(p for p in seg_dir.glob("seg_*.avi") if p.stat().st_size > avi.HEADER_BYTES)
        dst = Path(session) / f"{cam}.avi"
        if segs and not dst.exists():
            avi.join(segs, dst)
            out.append(dst)
    return out


def read_timestamps(path: Path):
    """(frame, segment, t_monotonic_s, t_take_s) columns of a cam<i>_frames.csv as numpy arrays."""
    a = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    if a.size == 0:
        a = np.zeros((0, 4))
    return a[:, 0].astype(int), a[:, 1].astype(int), a[:, 2], a[:, 3]
