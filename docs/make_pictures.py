"""Regenerate the README's pictures: `.venv/bin/python docs/make_pictures.py`.

Each sample is processed with `pipeline.process`; the contact sheet is drawn from the exported
avatar.glb with the tracked landmarks on a dark background instead of the video frames (the
footage belongs to others and is not committed here). With Blender installed (setup.sh installs
it for glbcheck), the face sample's avatar.glb is also rendered by Blender itself
(`docs/blender_render.py`): what a user sees after File > Import > glTF 2.0.
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
sys.path.insert(0, str(ROOT))

from pipeline.core.samples import fetch  # noqa: E402
from pipeline.core.tracks import Tracks  # noqa: E402
from pipeline.export.preview import contact_sheet  # noqa: E402
from pipeline.session.single_camera import process_video  # noqa: E402

PICTURES = {"wolfgang": "avatar_face.png", "p2s_cam01": "avatar_body.png"}
BLENDER_PICTURE = ("wolfgang", "avatar_blender.png", (3.0, 9.84, 13.1))  # sample, file, times (s)
SHEET_INSTANTS = 5  # columns of a contact sheet
SHEET_TILE_H_PX = 220  # height of each tile of a contact sheet
PNG_COMPRESSION = 9  # zlib level: smallest files for the repository


def blender_strip(glb: Path, times, out: Path) -> bool:
    """Blender's renders of the head at `times` (s) and of the body at the last, side by side."""
    exe = shutil.which("blender")
    if exe is None:
        print("blender not found: skipping", out.name)
        return False
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "r"
        subprocess.run([exe, "-b", "--factory-startup", "--python-exit-code", "1", "--python",
                        str(ROOT / "docs" / "blender_render.py"), "--", str(glb), str(prefix),
                        *map(str, times)], check=True, capture_output=True)
        tiles = [cv2.imread(f"{prefix}_head_{k}.png") for k in range(len(times))]
        tiles.append(cv2.imread(f"{prefix}_body_{len(times) - 1}.png"))
    cv2.imwrite(str(out), np.hstack(tiles), [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    print("wrote", out)
    return True


if __name__ == "__main__":
    for name, file in PICTURES.items():
        with tempfile.TemporaryDirectory() as tmp:
            process_video(fetch(name), tmp, progress=False)
            sheet = contact_sheet(lambda i: None, Tracks.load(Path(tmp) / "tracks.npz"),
                                  Path(tmp) / "avatar.glb", n=SHEET_INSTANTS, tile_h=SHEET_TILE_H_PX)
            cv2.imwrite(str(ROOT / "docs" / file), sheet, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
            print("wrote", ROOT / "docs" / file, sheet.shape)
            if name == BLENDER_PICTURE[0]:
                blender_strip(Path(tmp) / "avatar.glb", BLENDER_PICTURE[2], ROOT / "docs" / BLENDER_PICTURE[1])
