"""Clothes on the body: MakeHuman's CC0 garments chosen from what the frames show, fitted to the
shaped body through their `.mhclo` binding, skinned to the same skeleton and coloured by the take.

Inputs: the `Skeleton`, the body's `BodyShape` and the take's `SampledColours`
(pipeline.body.colours: region colours, short sleeves or legs, which regions were seen). Output:
a list of `SkinnedMesh`es (glTF model space, metres, T-pose rest, up to 4 influences, linear RGBA
vertex colours), one per garment; none for a bare torso.

The garments (assets/clothes/, MakeHuman's CC0 asset release; geometry only, bound to the hm08
base mesh the body model shares): `GARMENTS` says what each covers. The choice:
  * a top is worn unless the upper body was seen in the skin's tone (`_is_skin`): a bare torso
    (Pose2Sim's man) gets no garment, the body shows its skin; when the upper body was never
    seen, the default suit;
  * which suit: by the sleeves and the legs the frames showed (`SUITS`, long by default);
  * shoes unless the feet were seen in the skin's tone (barefoot).
Each garment vertex sits where its binding puts it on the shaped body (`models.body_model.
fit_proxy`), takes its binding's blended skin weights (`proxy_skin`), and the colour of the body
region under it (upper garment, lower garment, shoes: `pipeline.body.mesh.body_regions`), the same
colour the body is painted there, so skin poking through a bent garment does not show.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from models.body_model import Proxy, fit_proxy, load_body_model, load_proxy, proxy_skin
from pipeline.body.colours import SampledColours
from pipeline.body.mesh import REGIONS, BodyShape, body_regions, compact, shaped_rest
from pipeline.body.skeleton import Skeleton
from pipeline.core.assets import ASSETS_DIR
from pipeline.core.colour import linear_to_lab
from pipeline.core.mesh import SkinnedMesh, welded_vertex_normals

CLOTHES_DIR = ASSETS_DIR / "clothes"
# garment: (long sleeves, long legs) it covers; shoes cover the feet
GARMENTS = {"male_casualsuit02": (True, True), "male_casualsuit04": (False, True),
            "female_casualsuit02": (False, False), "shoes02": None}
SUITS = {(True, True): "male_casualsuit02", (False, True): "male_casualsuit04",
         (False, False): "female_casualsuit02", (True, False): "female_casualsuit02"}  # by the legs: more in view
SHOES = "shoes02"
MIN_SKIN_CHROMA = 10.0     # CIELAB chroma: a skin sample greyer than this cannot tell bare skin
SKIN_AB_DISTANCE = 10.0    # a*b* distance under which a region is the skin's tone
SKIN_CHROMA_SHARE = 0.5    # and at least this share of the skin's chroma
SKIN_LIGHTNESS_SPAN = 30.0  # CIELAB L*: bare skin under other light (cam01's feet: 26 above his hands)
HM08_VERTICES = 19158      # MakeHuman's base mesh, which the garments bind to
# A collar bound to the neck would stand up to Anny's own jaw, which the personalised head does
# not have where Anny's was: garment polygons on these joints are left out (a round neckline).
COLLAR_JOINTS = ("neck", "head")


@lru_cache(maxsize=None)
def load_garment(name: str) -> Proxy:
    """A vendored garment; AssetError (one line) when missing or unreadable."""
    return load_proxy(CLOTHES_DIR / name / f"{name}.mhclo", "garment")


def _is_skin(sampled: SampledColours, region: str) -> bool:
    """The region's colour is the skin's tone: close in CIELAB's a*b* plane, as saturated, and
    within SKIN_LIGHTNESS_SPAN in lightness (the same skin is lit otherwise on the feet or the
    torso than on the face and hands; dark brown hair or leather has the hue but not the
    lightness); never when the skin's own sample is too grey to tell (backlight, small figures)."""
    c = sampled.colours
    (region_l, *region_ab), (skin_l, *skin_ab) = linear_to_lab(np.array([getattr(c, region)[:3], c.skin[:3]]))
    skin_chroma = float(np.hypot(*skin_ab))
    return bool(skin_chroma >= MIN_SKIN_CHROMA and abs(region_l - skin_l) < SKIN_LIGHTNESS_SPAN
                and np.linalg.norm(np.subtract(region_ab, skin_ab)) < SKIN_AB_DISTANCE
                and np.hypot(*region_ab) >= SKIN_CHROMA_SHARE * skin_chroma)


def choose_garments(sampled: SampledColours) -> list[str]:
    """The garments the take's colours call for (see the module docstring)."""
    seen = {r for r, n in sampled.points.items() if n > 0}
    skin_seen = "skin" in seen
    out = []
    if not ("upper" in seen and skin_seen and _is_skin(sampled, "upper")):
        out.append(SUITS[(not sampled.short_sleeves, not sampled.short_legs)])
    if not ("shoes" in seen and skin_seen and _is_skin(sampled, "shoes")):
        out.append(SHOES)
    return out


def _triangles(proxy: Proxy) -> np.ndarray:
    """(F, 3) triangles of the garment's polygons (quads split on a diagonal), its own winding."""
    tris = []
    for poly in proxy.obj_faces:
        v = [i for i, _ in poly]
        tris += [(v[0], v[k], v[k + 1]) for k in range(1, len(v) - 1)]
    return np.array(tris, np.int64)


@dataclass
class Garment:
    """A fitted garment: its name, mesh and each vertex's region (index into REGIONS)."""

    name: str
    mesh: SkinnedMesh
    region: np.ndarray


def garment_mesh(name: str, skel: Skeleton, rest: np.ndarray, skin_j: np.ndarray, skin_w: np.ndarray,
                 sampled: SampledColours) -> Garment:
    """One garment fitted to the shaped body `rest` (Va, 3) with its skin (Va, 4) x 2."""
    bm = load_body_model()
    proxy = load_garment(name)
    positions = fit_proxy(bm, proxy, rest)
    joints, weights = proxy_skin(bm, proxy, skin_j, skin_w)
    lookup = np.full(HM08_VERTICES, -1, np.int64)
    lookup[bm.hm08_index.astype(np.int64)] = np.arange(len(bm.hm08_index))
    under = lookup[proxy.ref[:, 0]]  # the body vertex each garment vertex is bound to first
    region = body_regions(skel.names, skin_j[under, 0], sampled.short_sleeves, sampled.short_legs)
    rgba = np.array([getattr(sampled.colours, r) for r in REGIONS], np.float64)
    if name == SHOES:
        region = np.full(len(region), REGIONS.index("shoes"))
    tris = _triangles(proxy)
    collar = np.isin(skin_j[under, 0], [skel.index(j) for j in COLLAR_JOINTS])
    used, tris = compact(tris[~collar[tris].any(axis=1)], len(positions))
    positions, joints, weights, region = positions[used], joints[used], weights[used], region[used]
    mesh = SkinnedMesh(
        name=f"Clothes_{name}", positions=positions.astype(np.float32),
        normals=welded_vertex_normals(positions, tris, np.arange(len(positions))),
        triangles=tris.astype(np.uint32),
        joints=np.where(weights > 0, joints, 0).astype(np.uint16), weights=weights.astype(np.float32),
        color=rgba[region].astype(np.float32))
    return Garment(name, mesh, region)


def dress(skel: Skeleton, shape: BodyShape, sampled: SampledColours) -> list[Garment]:
    """The garments the take calls for, fitted to the shaped body."""
    rest, skin_j, skin_w = shaped_rest(skel, shape)
    return [garment_mesh(n, skel, rest, skin_j, skin_w, sampled) for n in choose_garments(sampled)]
