"""Calibrate cameras from recordings (or live cameras) of a board: intrinsics, extrinsics, floor.

    python -m pipeline.calibrate cam1.mp4 cam2.mp4 cam3.mp4 --board board.json --out calib.toml
    python -m pipeline.calibrate 0 2 --board board.json --seconds 90          # live cameras
    python -m pipeline.calibrate 'left*.jpg' 'right*.jpg' --board checkerboard:9x6:25mm
    python -m pipeline.calibrate int_cam01_img int_cam02_img --intrinsics-only --board checkerboard:4x7:60mm

Sources, all of one kind: video files of one take (started together: frame times are matched),
folders or glob patterns of images (matched by order after a natural sort), or camera indices.
How to record: first lay the board flat on the floor, printed side up, where every camera sees it,
for a second (that frame becomes the floor, Z = 0, Z up, `--floor auto`); then walk it around the
room, turning it toward the cameras, slowly (motion blur spoils corners), so that every camera sees
it across its whole image and, often, together with another camera. Live cameras are read one
after the other, not at the same instant: hold the board still for a moment in each place.

Writes the calibration in the anipose / Pose2Sim TOML format (see capture/calibration.py) and
<out>.report.json: per camera the views with the board, the reprojection error of its intrinsics
and of the bundle adjustment, its height above the floor; which cameras saw the board together.
Exit codes: 3 unreadable input, 6 calibration impossible (the message says what to record again).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from capture.board import BoardSpec, Detection, detect  # noqa: E402
from capture.calibration import Calibration, load_calibration, save_toml  # noqa: E402
from capture.rig_calibration import RigReport, calibrate_intrinsics, calibrate_rig  # noqa: E402
from pipeline.errors import InputError, PipelineError, interrupted, report  # noqa: E402

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_EVERY_S = 0.25


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
            from capture.video import probe
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
            self.count = int((seconds or 60.0) / every_s)

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
        from capture.cameras import CameraSource, CameraSpec
        srcs = [CameraSource(CameraSpec.parse(s)) for s in self.specs]
        try:
            for s in srcs:
                info = s.open()
                self.sizes.append((info.width, info.height))
            t_end = time.monotonic() + (self.seconds or 60.0)
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
    from tqdm import tqdm
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


def print_report(report: RigReport, calib: Calibration, sizes, file=None) -> None:
    file = file or sys.stdout
    head = f"{'camera':<12}{'size':>11}{'views':>7}{'intr. RMS':>11}{'BA RMS':>9}{'corners':>9}" \
           f"{'outliers':>10}{'height':>9}"
    print(head, file=file)
    for r, size in zip(report.cameras, sizes):
        def px(v):
            return f"{v:.2f} px" if v is not None and np.isfinite(v) else "-"
        h = f"{r.height_m:.2f} m" if np.isfinite(r.height_m) else "-"
        print(f"{r.name:<12}{f'{size[0]}x{size[1]}':>11}{r.views:>7}{px(r.intrinsic_rms_px):>11}"
              f"{px(r.rms_px):>9}{r.observations:>9}{r.outliers:>10}{h:>9}", file=file)
    if len(report.cameras) > 1 and np.isfinite(report.rms_px):
        print("frames where both cameras saw the board:", file=file)
        print(report.covisibility_table(), file=file)
    if np.isfinite(report.rms_px):
        print(f"bundle adjustment: {report.frames_used} frames, RMS {report.rms_px:.3f} px"
              + (f"; floor from frame {report.floor_frame}" if report.floor_frame is not None else
                 "; no floor: the world is the first camera's frame"), file=file)
    for w in report.warnings:
        print(f"warning: {w}", file=file)


def run(a) -> int:
    board = BoardSpec.parse(a.board)
    sources = Sources(a.sources, a.every, a.seconds)
    t0 = time.perf_counter()
    dets = collect(board, sources, progress=not a.quiet)
    sizes = sources.sizes
    intr = None
    if a.intrinsics:
        known = load_calibration(a.intrinsics)
        idx = known.match(sources.names)
        intr = [known.cameras[i] for i in idx]
    if a.intrinsics_only:
        cams = []
        from capture.rig_calibration import CameraReport
        reps = []
        for c, name in enumerate(sources.names):
            cam, used = calibrate_intrinsics(board, dets[c], sizes[c], name)
            cams.append(cam)
            reps.append(CameraReport(name, sum(d is not None for d in dets[c]), used, cam.error_px))
        calib = Calibration(cams, None, False, {"board": board.text(), "intrinsics_only": True})
        report = RigReport(reps, np.diag([r.views for r in reps]))
    else:
        floor = None if a.floor == "none" else ("auto" if a.floor == "auto" else int(a.floor))
        calib, report = calibrate_rig(board, dets, sizes, sources.names, intr, a.refine_intrinsics, floor,
                                      progress=None if a.quiet else (lambda s: print(f"... {s}", file=sys.stderr)))
    calib.metadata["dhcap_sources"] = [str(s) for s in a.sources]
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_toml(calib, out)
    rep_path = out.with_name(out.stem + ".report.json")
    rep = report.as_dict() | {"board": board.to_dict(), "sources": a.sources, "names": sources.names,
                              "frames": len(dets[0]) if dets else 0,
                              "seconds": round(time.perf_counter() - t0, 2)}
    rep_path.write_text(json.dumps(rep, indent=2))
    print_report(report, calib, sizes)
    print(f"wrote {out} (anipose / Pose2Sim TOML) and {rep_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pipeline.calibrate",
                                 description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:4]))
    ap.add_argument("sources", nargs="+", help="video files, image folders / glob patterns, or camera indices")
    ap.add_argument("--board", required=True,
                    help="board.json from python -m pipeline.board, or charuco:7x5:32mm:24mm[:DICT] "
                         "(squares), or checkerboard:9x6:25mm (inner corners)")
    ap.add_argument("--out", default="calib.toml", help="calibration file to write (default calib.toml)")
    ap.add_argument("--every", type=float, default=DEFAULT_EVERY_S,
                    help=f"videos and live cameras: look for the board every this many seconds "
                         f"(default {DEFAULT_EVERY_S})")
    ap.add_argument("--seconds", type=float, default=60.0, help="live cameras: record views this long "
                    "(Ctrl-C ends earlier); default 60")
    ap.add_argument("--floor", default="auto",
                    help="'auto' (the first frame where the most cameras see the board lies on the floor), "
                         "a frame-set number, or 'none' (world = first camera)")
    ap.add_argument("--intrinsics", help="calibration file whose intrinsics to keep (only the poses are solved)")
    ap.add_argument("--intrinsics-only", action="store_true",
                    help="calibrate each source on its own (unsynchronised views); no extrinsics")
    ap.add_argument("--refine-intrinsics", action="store_true",
                    help="let the bundle adjustment refine focal lengths, principal points and distortion")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        return run(a)
    except PipelineError as e:
        return report(e)
    except KeyboardInterrupt:
        return interrupted("no calibration written")


if __name__ == "__main__":
    sys.exit(main())
