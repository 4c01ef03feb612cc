"""MediaPipe's canonical face mesh, read from `geometry_pipeline_metadata_landmarks.binarypb`
inside `face_landmarker.task`.

The file is a `GeometryPipelineMetadata` protobuf (mediapipe/tasks/cc/vision/face_geometry/proto):
  1: canonical_mesh (Mesh3d: 1 vertex_type, 2 primitive_type, 3 vertex_buffer float x,y,z,u,v
     per vertex, 4 index_buffer uint32 triangles)
  2: procrustes_landmark_basis (repeated {1: landmark_id, 2: weight})
  3: input_source
mediapipe 1.2 ships no protobuf runtime, so the few fields are decoded by hand here.
"""
from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pipeline.core.assets import FACE_MODEL, model_path

METADATA_MEMBER = "geometry_pipeline_metadata_landmarks.binarypb"


@dataclass(frozen=True)
class CanonicalFace:
    """The canonical face model, in MediaPipe's face space.

    vertices_m: (468, 3) float64, metres; +Y up, +Z out of the face, origin near the head centre.
                Vertex i is face landmark i (landmarks 468..477 are the irises, not in the mesh).
    uv:         (468, 2) float64, texture coordinates as loaded (u right, v down as in glTF: v=0 is the top
                of the image, the forehead near v=0.1, the chin near v=0.95).
    triangles:  (898, 3) int32, counter-clockwise seen from the front (normals point +Z).
    procrustes_ids, procrustes_weights: the landmarks and weights MediaPipe uses to fit the
                face transform; we use them for the same job (rigid alignment of landmarks).
    """

    vertices_m: np.ndarray
    uv: np.ndarray
    triangles: np.ndarray
    procrustes_ids: np.ndarray
    procrustes_weights: np.ndarray


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(buf: bytes):
    """Yield (field_number, value) for a protobuf message (wire types 0, 1, 2, 5)."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def _repeated_floats(items):
    out = []
    for wire, v in items:
        out.extend(struct.unpack(f"<{len(v) // 4}f", v) if wire in (2, 5) else [])
    return np.array(out, dtype=np.float64)


def _repeated_uints(items):
    out = []
    for wire, v in items:
        if wire == 0:
            out.append(v)
        else:  # packed
            i = 0
            while i < len(v):
                x, i = _varint(v, i)
                out.append(x)
    return np.array(out, dtype=np.int64)


def parse_geometry_metadata(buf: bytes) -> CanonicalFace:
    top = list(_fields(buf))
    mesh = [v for f, w, v in top if f == 1][0]
    mesh_fields = list(_fields(mesh))
    vb = _repeated_floats([(w, v) for f, w, v in mesh_fields if f == 3]).reshape(-1, 5)
    ib = _repeated_uints([(w, v) for f, w, v in mesh_fields if f == 4]).reshape(-1, 3)
    ids, weights = [], []
    for f, w, v in top:
        if f == 2:
            d = {ff: vv for ff, ww, vv in _fields(v)}
            ids.append(d.get(1, 0))
            weights.append(struct.unpack("<f", d[2])[0] if 2 in d else 0.0)
    return CanonicalFace(
        vertices_m=vb[:, :3] / 100.0,  # the model is stored in centimetres
        uv=vb[:, 3:5].copy(),
        triangles=ib.astype(np.int32),
        procrustes_ids=np.array(ids, dtype=np.int64),
        procrustes_weights=np.array(weights, dtype=np.float64),
    )


@lru_cache(maxsize=1)
def load_canonical_face() -> CanonicalFace:
    with zipfile.ZipFile(model_path(FACE_MODEL)) as z:
        return parse_geometry_metadata(z.read(METADATA_MEMBER))
