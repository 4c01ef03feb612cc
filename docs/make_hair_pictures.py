"""Draw docs/face/hair.png: the hair chosen for real takes (issue 16), without their footage.

    .venv/bin/python docs/make_hair_pictures.py [--takes single_face wolfgang carphone]

One row per take: MediaPipe's person mask of a frame (grey) with the avatar's head drawn through
the camera posed by its joints, bald (red outline) and with its hair (green outline); the frame's
hair pixels' median colour beside the hair's colour (swatches); then the exported avatar.glb's
head rendered by Blender itself (Cycles, docs/blender_render.py) at the same instant. The takes
are processed with `pipeline.process`.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capture.video import frame_reader  # noqa: E402
from pipeline.body.hair_fit import hair_part, hair_pixels  # noqa: E402
from pipeline.body.silhouette import frame_view, pose_meshes, silhouette  # noqa: E402
from pipeline.core.colour import linear_to_srgb  # noqa: E402
from pipeline.core.samples import fetch  # noqa: E402
from pipeline.core.tracks import Tracks, fill_short_gaps  # noqa: E402
from pipeline.export.avatar import head_part  # noqa: E402
from pipeline.session.single_camera import process_video  # noqa: E402
from pipeline.session.stages import fit_body, fit_face  # noqa: E402

TILE = 320
OUT = ROOT / "docs" / "face" / "hair.png"


def _outline(img: np.ndarray, mask: np.ndarray, bgr) -> None:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(img, contours, -1, bgr, 2, cv2.LINE_AA)


def _square(img: np.ndarray, around: np.ndarray) -> np.ndarray:
    """A square crop of img around the mask's bounding box (1.6 times its size), TILE pixels."""
    ys, xs = np.nonzero(around)
    cy, cx, half = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2, int(0.8 * max(np.ptp(ys), np.ptp(xs)))
    pad = cv2.copyMakeBorder(img, half, half, half, half, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return cv2.resize(pad[cy:cy + 2 * half, cx:cx + 2 * half], (TILE, TILE))


def _swatches(seen: np.ndarray, fitted) -> np.ndarray:
    tile = np.full((TILE, TILE // 2, 3), 40, np.uint8)
    for row, (rgb, label) in enumerate(((seen, "frame"), (np.asarray(fitted), "hair"))):
        bgr = tuple(int(255 * c) for c in linear_to_srgb(np.clip(rgb, 0, 1))[::-1])
        y0 = 30 + row * 140
        cv2.rectangle(tile, (20, y0), (TILE // 2 - 20, y0 + 100), bgr, -1)
        cv2.putText(tile, label, (20, y0 + 122), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230, 230, 230), 1, cv2.LINE_AA)
    return tile


def _blender_head(glb: Path, t: float) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "r"
        subprocess.run([shutil.which("blender"), "-b", "--factory-startup", "--python-exit-code", "1", "--python",
                        str(ROOT / "docs" / "blender_render.py"), "--", str(glb), str(prefix), str(t)],
                       check=True, capture_output=True)
        return cv2.resize(cv2.imread(f"{prefix}_head_0.png"), (TILE, TILE))


def take_row(name: str, tmp: Path) -> np.ndarray:
    process_video(fetch(name), tmp, progress=False)
    tracks = fill_short_gaps(Tracks.load(tmp / "tracks.npz"))
    face = fit_face(tracks)
    with frame_reader(fetch(name)) as frame_at:
        body = fit_body(tracks, face, [(tracks, frame_at)])
        head = head_part(face.head, face.deltas_m, body.skel)
        hair = hair_part(body.hair.hair, body.skel)
        k = body.hair.frames[len(body.hair.frames) // 2]
        frame = frame_at(k)
        view = frame_view(frame, tracks, k, body.skel, body.motion, head)
        meshes = [body.mesh, *(g.mesh for g in body.clothes), head]
        seen = np.median(hair_pixels(view, frame, body.skel, body.motion, meshes, hair), axis=0)
    (head_p, hair_p), _ = pose_meshes(body.skel, body.motion, k, [head, hair])
    bald = silhouette(head_p, head.triangles, view.camera, frame.shape[:2])
    tris = np.vstack([hair.triangles, hair.triangles[:, ::-1]]).astype(np.int64)
    with_hair = bald | silhouette(hair_p, tris, view.camera, frame.shape[:2])
    img = np.where(view.person[..., None], 110, 20).astype(np.uint8).repeat(3, axis=2)
    _outline(img, bald, (60, 60, 230))
    _outline(img, with_hair, (60, 220, 60))
    tile = _square(img, view.head_area)
    cv2.putText(tile, f"{name}: {body.hair.style or 'bald'}", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                (240, 240, 240), 1, cv2.LINE_AA)
    render = _blender_head(tmp / "avatar.glb", float(tracks.t_s[k] - tracks.t_s[0]))
    return np.hstack([tile, _swatches(seen, body.hair.colour), render])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--takes", nargs="+", default=["single_face", "wolfgang", "carphone"])
    a = ap.parse_args()
    rows = []
    for name in a.takes:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(take_row(name, Path(tmp)))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(OUT), np.vstack(rows))
    print("wrote", OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
