"""The tests' own reading of glTF accessors, with pygltflib and numpy only: an independent
reader of what pipeline.export writes."""
from __future__ import annotations

import numpy as np

COMPONENT_DTYPES = {5126: np.float32, 5125: np.uint32, 5123: np.uint16, 5121: np.uint8}
TYPE_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def read_accessor(gltf, index: int) -> np.ndarray:
    """Accessor `index` of a pygltflib.GLTF2 loaded from a .glb, as (count,) or (count, width)."""
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    width = TYPE_WIDTHS[acc.type]
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    arr = np.frombuffer(gltf.binary_blob(), COMPONENT_DTYPES[acc.componentType], acc.count * width, start)
    return arr.reshape(acc.count, width) if width > 1 else arr
