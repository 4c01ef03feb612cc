"""Draw docs/framing_before_after.png: for each common framing, a frame of a real clip and the
exported avatar's skeleton at that instant, before and after issue 12.

    .venv/bin/python docs/make_framing_pictures.py [--work ~/.cache/dhcap/bench_body]

It reads the sessions benchmarks/bench_body.py made (`<work>/before/<clip>`, `<work>/after/<clip>`):
avatar.glb read back and posed by forward kinematics (tests/framing_clips.py `read_motion`), drawn
as a stick figure from the front (the camera's view, X right, Y up) and from the side (Z right:
leaning toward the camera shows as leaning right), the floor (Y = 0) as a grey line, the subject's
left side blue, right side red. A take that ended with "no face and no person" (exit code 4)
draws no avatar. The clips are made by tests/framing_clips.py (never committed).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import framing_clips as fc  # noqa: E402

# (clip, frame, caption)
SHOTS = (
    ("face_noface", 40, "desk webcam"),
    ("face_noface", 110, "the cartoon after it (nobody)"),
    ("webcam_close_up", 40, "close-up face"),
    ("p2s_head_shoulders", 50, "head and shoulders"),
    ("p2s_seated", 50, "seated crop (head to mid-torso)"),
    ("p2s_half_body", 50, "half body"),
    ("s2d_seated", 14, "hands leaving the frame"),
    ("s2d_walk_in_out", 40, "walking in and out"),
    ("p2s_multi_cam03", 95, "back to the camera, two people"),
    ("screen_background", 30, "a person on a screen behind"),
    ("bigbuckbunny", 80, "cartoon rabbit (nobody)"),
)
PANEL = 160            # px: height of every panel
VIEW_M = 2.2           # metres of the avatar's world shown across a view's height
BG = (250, 250, 250)
LEFT, RIGHT, MID = (200, 90, 20), (30, 30, 210), (60, 60, 60)  # BGR


def _frame(clip: str, index: int) -> np.ndarray:
    """Frame `index` of a clip, scaled to PANEL px high."""
    cap = cv2.VideoCapture(str(fc.clip_path(clip)))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, img = cap.read()
    cap.release()
    img = img if ok else np.zeros((PANEL, PANEL, 3), np.uint8)
    return cv2.resize(img, (int(round(img.shape[1] * PANEL / img.shape[0])), PANEL), interpolation=cv2.INTER_AREA)


def _stick(m: fc.AvatarMotion | None, index: int, axis: int, note: str) -> np.ndarray:
    """One view (axis 0: front, X right; 2: side, Z right) of the avatar at frame `index`."""
    img = np.full((PANEL, PANEL, 3), BG, np.uint8)
    scale = PANEL / VIEW_M
    floor = PANEL - 12
    cv2.line(img, (0, floor), (PANEL, floor), (190, 190, 190), 1)
    if m is not None:
        i = min(index, len(m.t_s) - 1)
        pos = m.pos_m[i]
        centre = pos[m.index("hips"), axis]

        def px(p):
            return int(round(PANEL / 2 + (p[axis] - centre) * scale)), int(round(floor - p[1] * scale))
        for j, parent in enumerate(m.parents):
            if parent < 0 or m.names[j] in fc.EYE_JOINTS:
                continue
            name = m.names[j]
            colour = LEFT if name.startswith("left") else RIGHT if name.startswith("right") else MID
            cv2.line(img, px(pos[parent]), px(pos[j]), colour, 3, cv2.LINE_AA)
        cv2.circle(img, px(pos[m.index("head")] + [0, 0.1, 0]), int(0.1 * scale), MID, 2, cv2.LINE_AA)
    cv2.putText(img, note, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def _motion(session: Path) -> tuple[fc.AvatarMotion | None, str]:
    """The session's avatar, or None and why there is none."""
    if (session / "avatar.glb").is_file():
        return fc.read_motion(session), ""
    run = session / "run.json"
    code = json.loads(run.read_text())["exit_code"] if run.is_file() else "?"
    return None, f"exit {code}: no avatar"


def row(work: Path, clip: str, index: int, caption: str) -> np.ndarray:
    """One framing: the frame, then front and side views before and after."""
    frame = _frame(clip, index)
    cv2.putText(frame, caption, (5, PANEL - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(frame, caption, (5, PANEL - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    parts = [cv2.resize(frame, (int(PANEL * 16 / 9), PANEL)) if frame.shape[1] > PANEL * 16 / 9 else
             np.pad(frame, ((0, 0), (0, int(PANEL * 16 / 9) - frame.shape[1]), (0, 0)), constant_values=255)]
    for label in ("before", "after"):
        m, why = _motion(work / label / clip)
        parts += [_stick(m, index, 0, f"{label}: front {why}"), _stick(m, index, 2, f"{label}: side")]
    return np.hstack(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="docs/framing_before_after.png from bench_body's sessions")
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache" / "dhcap" / "bench_body")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "framing_before_after.png")
    a = ap.parse_args(argv)
    rows = [row(a.work, clip, index, caption) for clip, index, caption in SHOTS]
    sheet = np.vstack([np.pad(r, ((2, 2), (0, 0), (0, 0)), constant_values=255) for r in rows])
    cv2.imwrite(str(a.out), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
