"""glTF 2.0 binary (.glb) export of the avatar: skeleton, skinned body, skinned head with ARKit
morph targets, and one animation of the take; and the reader that gets all of it back.

In: joint names (J,), parents (J,) int (-1 for the root), rest translations (J, 3) metres, the
meshes (`SkinnedMesh`, rest pose, metres), the take (`Take`). Out: the glTF document as a dict and
its binary buffer (`build_gltf`, laid out with `glb.Builder`), written by `write_glb`; `read_avatar`
returns the same five things from a written file.

Layout of the file (what Blender, three.js and Unity's importers expect of a humanoid):
  scene roots:  "Body" (skinned mesh), "Head" (skinned mesh with morph targets), "hips" (root joint)
  skin:         one skin over all humanoid joints (VRM/Unity names), rest pose = bind pose (T-pose)
  head mesh:    one primitive; mesh.extras.targetNames = the 51 ARKit names, dense POSITION targets
  materials:    "Skin" (vertex colours, COLOR_0) for untextured meshes; a textured mesh gets its own
                material "<name>Skin" whose baseColorTexture is the embedded image (JPEG or PNG in a
                bufferView, linear mipmapped sampler, clamped), without COLOR_0
  animation:    one, LINEAR: weights of "Head", rotation of every joint, translation of "hips"
Frames: glTF's (Y up, metres, right-handed, the avatar faces +Z).

The JSON is spelled as the avatar files have always been (they were first written with pygltflib):
keys in the same order, accessors with their default byteOffset 0 and normalized false spelled
out, no null or empty values, non-ASCII characters escaped, NaN refused.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.body.kinematics import rest_world
from pipeline.core.colour import sample_uv, srgb_to_linear
from pipeline.core.mesh import SkinnedMesh
from pipeline.export import glb
from pipeline.export.glb import ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER

TEXTURE_FORMATS = ("jpeg", "png")
JPEG_QUALITY = 95  # OpenCV quality 0-100: the texture's detail without visible blocks
PNG_COMPRESSION = 6  # OpenCV zlib level 0-9 (lossless either way): OpenCV's default speed/size trade-off
SKIN_ROUGHNESS = 0.7  # glTF roughness 0-1 of the vertex-coloured skin: matte, a little sheen
ALPHA_CUTOFF = 0.5  # an RGBA texture's texels under this alpha are cut out (hair strands' gaps)
TEXTURED_SKIN_ROUGHNESS = 0.6  # the textured skin: slightly glossier, the texture carries the detail
UINT16_INDEX_LIMIT = 65535  # meshes with fewer vertices use uint16 indices (65535 is reserved by some APIs)
MAT4_WIDTH = 16  # components of a 4x4 matrix accessor

# glTF enums
TRIANGLES = 4  # primitive mode
LINEAR = 9729  # sampler magFilter
LINEAR_MIPMAP_LINEAR = 9987  # sampler minFilter
CLAMP_TO_EDGE = 33071  # sampler wrapS / wrapT
SKIN_MATERIAL = 0  # index of the untextured "Skin" material, the document's first


@dataclass
class Take:
    """The animation. times_s (K,) strictly increasing from 0, last = take duration;
    morph_weights (K, n_targets) in [0,1] for the mesh with targets; joint_rotations (K, J, 4)
    xyzw local rotations; root_translation_m (K, 3) translation of the root joint."""

    name: str
    times_s: np.ndarray
    morph_weights: np.ndarray
    joint_rotations: np.ndarray
    root_translation_m: np.ndarray


def _unit_quats(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions normalised in float64, returned as float32."""
    q = np.asarray(q, np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return q.astype(np.float32)


def encode_texture(rgb: np.ndarray, fmt: str = "jpeg") -> tuple[bytes, str]:
    """(S, S, 3) uint8 RGB or (S, S, 4) RGBA (always PNG: JPEG has no alpha) -> (encoded bytes,
    MIME type)."""
    if fmt not in TEXTURE_FORMATS:
        raise ValueError(f"texture format must be one of {TEXTURE_FORMATS}, not {fmt!r}")
    rgb = np.asarray(rgb, np.uint8)
    alpha = rgb.shape[-1] == 4
    img = np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA) if alpha else rgb[..., ::-1])  # OpenCV order
    if fmt == "jpeg" and not alpha:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    else:
        ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise ValueError("texture could not be encoded")
    return buf.tobytes(), "image/jpeg" if fmt == "jpeg" and not alpha else "image/png"


