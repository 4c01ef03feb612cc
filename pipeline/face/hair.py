"""Hair on the personalised head: MakeHuman's CC0 hair meshes put on the subject's skull, with a
strand texture in the take's hair colour.

Inputs: the `HeadMesh` (canonical face space: metres, +Y up, +Z out of the face), a style from
STYLES and a linear RGB colour. Output: `Hair`: positions (N, 3) in the head's space, unit
normals, triangles (F, 3), UVs (N, 2; v = 0 at the top), and an RGBA strand texture (S, S, 4).

How:
  1. The style's `.mhclo` binds it to MakeHuman's hm08 base mesh, which the body model shares:
     `models.body_model.fit_proxy` puts it on the model's neutral head (glTF axes, metres).
  2. That head is put on the subject's: the Face Units' similarity (pipeline.face.face_units:
     canonical face onto hm08) inverted, then ICP rounds (a similarity, the farthest fifth
     trimmed) take hm08's skull (skin the head joint moves, above the eyes) onto the head's scalp.
  3. No cutting into the scalp: a hair vertex within NEAR_SCALP_M of the head and less than
     CLEARANCE_M outside it (or inside) moves out along the nearest head vertex's normal.
  4. glTF has one UV per vertex: vertices are split at UV seams; quads become two triangles.
  5. The texture: strands along v, each column's brightness jittered around the colour, a share
     of thin gaps cut out by alpha (the exporter writes MASK, both sides drawn).
The assets: assets/hair/ (MakeHuman's CC0 asset release: geometry and bindings, no textures).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.spatial import cKDTree

from models.body_model import Proxy, fit_proxy, load_body_model, load_proxy
from pipeline.core.assets import ASSETS_DIR
from pipeline.core.colour import linear_to_srgb
from pipeline.core.mesh import welded_vertex_normals
from pipeline.face.face_units import canonical_to_hm08, trimmed_icp
from pipeline.face.head_layout import FACE, NECK, SCALP
from pipeline.face.head_mesh import HeadMesh

HAIR_DIR = ASSETS_DIR / "hair"
STYLES = ("short04", "short02", "bob02", "afro01", "ponytail01", "braid01", "long01")  # shortest first
NEUTRAL_STYLE = "short02"     # when the hair is never seen
SKULL_ABOVE_EYES_M = 0.0      # hm08 skull vertices: at least this far above the eye joints
ICP_ROUNDS = 10
NEAR_SCALP_M = 0.03           # hair vertices this near the head are kept off it
CLEARANCE_M = 0.002           # by at least this much
PUSH_ROUNDS = 4
TEXTURE_PX = 256
STRAND_JITTER = 0.18          # std of a strand's brightness (share of the colour)
GAP_SHARE = 0.12              # share of texture columns cut out (gaps between strands)
ROOT_DARKEN = 0.15            # strands darken toward v = 0 by this share (depth near the scalp)


@dataclass(frozen=True)
class Hair:
    """A style on the head (see the module docstring)."""

    style: str
    positions_m: np.ndarray
    normals: np.ndarray
    triangles: np.ndarray
    uv: np.ndarray
    texture: np.ndarray


@lru_cache(maxsize=None)
def load_style(name: str) -> Proxy:
    """A vendored hair style; AssetError (one line) when missing or unreadable."""
    return load_proxy(HAIR_DIR / name / f"{name}.mhclo", "hair")


@lru_cache(maxsize=1)
def _hm08_head() -> tuple[np.ndarray, np.ndarray]:
    """(the body model's neutral vertices (Va, 3) metres, the indices of its skull vertices)."""
    bm = load_body_model()
    verts = bm.shape(bm.phenotype_to_pca({}))[0]
    skin_j, skin_w, kept, _ = bm.skin(True)
    names = [str(bm.joint_names[k]) for k in kept]
    dominant = skin_j[np.arange(len(skin_j)), skin_w.argmax(1)]
    rendered = np.zeros(len(verts), bool)
    render = bm.render_vertex.astype(int)
    rendered[render[bm.faces[bm.triangle_part == 0].astype(int)].ravel()] = True
    eyes_y = verts[:, 1][dominant == names.index("leftEye")].mean()
    skull = np.flatnonzero(rendered & (dominant == names.index("head")) & (verts[:, 1] > eyes_y + SKULL_ABOVE_EYES_M))
    return verts, skull


def hm08_to_head(head: HeadMesh) -> tuple[float, np.ndarray, np.ndarray]:
    """The similarity (s, R, t) taking hm08 model space to the head's space (module step 2)."""
    s0, r0, t0 = canonical_to_hm08()
    inverse = (1 / s0, r0.T, -(r0.T @ t0) / s0)   # head space from hm08
    verts, skull = _hm08_head()
    return trimmed_icp(verts[skull], head.positions_m[head.region == SCALP].astype(np.float64), inverse, ICP_ROUNDS)


def _off_the_scalp(points: np.ndarray, head: HeadMesh) -> np.ndarray:
    """points (N, 3) near the head moved out to CLEARANCE_M along the nearest head normal."""
    keep = np.isin(head.region, (FACE, SCALP, NECK))
    surface, normals = head.positions_m[keep].astype(np.float64), head.normals[keep].astype(np.float64)
    tree = cKDTree(surface)
    out = points.copy()
    for _ in range(PUSH_ROUNDS):  # a pushed vertex can find another nearest vertex: push again
        dist, near = tree.query(out)
        depth = np.einsum("nc,nc->n", out - surface[near], normals[near])
        push = (dist < NEAR_SCALP_M) & (depth < CLEARANCE_M)
        out[push] += (CLEARANCE_M - depth[push])[:, None] * normals[near[push]]
    return out


def _split_uv_seams(proxy: Proxy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertex of each split vertex (M,), uv (M, 2) glTF v-down, triangles (F, 3) into them)."""
    pairs, tris = {}, []
    for poly in proxy.obj_faces:
        ids = [pairs.setdefault((v, t), len(pairs)) for v, t in poly]
        tris += [(ids[0], ids[k], ids[k + 1]) for k in range(1, len(ids) - 1)]
    vt = np.array(list(pairs), np.int64)
    uv = proxy.obj_uv[vt[:, 1]].astype(np.float64)
    uv[:, 1] = 1.0 - uv[:, 1]
    return vt[:, 0], uv, np.array(tris, np.int64)


def strand_texture(rgb_linear, seed: int = 0) -> np.ndarray:
    """(TEXTURE_PX, TEXTURE_PX, 4) uint8 sRGB + alpha: strands along v in the colour (module step 5)."""
    rng = np.random.default_rng(seed)
    strand = np.clip(rng.normal(1.0, STRAND_JITTER, TEXTURE_PX), 0.4, 1.6)
    along = 1.0 - ROOT_DARKEN * np.linspace(1.0, 0.0, TEXTURE_PX)
    shade = along[:, None] * strand[None, :]
    linear = np.clip(np.asarray(rgb_linear, np.float64)[:3] * shade[..., None], 0, 1)
    rgba = np.empty((TEXTURE_PX, TEXTURE_PX, 4), np.uint8)
    rgba[..., :3] = np.round(255 * linear_to_srgb(linear))
    rgba[..., 3] = np.where(rng.random(TEXTURE_PX) < GAP_SHARE, 0, 255)[None, :]
    return rgba


def fit_hair(head: HeadMesh, style: str, rgb_linear, to_head: tuple | None = None) -> Hair:
    """The style put on the head and textured in the colour (see the module docstring); to_head:
    `hm08_to_head(head)` when already known (several styles on one head)."""
    proxy = load_style(style)
    bm = load_body_model()
    on_hm08 = fit_proxy(bm, proxy, _hm08_head()[0])
    s, rot, t = to_head or hm08_to_head(head)
    points = _off_the_scalp(s * on_hm08 @ rot.T + t, head)
    vertex, uv, tris = _split_uv_seams(proxy)
    positions = points[vertex]
    normals = welded_vertex_normals(positions, tris, vertex)
    return Hair(style, positions.astype(np.float32), normals, tris.astype(np.uint32), uv.astype(np.float32),
                strand_texture(rgb_linear))
