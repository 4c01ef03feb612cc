"""Eyeballs and eye sockets of the head mesh.

Inputs: the subject's face landmarks in canonical face space (metres; (468, 3), or (478, 3) with
the irises), the head template's face triangles, the eyeball radius (metres) and the skin colour
(linear RGB). Outputs, added to a `MeshParts`:

* an eye socket behind each eye opening: a pocket from the eyelid ring onto a sphere
  SOCKET_RADIUS eyeball radii around the eyeball centre (so the eyeball turns freely inside it),
  closed at the back, shaded darker with depth, following the eyelid's morph deltas (fading);
* an eyeball: a UV sphere with its pole on the gaze axis (+Z), white sclera, iris, limbus and
  pupil by polar angle from that axis (degrees), to be skinned to an eye joint at its centre.

Eye side 0 is the subject's left eye (+X), 1 the right (-X).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from pipeline.face.canonical import load_canonical_face
from pipeline.face.head_geometry import MeshParts, fan, loft, min_distance, orient_to, point_in_polygon, to_tile, zipper
from pipeline.face.head_layout import (
    CHART_RIM,
    EYE_LEFT,
    EYE_RIGHT,
    EYE_RINGS,
    EYE_SOCKET,
    IRIS_CENTRES,
    N_FACE,
    N_LANDMARKS_WITH_IRISES,
    UV_TILES,
)
from pipeline.face.head_template import HeadTemplate

EYE_RADIUS_M = 0.012                             # for the canonical face; scaled to the subject
SOCKET_RADIUS = 1.04                             # socket sphere radius / eyeball radius
IRIS_PULL = 0.5                                  # eye centre: this far from the opening's middle to the iris
EYE_CLEARANCE = 1.07                             # min face vertex distance from the eye centre / radius
SOCKET_FADE = (0.6, 0.35, 0.15)                  # socket rings' share of the eyelid deltas

# Eyeball: rings at these polar angles from the gaze axis (degrees; dense at the pupil, iris and
# limbus edges), EYEBALL_SEGMENTS vertices around each. Colour zones by polar angle (degrees):
# pupil, iris, limbus ring, then sclera; the eyeball texture (pipeline.face.head_texture) uses
# the same zones.
EYEBALL_LATITUDES_DEG = (0, 5, 9, 11, 16, 22, 27, 30, 34, 45, 60, 80, 100, 125, 150, 180)
EYEBALL_SEGMENTS = 24
PUPIL_DEG = 9.5
IRIS_DEG = 27.5
LIMBUS_DEG = 30.5

SCLERA_RGB = (0.82, 0.80, 0.76)
IRIS_RGB = (0.10, 0.05, 0.025)
PUPIL_RGB = (0.008, 0.006, 0.005)
LIMBUS_RGB = (0.03, 0.02, 0.015)

# Placing the eyeball centre (see `place_eye`).
EYE_FRONT_VERTICES = 4        # the opening's front: mean depth of its 4 most forward lid vertices
IRIS_INNER_SHARE = 0.6        # the centre must lie inside the lid contour shrunk to this share
IRIS_PULL_STEPS = 11          # pulls tried from IRIS_PULL down to 0
NEAR_FACET_RADII = 3          # face facets within this many eyeball radii are tested
PUSH_BACK_ITERATIONS = 20
MIN_GAP_RADII = 1.005         # eyeball centre to the nearest facet, in eyeball radii
PUSH_TARGET_RADII = 1.01      # after a push back the nearest facet is this far (eyeball radii)

# Eye socket pocket.
SOCKET_SEGMENTS = 32          # vertices around each socket ring
SOCKET_RINGS = 9              # rings from the lid down to the back pole
SOCKET_LID_MARGIN_RAD = np.radians(10)   # first ring: this much further from the gaze axis than the lid
SOCKET_LAT_SLOPE = 0.7        # radians of latitude per radian of azimuth between socket columns at most
SOCKET_FULL_DEPTH_RING = 2    # socket rings reach full darkness at this ring (1-based)
SOCKET_RIM_SHADE = 0.85       # socket colour at the lid: this share of the skin colour
SOCKET_DEEP_TINT = (0.5, 0.3, 0.3)       # socket colour deep inside: the skin colour times this


def eyeball(centre: np.ndarray, radius: float, n_lon: int = EYEBALL_SEGMENTS):
    """UV sphere with its pole facing +Z. Returns positions (V, 3) metres, triangles (local ids),
    polar angle per vertex (degrees) and chart coordinates in [-1, 1]^2."""
    lat = np.array(EYEBALL_LATITUDES_DEG, float)
    rings = lat[1:-1]
    phi = 2 * np.pi * np.arange(n_lon) / n_lon
    theta = np.radians(rings)[:, None]
    pts = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi),
                    np.cos(theta) * np.ones_like(phi)], -1).reshape(-1, 3)
    dirs = np.concatenate([[[0, 0, 1.0]], pts, [[0, 0, -1.0]]])
    ang = np.concatenate([[0.0], np.repeat(rings, n_lon), [180.0]])
    ids = 1 + np.arange(len(rings) * n_lon).reshape(len(rings), n_lon)
    tris = [np.stack([np.zeros(n_lon, int), ids[0], np.roll(ids[0], -1)], 1)]
    for k in range(len(rings) - 1):
        a, b = ids[k], ids[k + 1]
        tris.append(np.stack([a, b, np.roll(b, -1)], 1))
        tris.append(np.stack([a, np.roll(b, -1), np.roll(a, -1)], 1))
    last = len(dirs) - 1
    tris.append(np.stack([ids[-1], np.full(n_lon, last), np.roll(ids[-1], -1)], 1))
    tris = np.concatenate(tris)
    # chart: radius = polar angle / 180 deg, the back pole (never visible) at the rim
    r = CHART_RIM * ang / 180.0
    azimuth = np.arctan2(dirs[:, 1], dirs[:, 0])
    chart = np.stack([r * np.cos(azimuth), r * np.sin(azimuth)], 1)
    return centre + radius * dirs, tris, ang, chart


def eye_colour(ang: np.ndarray) -> np.ndarray:
    """(N, 3) linear RGB of eyeball vertices at polar angles ang (degrees)."""
    col = np.empty((len(ang), 3))
    col[:] = SCLERA_RGB
    col[ang <= LIMBUS_DEG] = LIMBUS_RGB
    col[ang <= IRIS_DEG] = IRIS_RGB
    col[ang <= PUPIL_DEG] = PUPIL_RGB
    return col


def _eye_axis_xy(lid: np.ndarray, iris: np.ndarray | None) -> np.ndarray:
    """(2,) x, y of the eye axis: the middle of the eyelid opening (lid: (16, 3) ring, metres),
    moved up to IRIS_PULL of the way towards the iris centre if given, as far as it stays well
    inside the eyelid contour."""
    mid = np.array([(lid[:, 0].min() + lid[:, 0].max()) / 2, lid[:, 1].mean()])
    axis_xy = mid
    if iris is not None:
        # halfway to the iris centre (the iris moves with the gaze, the eyeball centre does
        # not), pulled further towards the middle of the opening if not well inside the eyelid
        # contour (the socket is built around the eye axis, which must pass through the opening)
        inner = mid + (lid[:, :2] - mid) * IRIS_INNER_SHARE
        for share in np.linspace(IRIS_PULL, 0.0, IRIS_PULL_STEPS):
            axis_xy = mid + (iris[:2] - mid) * share
            if point_in_polygon(axis_xy[None], inner)[0]:
                break
    return axis_xy


def place_eye(face: np.ndarray, face_tris: np.ndarray, eye: int, iris: np.ndarray | None,
              radius: float) -> np.ndarray:
    """(3,) eyeball centre (metres): one radius behind the front of the eye opening, behind the
    middle of the eyelid opening (moved IRIS_PULL of the way towards the iris centre if given),
    then pushed back along -Z until no face vertex is closer than EYE_CLEARANCE radii (so neither
    the eyeball nor its socket pokes through the lids or the skin around them), and further if a
    facet of the socket or of the skin nearby would still cut into the eyeball (nearly closed
    lids)."""
    lid = face[list(EYE_RINGS[eye])]
    front_z = np.sort(lid[:, 2])[-EYE_FRONT_VERTICES:].mean()
    axis_xy = _eye_axis_xy(lid, iris)
    centre = np.array([axis_xy[0], axis_xy[1], front_z - radius])
    need = EYE_CLEARANCE * radius
    dxy2 = ((face[:, :2] - centre[:2]) ** 2).sum(1)
    near = dxy2 < need ** 2                  # vertices inside the cylinder the eyeball moves in
    if near.any():
        half_depth = np.sqrt(need ** 2 - dxy2[near])
        dz = face[near, 2] - centre[2]
        ahead = dz > -half_depth             # (the face has nothing far behind the eye)
        if ahead.any():
            centre[2] -= max(0.0, float((half_depth[ahead] - dz[ahead]).max()))
    close = face_tris[(np.linalg.norm(face[face_tris] - centre, axis=2) < NEAR_FACET_RADII * radius).any(1)]
    for _ in range(PUSH_BACK_ITERATIONS):
        spos, stris = socket(lid, centre, SOCKET_RADIUS * radius, eye)[:2]
        gap = min(min_distance(centre, spos, stris), min_distance(centre, face, close))
        if gap >= MIN_GAP_RADII * radius:
            break
        centre[2] -= PUSH_TARGET_RADII * radius - gap
    return centre


def eye_centres(points: np.ndarray, face_tris: np.ndarray, radius: float) -> list[np.ndarray]:
    """[left (+X), right (-X)] eyeball centres (metres) for (468, 3) or (478, 3) landmarks; with
    the irises, each eye's is the iris centre nearest its eyelid ring."""
    face = points[:N_FACE]
    iris_pts = points[list(IRIS_CENTRES)] if len(points) == N_LANDMARKS_WITH_IRISES else None
    centres = []
    for side, ring in enumerate(EYE_RINGS):
        iris = None
        if iris_pts is not None:
            ring_centre = face[list(ring)].mean(0)
            iris = iris_pts[np.argmin(np.linalg.norm(iris_pts[:, :2] - ring_centre[:2], axis=1))]
        centres.append(place_eye(face, face_tris, side, iris, radius))
    return centres