# ---------------------------------------------------------------------------------------------
# Writing


def _empty_document(generator: str, extras: dict | None) -> dict:
    """The avatar's document with its top-level keys in their written order (empty ones are
    dropped at the end)."""
    return {"extras": copy.deepcopy(extras) if extras else {}, "accessors": [], "animations": [],
            "asset": {"generator": generator, "version": "2.0"}, "bufferViews": [], "buffers": [],
            "images": [], "materials": [], "meshes": [], "nodes": [], "samplers": [], "scene": 0,
            "scenes": [], "skins": [], "textures": []}


def _material(name: str, roughness: float, texture: int | None = None, cutout: bool = False) -> dict:
    """A white, non-metallic material; texture: the index of its base colour texture; cutout: the
    texture's alpha cuts the surface out (MASK, no sorting needed) and both sides are drawn (hair
    cards are single sheets)."""
    pbr = {"baseColorFactor": [1.0, 1.0, 1.0, 1.0], "metallicFactor": 0.0, "roughnessFactor": roughness}
    if texture is not None:
        pbr["baseColorTexture"] = {"index": texture, "texCoord": 0}
    alpha = {"alphaMode": "MASK", "alphaCutoff": ALPHA_CUTOFF} if cutout else {"alphaMode": "OPAQUE"}
    return {"pbrMetallicRoughness": pbr, "emissiveFactor": [0.0, 0.0, 0.0], **alpha,
            "doubleSided": cutout, "name": name}


def _add_textured_material(b: glb.Builder, part: SkinnedMesh, fmt: str) -> int:
    """Embed the part's texture (image in a buffer view, texture, the shared sampler) and add
    its material "<name>Skin" ("<name>Cutout" for an RGBA texture); the material's index."""
    doc = b.doc
    data, mime = encode_texture(part.texture, fmt)
    doc["images"].append({"mimeType": mime, "bufferView": b.view(data), "name": f"{part.name}_basecolor"})
    if not doc["samplers"]:
        doc["samplers"].append({"magFilter": LINEAR, "minFilter": LINEAR_MIPMAP_LINEAR,
                                "wrapS": CLAMP_TO_EDGE, "wrapT": CLAMP_TO_EDGE})
    doc["textures"].append({"sampler": 0, "source": len(doc["images"]) - 1, "name": f"{part.name}_basecolor"})
    cutout = part.texture.shape[-1] == 4
    name = f"{part.name}Cutout" if cutout else f"{part.name}Skin"
    doc["materials"].append(_material(name, TEXTURED_SKIN_ROUGHNESS, len(doc["textures"]) - 1, cutout))
    return len(doc["materials"]) - 1


