"""Plain-JSON access to binary glTF (.glb, .vrm, .vrma): read, build, prune and write.

The engine exports (VRM 1.0, VRM Animation) add extensions that pygltflib does not model, so they
work on the glTF JSON as a dict and the BIN chunk as bytes. Everything written here is glTF 2.0
(checked by the Khronos validator in the tests); files are written atomically.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

GLB_MAGIC = 0x46546C67  # "glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
FLOAT, UNSIGNED_BYTE, UNSIGNED_SHORT, UNSIGNED_INT = 5126, 5121, 5123, 5125
_CTYPE = {np.dtype(np.float32): FLOAT, np.dtype(np.uint8): UNSIGNED_BYTE,
          np.dtype(np.uint16): UNSIGNED_SHORT, np.dtype(np.uint32): UNSIGNED_INT}
_DTYPE = {v: k for k, v in _CTYPE.items()}
_TYPE = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}
_WIDTH = {v: k for k, v in _TYPE.items()}


def read_glb(path: str | os.PathLike) -> tuple[dict, bytes]:
    """(glTF JSON as a dict, BIN chunk) of a .glb file. ValueError if it is not a GLB v2."""
    data = Path(path).read_bytes()
    if len(data) < 20:
        raise ValueError(f"{path}: too short for a GLB file")
    magic, version, length = struct.unpack_from("<III", data, 0)
    if magic != GLB_MAGIC or version != 2:
        raise ValueError(f"{path}: not a binary glTF 2.0 file")
    off, doc, blob = 12, None, b""
    while off + 8 <= min(length, len(data)):
        clen, ctype = struct.unpack_from("<II", data, off)
        chunk = data[off + 8:off + 8 + clen]
        if ctype == CHUNK_JSON:
            doc = json.loads(chunk.decode("utf-8"))
        elif ctype == CHUNK_BIN and not blob:
            blob = bytes(chunk)
        off += 8 + clen
    if doc is None:
        raise ValueError(f"{path}: GLB without a JSON chunk")
    return doc, blob


def glb_bytes(doc: dict, blob: bytes) -> bytes:
    """Serialise a glTF dict and its binary buffer as GLB (chunks padded to 4 bytes)."""
    doc = dict(doc)
    if blob:
        doc["buffers"] = [{"byteLength": len(blob)}]
    else:
        doc.pop("buffers", None)
    js = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    js += b" " * (-len(js) % 4)
    bin_ = bytes(blob) + b"\x00" * (-len(blob) % 4)
    total = 12 + 8 + len(js) + (8 + len(bin_) if blob else 0)
    out = struct.pack("<III", GLB_MAGIC, 2, total) + struct.pack("<II", len(js), CHUNK_JSON) + js
    if blob:
        out += struct.pack("<II", len(bin_), CHUNK_BIN) + bin_
    return out


def write_glb(path: str | os.PathLike, doc: dict, blob: bytes) -> Path:
    """Write atomically: a crash or a full disk never leaves a truncated file at `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_bytes(glb_bytes(doc, blob))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_accessor(doc: dict, blob: bytes, index: int) -> np.ndarray:
    """An accessor as a numpy array ((count,) or (count, width)); tightly packed views only."""
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = _DTYPE[acc["componentType"]]
    width = _WIDTH[acc["type"]]
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    arr = np.frombuffer(blob, dtype=dtype, count=acc["count"] * width, offset=start)
    return arr.reshape(acc["count"], width) if width > 1 else arr


class Builder:
    """Accumulates buffer views and accessors for a new glTF document."""

    def __init__(self, generator: str = "dhcap"):
        self.blob = bytearray()
        self.doc: dict = {"asset": {"version": "2.0", "generator": generator},
                          "bufferViews": [], "accessors": []}

    def view(self, data: bytes, target: int | None = None) -> int:
        self.blob += b"\x00" * (-len(self.blob) % 4)
        bv = {"buffer": 0, "byteOffset": len(self.blob), "byteLength": len(data)}
        if target is not None:
            bv["target"] = target
        self.blob += data
        self.doc["bufferViews"].append(bv)
        return len(self.doc["bufferViews"]) - 1

    def accessor(self, arr: np.ndarray, minmax: bool = False, target: int | None = None) -> int:
        arr = np.ascontiguousarray(arr)
        count = arr.shape[0]
        width = arr.shape[1] if arr.ndim > 1 else 1
        acc = {"bufferView": self.view(arr.tobytes(), target), "componentType": _CTYPE[arr.dtype],
               "count": int(count), "type": _TYPE[width]}
        if minmax:
            flat = arr.reshape(count, -1)
            cast = float if arr.dtype == np.float32 else int
            acc["min"] = [cast(v) for v in flat.min(axis=0)]
            acc["max"] = [cast(v) for v in flat.max(axis=0)]
        self.doc["accessors"].append(acc)
        return len(self.doc["accessors"]) - 1

    def finish(self) -> tuple[dict, bytes]:
        return self.doc, bytes(self.blob)


def _mesh_accessors(doc: dict):
    """Yield (container, key) pairs that hold an accessor index outside animations."""
    for mesh in doc.get("meshes", []):
        for prim in mesh.get("primitives", []):
            for k in prim.get("attributes", {}):
                yield prim["attributes"], k
            if "indices" in prim:
                yield prim, "indices"
            for tgt in prim.get("targets", []) or []:
                for k in tgt:
                    yield tgt, k
    for skin in doc.get("skins", []):
        if "inverseBindMatrices" in skin:
            yield skin, "inverseBindMatrices"


def without_animations(doc: dict, blob: bytes) -> tuple[dict, bytes]:
    """A copy of the document with its animations removed and the accessors, buffer views and
    bytes only they used dropped (indices remapped), so nothing unused is left in the file."""
    doc = json.loads(json.dumps(doc))
    doc.pop("animations", None)
    refs = list(_mesh_accessors(doc))
    used_acc = sorted({c[k] for c, k in refs})
    acc_map = {old: new for new, old in enumerate(used_acc)}
    for c, k in refs:
        c[k] = acc_map[c[k]]
    accessors = [doc["accessors"][i] for i in used_acc]
    view_users = [a for a in accessors if "bufferView" in a]
    view_users += [img for img in doc.get("images", []) if "bufferView" in img]
    used_views = sorted({u["bufferView"] for u in view_users})
    view_map = {old: new for new, old in enumerate(used_views)}
    new_blob = bytearray()
    views = []
    for old in used_views:
        v = dict(doc["bufferViews"][old])
        data = blob[v.get("byteOffset", 0):v.get("byteOffset", 0) + v["byteLength"]]
        new_blob += b"\x00" * (-len(new_blob) % 4)
        v["byteOffset"] = len(new_blob)
        new_blob += data
        views.append(v)
    for u in view_users:
        u["bufferView"] = view_map[u["bufferView"]]
    doc["accessors"], doc["bufferViews"] = accessors, views
    return doc, bytes(new_blob)
