"""Assemble the avatar from the stage artifacts: head mesh + face rig + skeleton + body mesh +
body motion + expression weights -> the meshes and take that `pipeline.export.gltf` writes.

In: the head (`HeadMesh`, face frame, metres) and its morph deltas (51, V, 3) metres, the skeleton
(glTF model space, metres), the body motion, (N, 51) weights at the frame times (s). Out: the
head as a `SkinnedMesh` in model space; the `Take` (keys at the frame times plus a closing key).
"""
from __future__ import annotations

import numpy as np

from pipeline.body.skeleton import Skeleton
from pipeline.body.solve import BodyMotion
from pipeline.core.mesh import SkinnedMesh
from pipeline.core.tracks import ARKIT_NAMES
from pipeline.export.gltf import Take
from pipeline.face.head_layout import EYE_LEFT, EYE_RIGHT
from pipeline.face.head_mesh import HeadMesh
from pipeline.face.weights import eye_rotations

CLOSING_KEY_MIN_S = 1e-6  # s: a closing key is added when the duration ends later than this after the last frame


def head_part(head: HeadMesh, deltas_m: np.ndarray, skel: Skeleton,
              texture: np.ndarray | None = None) -> SkinnedMesh:
    """The head in model space, skinned to head/neck and the eyeballs to the eye joints.
    texture: (S, S, 3) uint8 RGB base colour over head.uv (pipeline.head_texture); with it the
    head carries the image instead of its vertex colours."""
    origin = skel.head_space_origin_m
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
    if duration_s > times[-1] + CLOSING_KEY_MIN_S:
        times = np.r_[times, duration_s]
        weights = np.vstack([weights, weights[-1:]])
        rot = np.concatenate([rot, rot[-1:]])
        root = np.vstack([motion.root_translation_m, motion.root_translation_m[-1:]])
    else:
        root = motion.root_translation_m
    return Take(name=name, times_s=times, morph_weights=weights, joint_rotations=rot,
                root_translation_m=root)