def _add_mesh(b: glb.Builder, part: SkinnedMesh, texture_format: str) -> int:
    """Add one skinned mesh: its vertex data, its material when textured, the mesh (one
    primitive, morph targets when it has some) and its node (skin 0). The node's index."""
    vertex = {"target": ARRAY_BUFFER}
    position = b.accessor(part.positions.astype(np.float32), minmax=True, **vertex)
    normal = b.accessor(part.normals.astype(np.float32), **vertex)
    joints = b.accessor(part.joints.astype(np.uint16), **vertex)
    weights = b.accessor(part.weights.astype(np.float32), **vertex)
    material = SKIN_MATERIAL
    if part.texture is not None:
        if part.uv is None:
            raise ValueError(f"mesh {part.name} has a texture but no UVs")
        material = _add_textured_material(b, part, texture_format)
    uv = b.accessor(part.uv.astype(np.float32), **vertex) if part.uv is not None else None
    color = None
    if part.color is not None and part.texture is None:
        color = b.accessor(np.clip(part.color, 0, 1).astype(np.float32), **vertex)
    index_dtype = np.uint16 if len(part.positions) < UINT16_INDEX_LIMIT else np.uint32
    indices = b.accessor(part.triangles.reshape(-1).astype(index_dtype), minmax=True, target=ELEMENT_ARRAY_BUFFER)
    primitive = {"attributes": {"POSITION": position, "NORMAL": normal, "TEXCOORD_0": uv, "COLOR_0": color,
                                "JOINTS_0": joints, "WEIGHTS_0": weights},
                 "indices": indices, "mode": TRIANGLES, "material": material}
    mesh = {"extras": {}, "primitives": [primitive], "weights": [], "name": part.name}
    if part.targets is not None:
        primitive["targets"] = [{"POSITION": b.accessor(d.astype(np.float32), minmax=True, **vertex)}
                                for d in part.targets]
        mesh["weights"] = [0.0] * len(part.targets)
        mesh["extras"] = {"targetNames": list(part.target_names)}
    b.doc["meshes"].append(mesh)
    b.doc["nodes"].append({"mesh": len(b.doc["meshes"]) - 1, "skin": 0, "name": part.name})
    return len(b.doc["nodes"]) - 1


def _add_skeleton(b: glb.Builder, joint_names, parents: np.ndarray, rest_local_m: np.ndarray,
                  mesh_nodes: list[int]) -> int:
    """Add the joint nodes (rest translations, children), the skin "Armature" with its inverse
    bind matrices and the scene (mesh nodes and root joints). The first joint's node index."""
    doc = b.doc
    n_joints = len(joint_names)
    first_joint = len(doc["nodes"])
    for j, name in enumerate(joint_names):
        children = [first_joint + c for c in range(n_joints) if parents[c] == j]
        doc["nodes"].append({"translation": [float(x) for x in rest_local_m[j]], "children": children,
                             "name": name})
    inverse_bind = np.tile(np.eye(4, dtype=np.float32), (n_joints, 1, 1))
    # rest rotations are identity: the inverse bind is a translation
    inverse_bind[:, :3, 3] = -rest_world(parents, rest_local_m)
    column_major = inverse_bind.transpose(0, 2, 1).reshape(n_joints, MAT4_WIDTH)
    doc["skins"].append({"inverseBindMatrices": b.accessor(column_major), "skeleton": first_joint,
                         "joints": list(range(first_joint, first_joint + n_joints)), "name": "Armature"})
    roots = [first_joint + j for j in range(n_joints) if parents[j] < 0]
    doc["scenes"].append({"name": "Scene", "nodes": mesh_nodes + roots})
    return first_joint


def _add_animation(b: glb.Builder, take: Take, meshes: list[SkinnedMesh], mesh_nodes: list[int],
                   parents: np.ndarray, first_joint: int) -> None:
    """Add the take as one LINEAR animation: one sampler per channel, all sharing one time
    accessor; the weights of the meshes with targets, every joint's rotation, the root's
    translation."""
    times = b.accessor(np.asarray(take.times_s, np.float32), minmax=True)
    samplers, channels = [], []

    def add(node: int, path: str, values: np.ndarray):
        samplers.append({"input": times, "interpolation": "LINEAR", "output": b.accessor(values)})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": node, "path": path}})

    for node, part in zip(mesh_nodes, meshes):
        if part.targets is not None:
            add(node, "weights", np.clip(take.morph_weights, 0, 1).astype(np.float32).reshape(-1))
    rot = _unit_quats(take.joint_rotations)
    for j in range(len(parents)):
        add(first_joint + j, "rotation", rot[:, j])
    for j in range(len(parents)):
        if parents[j] < 0:
            add(first_joint + j, "translation", np.asarray(take.root_translation_m, np.float32))
    b.doc["animations"].append({"name": take.name, "channels": channels, "samplers": samplers})