@lru_cache(maxsize=2)
def canonical_lid_azimuths(eye: int):
    """(16,) unwrapped azimuths of the eyelid ring around the middle of the canonical eye
    opening, times the sign that makes them increase along the ring, and that sign. eye 0 is
    the left eye, 1 the right."""
    lid = load_canonical_face().vertices_m[list(EYE_RINGS[eye])]
    mid = np.array([(lid[:, 0].min() + lid[:, 0].max()) / 2, lid[:, 1].mean()])
    psi = np.unwrap(np.arctan2(lid[:, 1] - mid[1], lid[:, 0] - mid[0]))
    sgn = 1.0 if psi[-1] > psi[0] else -1.0
    if not (np.diff(psi * sgn) > 0).all():
        raise RuntimeError("canonical eyelid ring is not star-shaped around its middle")
    return psi * sgn, sgn


def socket(lid: np.ndarray, centre: np.ndarray, r_sock: float, eye: int, n_seg: int = SOCKET_SEGMENTS,
           n_lat: int = SOCKET_RINGS):
    """An eye socket: a pocket from the eyelid ring `lid` ((16, 3) metres) onto the sphere of
    radius r_sock around the eyeball centre (so the eyeball turns freely inside it), closed at
    the back.

    Local ids: the lid ring copies first, then n_lat rings of n_seg vertices evenly spaced in
    azimuth (fine enough that the flat facets stay outside the eyeball), then the back pole.
    Returns positions, triangles (local ids), for each vertex the two lid ring indices it takes
    its delta from, the weight of the first, a fade factor, polar chart coordinates in
    [-1, 1]^2 and a depth in [0, 1] (for the colour)."""
    n_r = len(lid)
    to_lid = lid - centre
    lid_dirs = to_lid / np.linalg.norm(to_lid, axis=1, keepdims=True)
    alpha = np.arccos(np.clip(lid_dirs[:, 2], -1, 1))       # angle from the gaze axis (+Z)
    # azimuth of each lid vertex around the eye axis, taken from the canonical (open) eye, so
    # the pocket's layout holds for narrowed or closed lids too
    ps, sgn = canonical_lid_azimuths(eye)                    # ps increases along the ring
    psi = ps * sgn
    pu = ps[0] + 2 * np.pi * (np.arange(n_seg) + 0.5) / n_seg
    ps_ext = np.append(ps, ps[0] + 2 * np.pi)
    al_ext = np.append(alpha, alpha[0])
    k = np.clip(np.searchsorted(ps_ext, pu, side="right") - 1, 0, n_r - 1)
    w1 = (pu - ps_ext[k]) / (ps_ext[k + 1] - ps_ext[k])
    lat0 = (1 - w1) * al_ext[k] + w1 * al_ext[k + 1] + SOCKET_LID_MARGIN_RAD
    # smallest Lipschitz majorant (slope SOCKET_LAT_SLOPE per radian of azimuth): neighbouring
    # columns never differ by more than ~8 degrees of latitude, so the facets stay close to the sphere
    gap = np.abs(np.angle(np.exp(1j * (pu[:, None] - pu[None, :]))))
    lat0 = (lat0[None, :] - SOCKET_LAT_SLOPE * gap).max(1)
    az = pu * sgn
    lid_a = np.concatenate([np.arange(n_r)] + [k] * n_lat + [[0]])
    lid_b = np.concatenate([np.arange(n_r)] + [(k + 1) % n_r] * n_lat + [[0]])
    lid_w = np.concatenate([np.ones(n_r)] + [1 - w1] * n_lat + [[1.0]])
    fades = list(SOCKET_FADE) + [0.0] * n_lat
    fade = np.concatenate([np.ones(n_r)] + [np.full(n_seg, f) for f in fades[:n_lat]] + [[0.0]])
    pos = [lid]
    chart = [np.stack([np.cos(psi), np.sin(psi)], 1) * CHART_RIM]
    depth = [np.zeros(n_r)]
    rings = []
    for ring in range(n_lat):
        lat = lat0 + (np.pi - lat0) * ring / n_lat
        dirs = np.stack([np.sin(lat) * np.cos(az), np.sin(lat) * np.sin(az), np.cos(lat)], 1)
        pos.append(centre + r_sock * dirs)
        rings.append(n_r + ring * n_seg + np.arange(n_seg))
        chart.append(np.stack([np.cos(az), np.sin(az)], 1) * CHART_RIM * (1 - (ring + 1) / (n_lat + 1)))
        depth.append(np.full(n_seg, min(1.0, (ring + 1) / SOCKET_FULL_DEPTH_RING)))
    pole = n_r + n_lat * n_seg
    pos.append([centre - np.array([0, 0, r_sock])])
    chart.append([[0.0, 0.0]])
    depth.append([1.0])
    allpos = np.concatenate(pos)
    tris = [zipper(np.arange(n_r), ps, rings[0], pu, allpos)]
    for ring in range(n_lat - 1):
        tris.append(loft(rings[ring][::-1], rings[ring + 1][::-1]))
    tris.append(fan(rings[-1][::-1], pole))
    return (allpos, np.concatenate(tris), lid_a, lid_b, lid_w, fade,
            np.concatenate(chart), np.concatenate(depth))


