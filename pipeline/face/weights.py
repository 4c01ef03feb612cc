"""The head's morph weights straight from MediaPipe's scores, and the eye rotations they imply.

In: MediaPipe blendshape scores (N, 52) (`_neutral` first) and face validity (N,), or morph
weights (N, 51) in ARKIT_NAMES order. Out: morph weights (N, 51) float32 in [0, 1]; eye
rotations (N, 2, 4) float32 xyzw quaternions of [leftEye, rightEye] relative to the head.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.core.tracks import ARKIT_NAMES

# Gaze range of a full eyeLook* score, degrees (ARKit's eye range is about +-30 / +-25).
EYE_YAW_DEG = 25.0
EYE_PITCH_DEG = 20.0


def morph_weights(blendshapes: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(N, 51) morph weights in [0,1] from MediaPipe's (N, 52) scores; frames without a face are
    neutral (all 0): nothing is invented for them."""
    w = np.clip(np.nan_to_num(blendshapes[:, 1:], nan=0.0), 0.0, 1.0)
    w[~np.asarray(valid, bool)] = 0.0
    return w.astype(np.float32)


def eye_rotations(weights: np.ndarray) -> np.ndarray:
    """(N, 2, 4) xyzw local rotations of [leftEye, rightEye] relative to the head from the
    eyeLook* weights (N, 51). Yaw about +Y (toward +X = the subject's left), pitch about -X (up)."""
    col = {n: weights[:, ARKIT_NAMES.index(n)] for n in ARKIT_NAMES if n.startswith("eyeLook")}
    out = np.zeros((len(weights), 2, 4), np.float32)
    for k, side in enumerate(("Left", "Right")):
        toward_left = col[f"eyeLookOut{side}"] - col[f"eyeLookIn{side}"]
        if side == "Right":
            toward_left = -toward_left  # the right eye looks out toward -X
        up = col[f"eyeLookUp{side}"] - col[f"eyeLookDown{side}"]
        rv = np.stack([-np.radians(EYE_PITCH_DEG) * up, np.radians(EYE_YAW_DEG) * toward_left,
                       np.zeros_like(up)], axis=1)
        out[:, k] = Rotation.from_euler("xyz", rv).as_quat()
    return out