def _accessor_as_written(acc: dict) -> dict:
    """An accessor of `glb.Builder` as the avatar spells it: default byteOffset and normalized
    written out, max before min."""
    out = {"bufferView": acc["bufferView"], "byteOffset": 0, "componentType": acc["componentType"],
           "normalized": False, "count": acc["count"], "type": acc["type"]}
    for key in ("max", "min"):
        if key in acc:
            out[key] = acc[key]
    return out


def _drop_empty_values(d: dict) -> dict:
    """Remove in place, recursively, the keys whose value is None or empty (list, dict, string),
    except inside "extensions"; a dict emptied this way stays. The avatar's JSON has never held
    such values (the rule of pygltflib, its first writer)."""
    for key, value in list(d.items()):
        if value is None or (hasattr(value, "__iter__") and len(value) == 0):
            del d[key]
        elif isinstance(value, dict) and key != "extensions":
            _drop_empty_values(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _drop_empty_values(item)
    return d


def build_gltf(joint_names, joint_parents, joint_rest_local_m, meshes: list[SkinnedMesh], take: Take,
               extras: dict | None = None, generator: str = "dhcap",
               texture_format: str = "jpeg") -> tuple[dict, bytes]:
    """Assemble the glTF document (a dict) and its binary buffer (not yet written). Meshes with a
    `texture` embed it as `texture_format` ("jpeg", quality 95, or "png"); extras: the
    document's extras (copied)."""
    doc = _empty_document(generator, extras)
    b = glb.Builder(generator, doc)
    parents = np.asarray(joint_parents)
    rest_local = np.asarray(joint_rest_local_m, np.float64)
    doc["materials"].append(_material("Skin", SKIN_ROUGHNESS))
    mesh_nodes = [_add_mesh(b, part, texture_format) for part in meshes]
    first_joint = _add_skeleton(b, joint_names, parents, rest_local, mesh_nodes)
    _add_animation(b, take, meshes, mesh_nodes, parents, first_joint)
    doc["accessors"] = [_accessor_as_written(a) for a in doc["accessors"]]
    doc["buffers"] = [{"byteLength": len(b.blob)}]
    return _drop_empty_values(doc), bytes(b.blob)


def write_glb(path: str | os.PathLike, doc: dict, blob: bytes) -> Path:
    """Write the avatar of `build_gltf` atomically: a crash or a full disk never leaves a
    truncated file at `path`. ValueError for NaN or infinite numbers."""
    return glb.write_glb(path, doc, blob, ensure_ascii=True, allow_nan=False)


# ---------------------------------------------------------------------------------------------
# Reading


def read_texture(doc: dict, blob: bytes, material_index: int | None) -> np.ndarray | None:
    """The decoded base colour texture (S, S, 3) uint8 RGB of a material of a read .glb
    (`glb.read_glb`), or None when it has none."""
    if material_index is None:
        return None
    pbr = doc["materials"][material_index].get("pbrMetallicRoughness")
    info = pbr.get("baseColorTexture") if pbr is not None else None
    if info is None:
        return None
    image = doc["images"][doc["textures"][info["index"]]["source"]]
    view = doc["bufferViews"][image["bufferView"]]
    start = view.get("byteOffset", 0)
    img = cv2.imdecode(np.frombuffer(blob[start:start + view["byteLength"]], np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        return None
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA) if img.shape[-1] == 4 else img[..., ::-1].copy()


def texture_vertex_colours(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(V, 4) linear RGBA vertex colours sampled (bilinear) from an sRGB texture at the UVs:
    what a per-vertex drawing (the previews) can show of a textured mesh."""
    lin = srgb_to_linear(sample_uv(texture[..., :3].astype(np.float32) / 255, uv))
    return np.concatenate([lin, np.ones((len(lin), 1))], 1).astype(np.float32)


def _read_skeleton(doc: dict) -> tuple[list[str], np.ndarray, np.ndarray, dict[int, int]]:
    """(joint names (J,), parents (J,) int, rest_local_m (J, 3) float64, {node index: joint
    index}) of the document's first skin."""
    nodes = doc["nodes"]
    joint_nodes = doc["skins"][0].get("joints", [])
    node_to_joint = {n: j for j, n in enumerate(joint_nodes)}
    names = [nodes[n].get("name") for n in joint_nodes]
    parents = np.full(len(names), -1)
    for j, n in enumerate(joint_nodes):
        for c in nodes[n].get("children") or []:
            parents[node_to_joint[c]] = j
    rest_local = np.array([nodes[n].get("translation") or [0, 0, 0] for n in joint_nodes], np.float64)
    return names, parents, rest_local, node_to_joint


def _read_mesh(doc: dict, blob: bytes, mesh: dict) -> SkinnedMesh:
    """The first primitive of a mesh as a SkinnedMesh, with its texture (and vertex colours
    sampled from it when it has none) and its morph targets."""
    prim = mesh["primitives"][0]
    attrs = prim["attributes"]

    def optional(key: str) -> np.ndarray | None:
        return glb.read_accessor(doc, blob, attrs[key]) if attrs.get(key) is not None else None

    def required(index: int) -> np.ndarray:
        return glb.read_accessor(doc, blob, index)

    part = SkinnedMesh(
        name=mesh.get("name"), positions=required(attrs["POSITION"]), normals=required(attrs["NORMAL"]),
        triangles=required(prim["indices"]).reshape(-1, 3), joints=required(attrs["JOINTS_0"]),
        weights=required(attrs["WEIGHTS_0"]), color=optional("COLOR_0"), uv=optional("TEXCOORD_0"))
    part.texture = read_texture(doc, blob, prim.get("material"))
    if part.texture is not None and part.color is None and part.uv is not None:
        part.color = texture_vertex_colours(part.texture, part.uv)
    if prim.get("targets"):
        part.targets = np.stack([glb.read_accessor(doc, blob, t["POSITION"]) for t in prim["targets"]])
        part.target_names = tuple(mesh.get("extras", {})["targetNames"])
    return part


def _read_take(doc: dict, blob: bytes, node_to_joint: dict[int, int], parents: np.ndarray,
               rest_local_m: np.ndarray) -> Take:
    """The first animation as a Take; joints it does not rotate keep identity, the root its
    rest position when it is not translated, and no weights channel gives (K, 0) weights."""
    anim = doc["animations"][0]
    times = weights = rot = root = None
    n_keys = 0
    for ch in anim.get("channels", []):
        sampler = anim["samplers"][ch["sampler"]]
        if times is None:
            times = glb.read_accessor(doc, blob, sampler["input"]).astype(np.float64)
            n_keys = len(times)
            rot = np.tile([0.0, 0.0, 0.0, 1.0], (n_keys, len(parents), 1))
            root = np.tile(rest_local_m[parents < 0][0], (n_keys, 1))
        out = glb.read_accessor(doc, blob, sampler["output"])
        target = ch["target"]
        if target["path"] == "weights":
            weights = out.reshape(n_keys, -1)
        elif target["path"] == "rotation":
            rot[:, node_to_joint[target.get("node")]] = out
        elif target["path"] == "translation":
            root = out
    return Take(anim.get("name"), times, weights if weights is not None else np.zeros((n_keys, 0)), rot, root)


def avatar_from_glb(doc: dict, blob: bytes):
    """`read_avatar` of a file already read with `glb.read_glb`."""
    names, parents, rest_local, node_to_joint = _read_skeleton(doc)
    meshes = [_read_mesh(doc, blob, doc["meshes"][node["mesh"]])
              for node in doc["nodes"] if node.get("mesh") is not None]
    take = _read_take(doc, blob, node_to_joint, parents, rest_local)
    return names, parents, rest_local, meshes, take


def read_avatar(path: str | os.PathLike):
    """Read an avatar written by `build_gltf` back: (joint names, parents, rest_local_m, meshes,
    take). Used to draw previews from the file itself, so a picture shows what consumers get.
    A textured mesh comes back with its `texture` and, for drawing, vertex colours sampled from
    it."""
    return avatar_from_glb(*glb.read_glb(path))
