"""Kinematics of the humanoid joint hierarchy, the one implementation every stage uses.

Frames and units: glTF model space, metres, Y up, the avatar facing +Z. A skeleton is given as
`parents` (J,) int (-1 for the root, parents before children) and `rest_local_m` (J, 3), each
joint's rest translation from its parent in the parent's rest frame (for the root, its position).
Every rest rotation is identity (the T-pose), so a joint's local rotation is directly its
rotation relative to the T-pose and

    G[j] = G[parent] * L[j],   p[j] = p[parent] + G[parent] (rest_local[j]),   p[root] = root.

Quaternions are xyzw (glTF and scipy order).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.core.mesh import SkinnedMesh
from pipeline.core.quaternions import normalise_quat, quat_apply, quat_multiply


def rest_world(parents, rest_local_m) -> np.ndarray:
    """(J, 3) float64 rest joint positions in model space."""
    rest_local = np.asarray(rest_local_m, np.float64)
    world = np.zeros_like(rest_local)
    for j, p in enumerate(parents):
        world[j] = rest_local[j] + (world[p] if p >= 0 else 0.0)
    return world


def forward_kinematics(parents, rest_local_m, local_xyzw: np.ndarray,
                       root_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (N, J, 3) float64 and global rotations (N, J, 4) xyzw of N frames of local
    rotations (N, J, 4) with the root joint at root_m (N, 3)."""
    glob = global_rotations(parents, local_xyzw)
    rest_local = np.asarray(rest_local_m, np.float64)
    pos = np.zeros(glob.shape[:2] + (3,))
    for j, p in enumerate(parents):
        pos[:, j] = root_m if p < 0 else pos[:, p] + quat_apply(glob[:, p], rest_local[j])
    return pos, glob


def global_rotations(parents, local_xyzw: np.ndarray) -> np.ndarray:
    """(N, J, 4) xyzw world rotations from local ones (N, J, 4) (normalised first)."""
    local = normalise_quat(local_xyzw)
    glob = np.empty_like(local)
    for j, p in enumerate(parents):
        glob[:, j] = local[:, j] if p < 0 else quat_multiply(glob[:, p], local[:, j])
    return glob


def joint_world_matrices(parents, rest_local_m, local_quats_xyzw, root_translation_m) -> np.ndarray:
    """(J, 4, 4) global joint transforms of one frame; the root joint's translation is
    root_translation_m (3,)."""
    rot = Rotation.from_quat(np.asarray(local_quats_xyzw, np.float64)).as_matrix()
    out = np.zeros((len(parents), 4, 4))
    for j, p in enumerate(parents):
        local = np.eye(4)
        local[:3, :3] = rot[j]
        local[:3, 3] = root_translation_m if p < 0 else rest_local_m[j]
        out[j] = local if p < 0 else out[p] @ local
    return out


def skin(part: SkinnedMesh, joint_world: np.ndarray, rest_world_m: np.ndarray,
         morph_weights: np.ndarray | None = None) -> np.ndarray:
    """(V, 3) posed positions of a mesh: morph targets, then linear blend skinning with the
    joints' global transforms (J, 4, 4). Rest rotations are identity, so the inverse bind
    matrix of joint j is a translation by -rest_world_m[j]."""
    p = part.positions.astype(np.float64)
    if part.targets is not None and morph_weights is not None:
        p = p + np.einsum("k,kvc->vc", np.asarray(morph_weights, np.float64), part.targets)
    skin_m = joint_world.copy()
    skin_m[:, :3, 3] -= np.einsum("jab,jb->ja", joint_world[:, :3, :3], rest_world_m)
    m = np.einsum("vk,vkab->vab", part.weights, skin_m[part.joints])
    return np.einsum("vab,vb->va", m[:, :3, :3], p) + m[:, :3, 3]
