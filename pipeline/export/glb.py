"""Plain-JSON access to binary glTF (.glb, .vrm, .vrma): read, build, prune and write.

Every glTF file of the project (avatar.glb, avatar.vrm, take.vrma) is handled here as its JSON
document (a dict) and its BIN chunk (bytes): `read_glb` / `write_glb` for files, `Builder` to lay
out the buffer views and accessors of a new document, `read_accessor` to get one back as a numpy
array, `without_animations` to drop an animation and the data only it used. Everything written
here is glTF 2.0 (checked by the Khronos validator in the tests); files are written atomically.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from pipeline.core.atomic import atomic_path

GLB_MAGIC = 0x46546C67  # "glTF"
GLB_VERSION = 2
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
HEADER_BYTES = 12  # magic, version, total length: uint32 each
CHUNK_HEADER_BYTES = 8  # chunk length, chunk type: uint32 each
ALIGNMENT = 4  # bytes: chunks and buffer views start on 4-byte boundaries (glTF 2.0 binary)
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
    if len(data) < HEADER_BYTES + CHUNK_HEADER_BYTES:
        raise ValueError(f"{path}: too short for a GLB file")
    magic, version, length = struct.unpack_from("<III", data, 0)
    if magic != GLB_MAGIC or version != GLB_VERSION:
        raise ValueError(f"{path}: not a binary glTF 2.0 file")
    off, doc, blob = HEADER_BYTES, None, b""
    while off + CHUNK_HEADER_BYTES <= min(length, len(data)):
        clen, ctype = struct.unpack_from("<II", data, off)
        start = off + CHUNK_HEADER_BYTES
        chunk = data[start:start + clen]
        if ctype == CHUNK_JSON:
            doc = json.loads(chunk.decode("utf-8"))
        elif ctype == CHUNK_BIN and not blob:
            blob = bytes(chunk)
        off = start + clen
    if doc is None:
        raise ValueError(f"{path}: GLB without a JSON chunk")
    return doc, blob


def glb_bytes(doc: dict, blob: bytes, *, ensure_ascii: bool = False, allow_nan: bool = True) -> bytes:
    """Serialise a glTF dict and its binary buffer as GLB (chunks padded to 4 bytes). The JSON is
    compact; ensure_ascii escapes non-ASCII characters, allow_nan=False refuses NaN / infinity
    (ValueError), as json.dumps does."""
    doc = dict(doc)
    if blob:
        doc["buffers"] = [{"byteLength": len(blob)}]
    else:
        doc.pop("buffers", None)
    js = json.dumps(doc, separators=(",", ":"), ensure_ascii=ensure_ascii, allow_nan=allow_nan).encode("utf-8")
    js += b" " * (-len(js) % ALIGNMENT)
    bin_ = bytes(blob) + b"\x00" * (-len(blob) % ALIGNMENT)
    total = HEADER_BYTES + CHUNK_HEADER_BYTES + len(js) + (CHUNK_HEADER_BYTES + len(bin_) if blob else 0)
    out = struct.pack("<III", GLB_MAGIC, GLB_VERSION, total) + struct.pack("<II", len(js), CHUNK_JSON) + js
    if blob:
        out += struct.pack("<II", len(bin_), CHUNK_BIN) + bin_
    return out


def write_glb(path: str | os.PathLike, doc: dict, blob: bytes, *, ensure_ascii: bool = False,
              allow_nan: bool = True) -> Path:
    """Write atomically: a crash or a full disk never leaves a truncated file at `path`.
    ensure_ascii, allow_nan: JSON options (see `glb_bytes`)."""
    data = glb_bytes(doc, blob, ensure_ascii=ensure_ascii, allow_nan=allow_nan)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


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
    """Accumulates buffer views and accessors for a new glTF document.

    doc: the document to fill (its "bufferViews" and "accessors" lists are added when missing;
    the caller's dict keeps its own key order); by default a new one with only its asset."""

    def __init__(self, generator: str = "dhcap", doc: dict | None = None):
        self.blob = bytearray()
        self.doc: dict = {"asset": {"version": "2.0", "generator": generator}} if doc is None else doc
        self.doc.setdefault("bufferViews", [])
        self.doc.setdefault("accessors", [])

    def view(self, data: bytes, target: int | None = None) -> int:
        """Append `data` as a new buffer view (4-byte aligned); its index."""
        self.blob += b"\x00" * (-len(self.blob) % ALIGNMENT)
        bv = {"buffer": 0, "byteOffset": len(self.blob), "byteLength": len(data)}
        if target is not None:
            bv["target"] = target
        self.blob += data
        self.doc["bufferViews"].append(bv)
        return len(self.doc["bufferViews"]) - 1

    def accessor(self, arr: np.ndarray, minmax: bool = False, target: int | None = None) -> int:
        """Append (count,) or (count, width) `arr` (float32, uint8, uint16 or uint32) as an accessor
        over its own buffer view; minmax adds its per-component "min" and "max". Its index."""
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
        """(the document, its binary buffer)."""
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
        new_blob += b"\x00" * (-len(new_blob) % ALIGNMENT)
        v["byteOffset"] = len(new_blob)
        new_blob += data
        views.append(v)
    for u in view_users:
        u["bufferView"] = view_map[u["bufferView"]]
    doc["accessors"], doc["bufferViews"] = accessors, views
    return doc, bytes(new_blob)
