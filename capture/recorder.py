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
import os
import queue
import shutil
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from capture import avi
from capture.sync import Frame
from pipeline.core.atomic import atomic_path, cause, write_text
from pipeline.core.errors import OutputError, PipelineError

JPEG_QUALITY = 90            # visually lossless for tracking; about 240 KB per 720p frame
SEGMENT_S = 2.0
MIN_FREE_START_BYTES = 1 << 30   # refuse to start a take with less free disk than this
MIN_FREE_BYTES = 256 << 20       # end the take when free space falls below this (room to finish)
MAX_QUEUE_BYTES = 512 << 20      # frames waiting for the encoder, per camera, before it drops
CSV_HEADER = "frame,segment,t_monotonic_s,t_take_s\n"
CSV_COLUMNS = 4


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
        self._csv.write(CSV_HEADER)

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
        """After `finish()`: make the timestamps and the segments agree (`reconcile`), join the
        segments into cam<i>.avi (unless too big for one AVI or the disk is too full, then the
        segments stay, with segments.ffconcat), list what is on disk. Never raises for a full
        disk: what could not be written is in the summary's `error`."""
        for p in self._seg_paths:
            if p.exists() and p.stat().st_size <= avi.HEADER_BYTES:
                p.unlink(missing_ok=True)  # a segment begun but holding no frame
        parts = reconcile(self.session, f"cam{self.camera}")
        segs = [p for p, _ in parts]
        fps = ((self.frames - 1) / (self._t_last - self._t_first)
               if self.frames > 1 and self._t_last > self._t_first else self.fps)
        total = sum(p.stat().st_size for p in segs)
        rel = lambda p: str(p.relative_to(self.session))  # noqa: E731
        s = RecordingSummary(self.camera, sum(n for _, n in parts), self.dropped, rel(self.csv_path), None,
                             [rel(p) for p in segs], len(self._seg_paths), total, round(fps, 3), self.error)
        if not segs:
            shutil.rmtree(self.seg_dir, ignore_errors=True)
            return s
        try:
            write_concat_list(self.seg_dir, segs)
        except OutputError as e:
            s.error = s.error or str(e)
        can_join = (join and total < avi.AVI_MAX_BYTES
                    and shutil.disk_usage(self.session).free > total + self.min_free_bytes)
        if can_join:
            dst = self.session / f"cam{self.camera}.avi"
            if join_parts(parts, dst, fps) is not None:
                s.video, s.bytes = rel(dst), dst.stat().st_size
                if not keep_segments:
                    shutil.rmtree(self.seg_dir, ignore_errors=True)
                    s.segments = []
        return s


def write_concat_list(seg_dir: Path, segs: list[Path]) -> None:
    """segments.ffconcat beside the segments, so that `ffmpeg -f concat` plays them as one;
    OutputError (one line) when it cannot be written."""
    write_text(seg_dir / "segments.ffconcat",
               "ffconcat version 1.0\n" + "".join(f"file '{p.name}'\n" for p in segs))


def join_parts(parts: list[tuple[Path, int]], dst: Path, fps: float | None = None) -> int | None:
    """Join the segments' frames that have timestamps (`reconcile`'s parts) into dst, written
    whole or not at all (a temporary file renamed into place); returns the frame count, or None
    when it cannot be written (the segments are then what stays)."""
    try:
        with atomic_path(dst) as tmp:
            n = avi.join([p for p, _ in parts], tmp, fps, [k for _, k in parts])
    except (OutputError, OSError, ValueError):
        return None
    return n if n == sum(k for _, k in parts) else None


def _csv_rows(data: bytes) -> tuple[list[int], list[int]]:
    """The whole rows of a timestamps CSV (bytes): each row's segment and the byte offset where
    the row ends. A last line cut short (a crash or a full disk while it was written) is left out."""
    segments, ends = [], []
    pos = data.find(b"\n") + 1  # after the header
    while pos > 0:
        nxt = data.find(b"\n", pos)
        if nxt < 0:
            break
        fields = data[pos:nxt].split(b",")
        try:
            if len(fields) != CSV_COLUMNS:
                break
            segments.append(int(fields[1]))
            [float(f) for f in fields[2:]]
        except ValueError:
            break
        ends.append(nxt + 1)
        pos = nxt + 1
    return segments, ends


