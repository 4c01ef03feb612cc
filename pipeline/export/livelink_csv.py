"""Blendshapes of a take as a Live Link Face style CSV (the file Epic's Live Link Face app records,
read by Unreal's Live Link Face importer, MetaHuman Animator tooling, Blender and Maya add-ons).

Layout: one header row, then one row per video frame:
  Timecode         HH:MM:SS:FF.mmm from the start of the take: whole seconds, the frame within the
                   second at the rounded frame rate (FF), and the sub-frame fraction (.mmm).
  BlendShapeCount  61, as Live Link Face writes (52 shapes + 9 head / eye angles)
  EyeBlinkLeft ... TongueOut   the 52 ARKit shapes in Live Link Face's order and capitalisation,
                   values in [0, 1] (exactly the avatar's morph weights; TongueOut, which MediaPipe
                   does not estimate, is 0; frames without a face are 0, as in the avatar)
  HeadYaw HeadPitch HeadRoll   the head's rotation in the levelled world of the take, radians:
                   yaw about +Y (positive: the face turns toward the subject's left), pitch about
                   +X (positive: looking down), roll about +Z (positive: the head tilts toward the
                   subject's right shoulder)
  LeftEyeYaw ... RightEyeRoll  each eye relative to the head, same axes (roll is always 0)
Numbers are written with 9 significant digits, so the float32 weights of the .glb read back exactly.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.export.vrm_expressions import perfect_sync_name

LLF_SHAPES = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward",
    "jawRight", "jawLeft", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthRight",
    "mouthLeft", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft",
    "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
)
ANGLE_COLUMNS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                 "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
HEADER = ("Timecode", "BlendShapeCount") + tuple(perfect_sync_name(s) for s in LLF_SHAPES) + ANGLE_COLUMNS


def timecode(t_s: float, fps: float) -> str:
    """HH:MM:SS:FF.mmm of a time from the start of the take."""
    rate = max(1, int(round(fps)))
    frames_total = t_s * rate
    whole = int(np.floor(frames_total + 1e-6))
    sec, ff = divmod(whole, rate)
    sub = max(0.0, frames_total - whole)
    h, rem = divmod(sec, 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{s:02d}:{ff:02d}.{int(round(sub * 1000)) % 1000:03d}"


def yaw_pitch_roll(q_xyzw: np.ndarray) -> np.ndarray:
    """(N, 3) yaw, pitch, roll (radians) of rotations in the avatar's frame (Y up, faces +Z):
    intrinsic Y (yaw), X (pitch, positive = face down), Z (roll)."""
    return Rotation.from_quat(q_xyzw).as_euler("YXZ")


def write_llf_csv(path: str | os.PathLike, weights: np.ndarray, names, fps: float,
                  head_xyzw: np.ndarray | None = None, eyes_xyzw: np.ndarray | None = None) -> Path:
    """weights (N, K) with column names `names` (ARKit names; missing ARKit shapes are 0);
    head_xyzw (N, 4) global head rotation; eyes_xyzw (N, 2, 4) [left, right] relative to the head."""
    w = np.asarray(weights, np.float64)
    n = len(w)
    col = {nm: i for i, nm in enumerate(names)}
    shapes = np.zeros((n, len(LLF_SHAPES)))
    for k, s in enumerate(LLF_SHAPES):
        if s in col:
            shapes[:, k] = np.clip(w[:, col[s]], 0.0, 1.0)
    angles = np.zeros((n, 9))
    if head_xyzw is not None:
        angles[:, 0:3] = yaw_pitch_roll(head_xyzw)
    if eyes_xyzw is not None:
        for e in range(2):
            ypr = yaw_pitch_roll(eyes_xyzw[:, e])
            angles[:, 3 + 3 * e:5 + 3 * e] = ypr[:, :2]
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(HEADER)
            for i in range(n):
                wr.writerow([timecode(i / fps, fps), len(LLF_SHAPES) + 9]
                            + [f"{v:.9g}" for v in shapes[i]] + [f"{v:.9g}" for v in angles[i]])
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