def add_eye(parts: MeshParts, template: HeadTemplate, face: np.ndarray, ring, centre: np.ndarray,
            radius: float, side: int, skin: np.ndarray):
    """Socket behind one eye opening and the eyeball in it. side 0 = left (+X), 1 = right."""
    ring = np.array(ring)
    n_r = len(ring)
    spos, stris, lid_a, lid_b, lid_w, fade, chart, depth = socket(
        face[ring], centre, SOCKET_RADIUS * radius, side)
    if side == 1:
        chart = chart * np.array([-1.0, 1.0])    # mirror the right socket's chart
    dark = skin * np.array(SOCKET_DEEP_TINT)
    colour = (1 - depth[:, None]) * skin * SOCKET_RIM_SHADE + depth[:, None] * dark
    source = np.concatenate([ring, parts.n + np.arange(n_r, len(spos))])
    ids = parts.add(spos, to_tile(chart, UV_TILES[("socket_left", "socket_right")[side]]),
                    EYE_SOCKET, colour, source=source)
    parts.add_tris(orient_to(stris + ids[0], template.face_tris, ring, ids[:n_r]))
    parts.add_weights(ids, ring[lid_a], lid_w * fade)
    parts.add_weights(ids, ring[lid_b], (1 - lid_w) * fade)

    epos, etris, eang, echart = eyeball(centre, radius)
    ids = parts.add(epos, to_tile(echart, UV_TILES[("eye_left", "eye_right")[side]]),
                    (EYE_LEFT, EYE_RIGHT)[side], eye_colour(eang))
    parts.add_tris(etris + ids[0])
