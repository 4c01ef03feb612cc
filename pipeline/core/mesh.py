"""The mesh artifact shared by the body, head, export and render stages."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(eq=False)
class SkinnedMesh:
    """A triangle mesh bound to a skeleton, in the skeleton's rest (bind) model space: glTF,
    metres, Y up, the avatar facing +Z.

    name:      mesh name.
    positions: (V, 3) float32, rest pose, metres.
    normals:   (V, 3) float32, unit length.
    triangles: (F, 3) uint32, counter-clockwise seen from outside (outward normals).
    joints:    (V, 4) uint16, skeleton joint indices; unused slots are 0 with weight 0.
    weights:   (V, 4) float32, each row sums to 1.
    uv:        (V, 2) float32 or None, v = 0 at the top of the texture.
    color:     (V, 4) float32 linear RGBA, or None.
    targets:   (K, V, 3) float32 morph target POSITION deltas, or None; target_names: K names.
    texture:   (S, S, 3) uint8 RGB (sRGB) base colour texture over `uv`, or None. A textured
               mesh gets its own material with the image as baseColorTexture (and no COLOR_0,
               which glTF would multiply into it). (S, S, 4) RGBA: its alpha cuts the surface
               out and both sides are drawn (hair).
    """

    name: str
    positions: np.ndarray
    normals: np.ndarray
    triangles: np.ndarray
    joints: np.ndarray
    weights: np.ndarray
    uv: np.ndarray | None = None
    color: np.ndarray | None = None
    targets: np.ndarray | None = None
    target_names: tuple[str, ...] = ()
    texture: np.ndarray | None = None

    @property
    def n_vertices(self) -> int:
        return len(self.positions)


def welded_vertex_normals(pos: np.ndarray, tris: np.ndarray, weld: np.ndarray) -> np.ndarray:
    """(V, 3) float32 area-weighted unit vertex normals; vertices with the same weld id share one
    normal."""
    p = pos.astype(np.float64)
    face_normals = np.cross(p[tris[:, 1]] - p[tris[:, 0]], p[tris[:, 2]] - p[tris[:, 0]])
    acc = np.zeros_like(p)
    for k in range(3):
        np.add.at(acc, weld[tris[:, k]], face_normals)
    n = acc[weld]
    return (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)).astype(np.float32)
