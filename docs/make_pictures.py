"""Regenerate the README's pictures: `.venv/bin/python docs/make_pictures.py`.

Each sample is processed with `pipeline.process`; the contact sheet is drawn from the exported
avatar.glb with the tracked landmarks on a dark background instead of the video frames (the
footage belongs to others and is not committed here).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.process import process_video  # noqa: E402
from pipeline.render import contact_sheet  # noqa: E402
from pipeline.samples import fetch  # noqa: E402
from pipeline.tracks import Tracks  # noqa: E402

PICTURES = {"wolfgang": "avatar_face.png", "p2s_cam01": "avatar_body.png"}

if __name__ == "__main__":
    for name, file in PICTURES.items():
        with tempfile.TemporaryDirectory() as tmp:
            process_video(fetch(name), tmp, progress=False)
            sheet = contact_sheet(lambda i: None, Tracks.load(Path(tmp) / "tracks.npz"),
                                  Path(tmp) / "avatar.glb", n=5, tile_h=220)
            cv2.imwrite(str(ROOT / "docs" / file), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
            print("wrote", ROOT / "docs" / file, sheet.shape)
