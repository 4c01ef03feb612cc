"""glTF 2.0 binary (.glb) export of the avatar: skeleton, skinned body, skinned head with ARKit
morph targets, and one animation of the take.

Layout of the file (what Blender, three.js and Unity's importers expect of a humanoid):
  scene roots:  "Body" (skinned mesh), "Head" (skinned mesh with morph targets), "hips" (root joint)
  skin:         one skin over all humanoid joints (VRM/Unity names), rest pose = bind pose (T-pose)
  head mesh:    one primitive; mesh.extras.targetNames = the 51 ARKit names, dense POSITION targets
  materials:    "Skin" (vertex colours, COLOR_0) for untextured meshes; a textured mesh gets its own
                material "<name>Skin" whose baseColorTexture is the embedded image (JPEG or PNG in a
                bufferView, linear mipmapped sampler, clamped), without COLOR_0
  animation:    one, LINEAR: weights of "Head", rotation of every joint, translation of "hips"
Frames: glTF's (Y up, metres, right-handed, the avatar faces +Z).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pygltflib as g

from pipeline.body.kinematics import rest_world
from pipeline.core.mesh import SkinnedMesh

ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
_CTYPE = {np.dtype(np.float32): g.FLOAT, np.dtype(np.uint32): g.UNSIGNED_INT,
          np.dtype(np.uint16): g.UNSIGNED_SHORT, np.dtype(np.uint8): g.UNSIGNED_BYTE}
_ATYPE = {1: g.SCALAR, 2: g.VEC2, 3: g.VEC3, 4: g.VEC4, 16: g.MAT4}


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


class _Builder:
    def __init__(self, generator: str):
        self.blob = bytearray()
        self.gltf = g.GLTF2(asset=g.Asset(version="2.0", generator=generator), scene=0)

    def view(self, data: bytes, target: int | None = None) -> int:
        while len(self.blob) % 4:
            self.blob += b"\x00"
        bv = g.BufferView(buffer=0, byteOffset=len(self.blob), byteLength=len(data), target=target)
        self.blob += data
        self.gltf.bufferViews.append(bv)
        return len(self.gltf.bufferViews) - 1

    def accessor(self, arr: np.ndarray, target: int | None = None, minmax: bool = False,
                 mat4: bool = False) -> int:
        arr = np.ascontiguousarray(arr)
        count = arr.shape[0]
        width = 16 if mat4 else (arr.shape[1] if arr.ndim > 1 else 1)
        acc = g.Accessor(bufferView=self.view(arr.tobytes(), target), componentType=_CTYPE[arr.dtype],
                         count=count, type=_ATYPE[width])
        if minmax:
            flat = arr.reshape(count, -1)
            cast = float if arr.dtype == np.float32 else int
            acc.min = [cast(v) for v in flat.min(axis=0)]
            acc.max = [cast(v) for v in flat.max(axis=0)]
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1


def _unit_quats(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return q.astype(np.float32)


TEXTURE_FORMATS = ("jpeg", "png")
JPEG_QUALITY = 95


def encode_texture(rgb: np.ndarray, fmt: str = "jpeg") -> tuple[bytes, str]:
    """(S, S, 3) uint8 RGB -> (encoded bytes, MIME type)."""
    import cv2
    if fmt not in TEXTURE_FORMATS:
        raise ValueError(f"texture format must be one of {TEXTURE_FORMATS}, not {fmt!r}")
    img = np.ascontiguousarray(np.asarray(rgb, np.uint8)[..., ::-1])     # RGB -> BGR for OpenCV
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    else:
        ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ValueError("texture could not be encoded")
    return buf.tobytes(), "image/jpeg" if fmt == "jpeg" else "image/png"


def _textured_material(b: "_Builder", part: SkinnedMesh, fmt: str) -> int:
    G = b.gltf
    data, mime = encode_texture(part.texture, fmt)
    G.images.append(g.Image(name=f"{part.name}_basecolor", bufferView=b.view(data), mimeType=mime))
    if not G.samplers:
        G.samplers.append(g.Sampler(magFilter=g.LINEAR, minFilter=g.LINEAR_MIPMAP_LINEAR,
                                    wrapS=g.CLAMP_TO_EDGE, wrapT=g.CLAMP_TO_EDGE))
    G.textures.append(g.Texture(sampler=0, source=len(G.images) - 1, name=f"{part.name}_basecolor"))
    G.materials.append(g.Material(
        name=f"{part.name}Skin", pbrMetallicRoughness=g.PbrMetallicRoughness(
            baseColorFactor=[1.0, 1.0, 1.0, 1.0], baseColorTexture=g.TextureInfo(index=len(G.textures) - 1),
            metallicFactor=0.0, roughnessFactor=0.6)))
    return len(G.materials) - 1


def build_gltf(joint_names, joint_parents, joint_rest_local_m, meshes: list[SkinnedMesh], take: Take,
               extras: dict | None = None, generator: str = "dhcap",
               texture_format: str = "jpeg") -> tuple[g.GLTF2, bytes]:
    """Assemble the glTF document and its binary buffer (not yet written). Meshes with a
    `texture` embed it as `texture_format` ("jpeg", quality 95, or "png")."""
    b = _Builder(generator)
    G = b.gltf
    J = len(joint_names)
    parents = np.asarray(joint_parents)
    rest_local = np.asarray(joint_rest_local_m, np.float64)
    rest = rest_world(parents, rest_local)

    G.materials.append(g.Material(
        name="Skin", pbrMetallicRoughness=g.PbrMetallicRoughness(
            baseColorFactor=[1.0, 1.0, 1.0, 1.0], metallicFactor=0.0, roughnessFactor=0.7)))

    mesh_nodes = []
    for part in meshes:
        attrs = g.Attributes(
            POSITION=b.accessor(part.positions.astype(np.float32), ARRAY_BUFFER, minmax=True),
            NORMAL=b.accessor(part.normals.astype(np.float32), ARRAY_BUFFER),
            JOINTS_0=b.accessor(part.joints.astype(np.uint16), ARRAY_BUFFER),
            WEIGHTS_0=b.accessor(part.weights.astype(np.float32), ARRAY_BUFFER))
        material = 0
        if part.texture is not None:
            if part.uv is None:
                raise ValueError(f"mesh {part.name} has a texture but no UVs")
            material = _textured_material(b, part, texture_format)
        if part.uv is not None:
            attrs.TEXCOORD_0 = b.accessor(part.uv.astype(np.float32), ARRAY_BUFFER)
        if part.color is not None and part.texture is None:
            attrs.COLOR_0 = b.accessor(np.clip(part.color, 0, 1).astype(np.float32), ARRAY_BUFFER)
        idx_dtype = np.uint16 if len(part.positions) < 65535 else np.uint32
        prim = g.Primitive(attributes=attrs, material=material, indices=b.accessor(
            part.triangles.reshape(-1).astype(idx_dtype), ELEMENT_ARRAY_BUFFER, minmax=True))
        mesh = g.Mesh(name=part.name, primitives=[prim])
        if part.targets is not None:
            prim.targets = [g.Attributes(POSITION=b.accessor(d.astype(np.float32), ARRAY_BUFFER, minmax=True))
                            for d in part.targets]
            mesh.weights = [0.0] * len(part.targets)
            mesh.extras = {"targetNames": list(part.target_names)}
        G.meshes.append(mesh)
        G.nodes.append(g.Node(name=part.name, mesh=len(G.meshes) - 1, skin=0))
        mesh_nodes.append(len(G.nodes) - 1)

    first_joint = len(G.nodes)
    for j, name in enumerate(joint_names):
        children = [first_joint + c for c in range(J) if parents[c] == j]
        G.nodes.append(g.Node(name=name, translation=[float(x) for x in rest_local[j]],
                              children=children or []))
    ibm = np.tile(np.eye(4, dtype=np.float32), (J, 1, 1))
    ibm[:, :3, 3] = -rest  # rest rotations are identity: the inverse bind is a translation
    G.skins.append(g.Skin(name="Armature", joints=list(range(first_joint, first_joint + J)),
                          skeleton=first_joint,
                          inverseBindMatrices=b.accessor(ibm.transpose(0, 2, 1).reshape(J, 16), mat4=True)))
    roots = [first_joint + j for j in range(J) if parents[j] < 0]
    G.scenes.append(g.Scene(name="Scene", nodes=mesh_nodes + roots))

    # Animation: one sampler per channel, all sharing one time accessor.
    times = np.asarray(take.times_s, np.float32)
    t_acc = b.accessor(times, minmax=True)
    samplers, channels = [], []

    def add(node: int, path: str, values: np.ndarray):
        samplers.append(g.AnimationSampler(input=t_acc, output=b.accessor(values), interpolation="LINEAR"))
        channels.append(g.AnimationChannel(sampler=len(samplers) - 1,
                                           target=g.AnimationChannelTarget(node=node, path=path)))

    for k, part in enumerate(meshes):
        if part.targets is not None:
            add(mesh_nodes[k], "weights", np.clip(take.morph_weights, 0, 1).astype(np.float32).reshape(-1))
    rot = _unit_quats(take.joint_rotations)
    for j in range(J):
        add(first_joint + j, "rotation", rot[:, j])
    for j in range(J):
        if parents[j] < 0:
            add(first_joint + j, "translation", np.asarray(take.root_translation_m, np.float32))
    G.animations.append(g.Animation(name=take.name, samplers=samplers, channels=channels))
    if extras:
        G.extras = extras
    G.buffers.append(g.Buffer(byteLength=len(b.blob)))
    return G, bytes(b.blob)


def write_glb(path: str | os.PathLike, gltf: g.GLTF2, blob: bytes) -> Path:
    """Write atomically: a crash or a full disk never leaves a truncated file at `path`."""
    path = Path(path)
    gltf.set_binary_blob(blob)
    tmp = path.with_name(path.name + ".part")
    try:
        gltf.save_binary(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_accessor(gltf: g.GLTF2, index: int) -> np.ndarray:
    """Read an accessor of a loaded .glb back as a numpy array ((count,) or (count, width))."""
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    dtype = {v: k for k, v in _CTYPE.items()}[acc.componentType]
    width = {t: w for w, t in _ATYPE.items()}[acc.type]
    data = gltf.binary_blob()
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    arr = np.frombuffer(data, dtype=dtype, count=acc.count * width, offset=start)
    return arr.reshape(acc.count, width) if width > 1 else arr


def read_texture(gltf: g.GLTF2, material_index: int | None) -> np.ndarray | None:
    """The decoded base colour texture (S, S, 3) uint8 RGB of a material of a loaded .glb, or
    None when it has none."""
    import cv2
    if material_index is None:
        return None
    pbr = gltf.materials[material_index].pbrMetallicRoughness
    info = pbr.baseColorTexture if pbr is not None else None
    if info is None:
        return None
    image = gltf.images[gltf.textures[info.index].source]
    view = gltf.bufferViews[image.bufferView]
    data = gltf.binary_blob()[(view.byteOffset or 0):(view.byteOffset or 0) + view.byteLength]
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else bgr[..., ::-1].copy()


def texture_vertex_colours(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(V, 4) linear RGBA vertex colours sampled (bilinear) from an sRGB texture at the UVs:
    what a per-vertex drawing (the previews) can show of a textured mesh."""
    from pipeline.core.colour import sample_uv, srgb_to_linear
    lin = srgb_to_linear(sample_uv(texture.astype(np.float32) / 255, uv))
    return np.concatenate([lin, np.ones((len(lin), 1))], 1).astype(np.float32)