def reconcile(session: Path, cam: str) -> list[tuple[Path, int]]:
    """Make a camera's timestamps (cam<i>_frames.csv) and its segments (cam<i>_segments/) agree
    after the take, a crash or a full disk, so that row k of the CSV is frame k of the joined
    video. A frame is written before its row, so a segment may hold a frame more than its rows
    (that frame, with no timestamp, is left out of the join); a row whose frame is not whole in
    its segment, or a last line cut short, is removed from the CSV (cut at the end: that needs no
    disk space). Returns [(segment, frames to take from its start)] in recording order, the
    segments with no frame left out."""
    csv_path = Path(session) / f"{cam}_frames.csv"
    seg_dir = Path(session) / f"{cam}_segments"
    data = csv_path.read_bytes() if csv_path.exists() else b""
    seg_of_row, ends = _csv_rows(data)
    have: dict[int, int] = {}
    for k in sorted(set(seg_of_row)):
        p = seg_dir / f"seg_{k:05d}.avi"
        have[k] = avi.scan(p).frames if p.exists() and p.stat().st_size > avi.HEADER_BYTES else 0
    keep, used = 0, dict.fromkeys(have, 0)
    for k in seg_of_row:  # rows in order; the first row without its frame ends what is kept
        if used[k] >= have[k]:
            break
        used[k] += 1
        keep += 1
    end = ends[keep - 1] if keep else (data.find(b"\n") + 1 if data else 0)
    if data and end < len(data):
        os.truncate(csv_path, end)
    return [(seg_dir / f"seg_{k:05d}.avi", n) for k, n in used.items() if n > 0]


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


def recover(session: Path, keep_segments: bool = True) -> list[RecordingSummary]:
    """After a crash (`kill -9`, power loss): each camera's segments and timestamps made to agree
    (`reconcile`) and joined into cam<i>.avi, whole (row k of cam<i>_frames.csv is frame k of
    it); the segments are removed unless keep_segments. A cam<i>.avi already there is kept when it
    holds every frame the timestamps list (the take was killed after joining), else made again.
    When a join cannot be written (full disk, too big for one AVI) the segments stay, with
    segments.ffconcat. Returns one RecordingSummary per camera (its `error` says what failed)."""
    session = Path(session)
    out = []
    for csv_path in sorted(session.glob("cam*_frames.csv")):
        cam = csv_path.name[: -len("_frames.csv")]
        seg_dir = session / f"{cam}_segments"
        dst = session / f"{cam}.avi"
        parts = reconcile(session, cam) if seg_dir.is_dir() else []
        rows = len(read_timestamps(csv_path)[0])
        s = RecordingSummary(int(cam[3:]), rows, 0, csv_path.name, None,
                             [str(p.relative_to(session)) for p, _ in parts], len(parts))
        t = read_timestamps(csv_path)[2]
        s.fps_measured = round((len(t) - 1) / (t[-1] - t[0]), 3) if len(t) > 1 and t[-1] > t[0] else 0.0
        done = dst.exists() and avi.scan(dst).frames == rows
        if not done and parts:
            total = sum(p.stat().st_size for p, _ in parts)
            if total >= avi.AVI_MAX_BYTES:
                s.error = f"{total >> 20} MB is too big for one AVI: the segments stay (segments.ffconcat)"
            elif join_parts(parts, dst, s.fps_measured or None) is None:
                s.error = f"cannot write {dst}: {_why_not(session)}"
            done = s.error is None
        if done:
            s.video, s.bytes = dst.name, dst.stat().st_size
            if not keep_segments:
                shutil.rmtree(seg_dir, ignore_errors=True)
                s.segments = []
        if s.segments:
            try:
                write_concat_list(seg_dir, [session / p for p in s.segments])
            except OutputError as e:
                s.error = s.error or str(e)
        out.append(s)
    return out


def _why_not(folder: Path) -> str:
    """A guess at why a file could not be written in folder: its free space, else unknown."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError as e:
        return cause(e)
    return f"only {free >> 20} MB free" if free < MIN_FREE_BYTES else "the write failed"


def read_timestamps(path: Path):
    """(frame, segment, t_monotonic_s, t_take_s) columns of a cam<i>_frames.csv as numpy arrays."""
    a = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    if a.size == 0:
        a = np.zeros((0, 4))
    return a[:, 0].astype(int), a[:, 1].astype(int), a[:, 2], a[:, 3]
