"""Draw docs/body_model/avatar_vs_frames.png: the avatar's body (issue 15) beside the video.

    .venv/bin/python docs/make_body_pictures.py

For each take and instant, three tiles: the frame with MediaPipe's person mask outlined (white)
and the avatar drawn through the camera posed by its joints (pipeline.body.silhouette): the
mannequin before (red outline) and the Anny body with its clothes after (green outline); then the exported
avatar.glb rendered by Blender itself (Cycles, docs/blender_render.py, the whole body from the
front) at the same instant. The takes are processed with `pipeline.process`; the mannequin is the
one of benchmarks/bench_body_model.py's BEFORE_COMMIT.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "tests")]

import bench_body_model as bbm  # noqa: E402

from capture.video import frame_reader  # noqa: E402
from pipeline.body.silhouette import frame_view, pose_meshes, silhouette  # noqa: E402
from pipeline.core.tracks import Tracks  # noqa: E402
from pipeline.export.avatar import head_part  # noqa: E402
from pipeline.session.single_camera import process_video  # noqa: E402
from pipeline.session.stages import fit_body, fit_face  # noqa: E402

SHOTS = (("p2s_cam01", (10, 50, 90)), ("sports2d", (60, 110, 150)))  # take, frames
TILE_H = 360
OUTLINE_PX = 3
PERSON_BGR, BEFORE_BGR, AFTER_BGR = (255, 255, 255), (40, 40, 230), (60, 200, 60)
PNG_COMPRESSION = 9


def _outline(img: np.ndarray, mask: np.ndarray, bgr) -> None:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(img, contours, -1, bgr, OUTLINE_PX)


def _crop(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A square around the person, scaled to TILE_H."""
    ys, xs = np.nonzero(mask)
    cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
    half = int(0.6 * max(np.ptp(ys), np.ptp(xs))) + 1
    pad = cv2.copyMakeBorder(img, half, half, half, half, cv2.BORDER_CONSTANT)
    tile = pad[cy:cy + 2 * half, cx:cx + 2 * half]
    return cv2.resize(tile, (TILE_H, TILE_H), interpolation=cv2.INTER_AREA)


def _blender(glb: Path, times: list[float]) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "r"
        subprocess.run([shutil.which("blender"), "-b", "--factory-startup", "--python-exit-code", "1", "--python",
                        str(ROOT / "docs" / "blender_render.py"), "--", str(glb), str(prefix), *map(str, times)],
                       check=True, capture_output=True)
        return [cv2.resize(cv2.imread(f"{prefix}_body_{k}.png"), (TILE_H, TILE_H)) for k in range(len(times))]


def take_rows(name: str, frames: tuple[int, ...], old) -> list[np.ndarray]:
    path = bbm.video_path(name)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        process_video(path, tmp, progress=False)
        tracks = Tracks.load(Path(tmp) / "tracks.npz")
        face = fit_face(tracks)
        with frame_reader(path) as frame_at:
            body = fit_body(tracks, face, [(tracks, frame_at)])
            head = head_part(face.head, face.deltas_m, body.skel)
            before = old.build_body_mesh(body.skel)
            renders = _blender(Path(tmp) / "avatar.glb", [float(tracks.t_s[k] - tracks.t_s[0]) for k in frames])
            for k, render in zip(frames, renders):
                frame = frame_at(k).copy()
                view = frame_view(frame, tracks, k, body.skel, body.motion, head)
                for meshes, bgr in (([before], BEFORE_BGR), ([m for m, _ in body.parts()], AFTER_BGR)):
                    posed, _ = pose_meshes(body.skel, body.motion, k, [*meshes, head])
                    drawn = np.zeros(frame.shape[:2], bool)
                    for mesh, points in zip([*meshes, head], posed):
                        drawn |= silhouette(points, mesh.triangles, view.camera, frame.shape[:2])
                    _outline(frame, drawn, bgr)
                _outline(frame, view.person, PERSON_BGR)
                rows.append(np.hstack([_crop(frame, view.person), render]))
    return rows


if __name__ == "__main__":
    old = bbm.mannequin(bbm.BEFORE_COMMIT)
    rows = [row for name, frames in SHOTS for row in take_rows(name, frames, old)]
    half = (len(rows) + 1) // 2
    left, right = np.vstack(rows[:half]), np.vstack(rows[half:])
    out = ROOT / "docs" / "body_model" / "avatar_vs_frames.png"
    cv2.imwrite(str(out), np.hstack([left, right]), [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    print("wrote", out)