def read_avatar(path: str | os.PathLike):
    """Read an avatar written by `build_gltf` back: (joint names, parents, rest_local_m, meshes,
    take). Used to draw previews from the file itself, so a picture shows what consumers get.
    A textured mesh comes back with its `texture` and, for drawing, vertex colours sampled from
    it."""
    G = g.GLTF2().load(str(path))
    skin = G.skins[0]
    node_to_joint = {n: j for j, n in enumerate(skin.joints)}
    names = [G.nodes[n].name for n in skin.joints]
    parents = np.full(len(names), -1)
    for j, n in enumerate(skin.joints):
        for c in G.nodes[n].children or []:
            parents[node_to_joint[c]] = j
    rest_local = np.array([G.nodes[n].translation or [0, 0, 0] for n in skin.joints], np.float64)
    meshes, node_of_mesh = [], {}
    for ni, node in enumerate(G.nodes):
        if node.mesh is None:
            continue
        mesh = G.meshes[node.mesh]
        p = mesh.primitives[0]
        a = p.attributes
        part = SkinnedMesh(
            name=mesh.name, positions=read_accessor(G, a.POSITION), normals=read_accessor(G, a.NORMAL),
            triangles=read_accessor(G, p.indices).reshape(-1, 3), joints=read_accessor(G, a.JOINTS_0),
            weights=read_accessor(G, a.WEIGHTS_0),
            color=read_accessor(G, a.COLOR_0) if a.COLOR_0 is not None else None,
            uv=read_accessor(G, a.TEXCOORD_0) if a.TEXCOORD_0 is not None else None)
        part.texture = read_texture(G, p.material)
        if part.texture is not None and part.color is None and part.uv is not None:
            part.color = texture_vertex_colours(part.texture, part.uv)
        if p.targets:
            part.targets = np.stack([read_accessor(G, t["POSITION"] if isinstance(t, dict) else t.POSITION)
                                     for t in p.targets])
            part.target_names = tuple(mesh.extras["targetNames"])
        node_of_mesh[ni] = len(meshes)
        meshes.append(part)
    anim = G.animations[0]
    times = None
    K, J = 0, len(names)
    rot = weights = root = None
    for ch in anim.channels:
        s = anim.samplers[ch.sampler]
        if times is None:
            times = read_accessor(G, s.input).astype(np.float64)
            K = len(times)
            rot = np.tile([0.0, 0.0, 0.0, 1.0], (K, J, 1))
            root = np.tile(rest_local[parents < 0][0], (K, 1))
        out = read_accessor(G, s.output)
        if ch.target.path == "weights":
            weights = out.reshape(K, -1)
        elif ch.target.path == "rotation":
            rot[:, node_to_joint[ch.target.node]] = out
        elif ch.target.path == "translation":
            root = out
    take = Take(anim.name, times, weights if weights is not None else np.zeros((K, 0)), rot, root)
    return names, parents, rest_local, meshes, take
