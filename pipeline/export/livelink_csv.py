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

from pipeline.body.kinematics import global_rotations
from pipeline.core.atomic import atomic_path
from pipeline.export.session_take import EngineOptions, SessionTake
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
ROTATION_COLUMNS = 3  # yaw, pitch, roll of the head, then of each eye
EYE_ANGLES = 2  # yaw, pitch of each eye (its roll column stays 0)
FRAME_EPS = 1e-6  # frames: a time this close below a frame boundary counts as that frame
SECONDS_PER_HOUR, SECONDS_PER_MINUTE, MS_PER_SECOND = 3600, 60, 1000


def timecode(t_s: float, fps: float) -> str:
    """HH:MM:SS:FF.mmm of a time from the start of the take."""
    rate = max(1, int(round(fps)))
    frames_total = t_s * rate
    whole = int(np.floor(frames_total + FRAME_EPS))
    sec, ff = divmod(whole, rate)
    sub = max(0.0, frames_total - whole)
    h, rem = divmod(sec, SECONDS_PER_HOUR)
    m, s = divmod(rem, SECONDS_PER_MINUTE)
    ms = int(round(sub * MS_PER_SECOND)) % MS_PER_SECOND
    return f"{h:02d}:{m:02d}:{s:02d}:{ff:02d}.{ms:03d}"


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
    angles = np.zeros((n, len(ANGLE_COLUMNS)))  # head, left eye, right eye
    if head_xyzw is not None:
        angles[:, 0:ROTATION_COLUMNS] = yaw_pitch_roll(head_xyzw)
    if eyes_xyzw is not None:
        for e in range(2):
            first = ROTATION_COLUMNS * (1 + e)
            angles[:, first:first + EYE_ANGLES] = yaw_pitch_roll(eyes_xyzw[:, e])[:, :EYE_ANGLES]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(HEADER)
            for i in range(n):
                wr.writerow([timecode(i / fps, fps), len(LLF_SHAPES) + len(ANGLE_COLUMNS)]
                            + [f"{v:.9g}" for v in shapes[i]] + [f"{v:.9g}" for v in angles[i]])
    return Path(path)


def write_session_csv(st: SessionTake, out: Path, options: EngineOptions | None = None) -> Path:
    """The engine format "csv": the take's weights at every video frame, the head's global
    rotation and the eyes' rotations relative to it (no options)."""
    w, rot, _ = st.sample()
    head = global_rotations(st.parents, rot)[:, st.index("head")]
    eyes = rot[:, [st.index("leftEye"), st.index("rightEye")]]
    return write_llf_csv(out, w, st.target_names, st.fps, head, eyes)
