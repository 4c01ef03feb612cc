"""Assemble the avatar from the stage artifacts: head mesh + face rig + skeleton + body mesh +
body motion + expression weights -> the meshes and take that `gltf_export` writes.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.body_solve import BodyMotion
from pipeline.gltf_export import Take
from pipeline.head_mesh import EYE_LEFT, EYE_RIGHT, HeadMesh
from pipeline.mesh import SkinnedMesh
from pipeline.skeleton import Skeleton
from pipeline.tracks import ARKIT_NAMES

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


def head_part(head: HeadMesh, deltas_m: np.ndarray, skel: Skeleton,
              texture: np.ndarray | None = None) -> SkinnedMesh:
    """The head in model space, skinned to head/neck and the eyeballs to the eye joints.
    texture: (S, S, 3) uint8 RGB base colour over head.uv (pipeline.head_texture); with it the
    head carries the image instead of its vertex colours."""
    origin = skel.rest_world_m[skel.index("head")] + skel.head_anchor_m
    V = len(head.positions_m)
    joints = np.zeros((V, 4), np.uint16)
    weights = np.zeros((V, 4), np.float32)
    nw = np.clip(head.neck_weight, 0.0, 1.0)
    joints[:, 0] = skel.index("head")
    joints[:, 1] = skel.index("neck")
    weights[:, 0] = 1.0 - nw
    weights[:, 1] = nw
    for region, joint in ((EYE_LEFT, "leftEye"), (EYE_RIGHT, "rightEye")):
        m = head.region == region
        joints[m] = (skel.index(joint), 0, 0, 0)
        weights[m] = (1.0, 0.0, 0.0, 0.0)
    joints[weights == 0] = 0  # unused slots point at joint 0 with weight 0
    return SkinnedMesh(name="Head", positions=(head.positions_m + origin).astype(np.float32),
                    normals=head.normals, triangles=head.triangles, joints=joints, weights=weights,
                    color=None if texture is not None else head.color, uv=head.uv,
                    targets=deltas_m.astype(np.float32), target_names=tuple(ARKIT_NAMES),
                    texture=texture)


def build_take(name: str, t_s: np.ndarray, duration_s: float, weights: np.ndarray,
               motion: BodyMotion, skel: Skeleton) -> Take:
    """Keys at the frame timestamps plus one closing key at the take's duration (holding the last
    frame), so the clip lasts exactly as long as the video."""
    rot = motion.local_rotations.astype(np.float32).copy()
    rot[:, [skel.index("leftEye"), skel.index("rightEye")]] = eye_rotations(weights)
    times = np.asarray(t_s, np.float64) - float(t_s[0])
    if duration_s > times[-1] + 1e-6:
        times = np.r_[times, duration_s]
        weights = np.vstack([weights, weights[-1:]])
        rot = np.concatenate([rot, rot[-1:]])
        root = np.vstack([motion.root_translation_m, motion.root_translation_m[-1:]])
    else:
        root = motion.root_translation_m
    return Take(name=name, times_s=times, morph_weights=weights, joint_rotations=rot,
                root_translation_m=root)

