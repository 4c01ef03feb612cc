"""The head mesh's skin around a subject's face: face, scalp, neck, and the mouth bag.

Inputs: the subject's (468, 3) face landmarks in canonical face space (metres), the cached
`HeadTemplate`, the skin colour (linear RGB). Outputs, added to a `MeshParts`:

* `fit_shell`: the template scalp and neck mapped onto the subject (an affine fit of the
  canonical face to the subject's, `affine_fit`, then a biharmonic displacement that meets the
  subject's face oval exactly, with matching tangents);
* `add_skin`: the face (the landmarks themselves, canonical UVs), the scalp and neck (seam copies
  of the face oval first; regions SCALP above the jaw angles, NECK below and the tube) with their
  neck weights and morph-delta transfer weights;
* `add_mouth_bag`: a pocket from the inner lip contour back into the head (dark red), closed at
  the back, following the lips' deltas (fading with depth).
"""
from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import dijkstra

from pipeline.face.canonical import load_canonical_face
from pipeline.face.head_geometry import MeshParts, edge_graph, fan, loft, orient_to, to_tile
from pipeline.face.head_layout import CHART_RIM, FACE, JAW_ANGLES, MOUTH, MOUTH_RING, N_FACE, NECK, SCALP, UV_TILES
from pipeline.face.head_template import NECK_RINGS, HeadTemplate

DELTA_FALLOFF_M = 0.06                           # scalp/neck deltas fade to 0 this far from the face
MIN_DELTA_WEIGHT = 1e-6                          # smaller delta-transfer weights are left out
AFFINE_STRETCH = (0.6, 1.6)                      # the face fit's stretch factors are kept in this range
# Mouth bag rings behind the inner lip contour: (blend from the lip contour to an ellipse,
# ellipse half-width / half the mouth width, ellipse half-height (m), blend of depth from the lip
# contour's to the mouth corners', extra depth (m), share of the lip deltas). Canonical metres,
# scaled to the subject.
MOUTH_BAG_RINGS = ((0.5, 0.86, 0.004, 0.4, 0.005, 0.85), (1.0, 0.80, 0.009, 0.8, 0.010, 0.6),
                   (1.0, 0.78, 0.011, 1.0, 0.016, 0.35), (1.0, 0.62, 0.009, 1.0, 0.023, 0.2))
MOUTH_DEPTH_M = 0.028                            # cap of the mouth bag behind the mouth corners
MOUTH_CAP_FADE = 0.1                             # the cap's share of the lip ring's mean delta
MOUTH_LIP_RGB = (0.16, 0.025, 0.025)
MOUTH_DEEP_RGB = (0.025, 0.004, 0.004)


def affine_fit(src: np.ndarray, dst: np.ndarray):
    """Affine map x -> x @ A.T + t taking (N, 3) src to dst in the least-squares sense, with its
    stretch (A = R S, polar decomposition) limited to AFFINE_STRETCH and no mirroring. Captures
    the subject's face size and proportions, and any rotation or shear of the input, so the
    template skull and neck follow the face. Returns (A (3, 3), t (3,))."""
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    linear = np.linalg.lstsq(src - src_mean, dst - dst_mean, rcond=None)[0].T
    u, sv, vt = np.linalg.svd(linear)
    if np.linalg.det(u @ vt) < 0:
        u[:, -1] *= -1
    rotation = u @ vt
    stretch = vt.T @ np.diag(np.clip(sv, *AFFINE_STRETCH)) @ vt
    linear = rotation @ stretch
    return linear, dst_mean - src_mean @ linear.T


def fit_shell(template: HeadTemplate, face: np.ndarray, linear: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """(n_graph, 3) shell + neck positions (graph numbering, metres) for the subject's face: the
    template head and neck mapped by the affine fit (linear, offset) of the canonical face to the
    subject's, plus a biharmonic displacement that takes the template face exactly onto the
    subject's."""
    tmpl = template.shell_template @ linear.T + offset
    delta = np.zeros_like(tmpl)
    delta[:N_FACE] = face - tmpl[:N_FACE]
    delta[template.solve_free] = template.solve_lu.solve(-(template.solve_coupling @ delta[template.solve_fixed]))
    pos = tmpl + delta
    pos[:N_FACE] = face
    return pos


def add_skin(parts: MeshParts, template: HeadTemplate, face: np.ndarray, graph_pos: np.ndarray,
             skin: np.ndarray, falloff_m: float) -> np.ndarray:
    """Face, scalp and neck. Returns the neck rings as head vertex ids (ring 0 = top)."""
    loop = template.face_loop
    n_loop = len(loop)
    can_uv = load_canonical_face().uv
    parts.add(face, can_uv, FACE, skin)
    copies = parts.add(face[loop], template.chart_uv[:n_loop], SCALP, skin, source=loop, weld=loop)
    rest = parts.add(graph_pos[N_FACE:], template.chart_uv[n_loop:], SCALP, skin)
    # graph id -> head id: face ids stay, the shell's face loop uses the seam copies
    g2h = np.concatenate([np.arange(N_FACE), rest])
    g2h_shell = g2h.copy()
    g2h_shell[loop] = copies
    n_face_tris, n_shell_tris = len(template.face_tris), len(template.shell_tris)
    parts.add_tris(template.face_tris)
    parts.add_tris(g2h_shell[template.shell_tris])
    parts.add_tris(g2h[template.graph_tris[n_face_tris + n_shell_tris:]])
    neck_rings = g2h[template.neck_rings]

    # regions: the shell below the level of the jaw angles, and the neck tube, are NECK
    jaw_y = face[list(JAW_ANGLES), 1].mean()
    region = np.where(graph_pos[N_FACE:, 1] < jaw_y, NECK, SCALP).astype(np.uint8)
    region[neck_rings.ravel() - rest[0]] = NECK
    parts.region[-1] = region
    parts.region[-2] = np.where(face[loop, 1] < jaw_y, NECK, SCALP).astype(np.uint8)
    # neck weight: smoothstep down the neck tube, 0 on the head
    kf = np.arange(NECK_RINGS + 1) / NECK_RINGS
    neck_weight = np.zeros(len(rest))
    neck_weight[neck_rings - rest[0]] = (kf * kf * (3 - 2 * kf))[:, None]
    parts.neck_weight[-1] = neck_weight

    # deltas: face and seam copies exact; the rest a harmonic blend of the face-oval deltas times
    # a cosine falloff with the distance along the surface from the oval
    parts.add_weights(np.arange(N_FACE), np.arange(N_FACE), 1.0)
    parts.add_weights(copies, loop, 1.0)
    skin_pos = np.concatenate(parts.pos[-3:])
    adj = edge_graph(np.concatenate(parts.tris[-3:]), skin_pos, len(skin_pos))
    dist = dijkstra(adj, indices=copies, min_only=True)[rest]
    fall = np.where(dist < falloff_m, 0.5 * (1 + np.cos(np.pi * dist / falloff_m)), 0.0)
    weights = template.harmonic * fall[:, None]        # rows: graph ids N_FACE.. == rest, in order
    rows, cols = np.nonzero(weights > MIN_DELTA_WEIGHT)
    parts.add_weights(rest[rows], loop[cols], weights[rows, cols])
    return neck_rings


def add_mouth_bag(parts: MeshParts, template: HeadTemplate, face: np.ndarray, scale: float):
    """A pocket from the inner lip contour back into the head, closed at the back. scale: the
    subject's size relative to the canonical face."""
    mring = np.array(MOUTH_RING)
    lips = face[mring]
    n = len(mring)
    xc, yc = (lips[:, 0].max() + lips[:, 0].min()) / 2, lips[:, 1].mean()
    half_w = (lips[:, 0].max() - lips[:, 0].min()) / 2
    z_corner = lips[:, 2].min()
    s = template.mouth_s
    ell_y = template.mouth_side * np.sqrt(np.clip(1 - s * s, 0, 1))
    chart = np.stack([s, ell_y], 1) * CHART_RIM
    n_rings = len(MOUTH_BAG_RINGS)
    lip = np.array(MOUTH_LIP_RGB)
    deep = np.array(MOUTH_DEEP_RGB)
    ring0 = parts.add(lips, to_tile(chart, UV_TILES["mouth"]), MOUTH, lip, source=mring)
    parts.add_weights(ring0, mring, 1.0)
    first_tri = len(parts.tris)
    prev = ring0[::-1]
    for k, (blend, width, height, depth_blend, depth, fade) in enumerate(MOUTH_BAG_RINGS):
        ellipse = np.stack([xc + s * half_w * width, yc + ell_y * height * scale, np.zeros(n)], 1)
        ring_pos = (1 - blend) * lips + blend * ellipse
        ring_pos[:, 2] = (1 - depth_blend) * lips[:, 2] + depth_blend * z_corner - depth * scale
        t = (k + 1) / (n_rings + 1)
        ids = parts.add(ring_pos, to_tile(chart * (1 - t), UV_TILES["mouth"]), MOUTH,
                        (1 - t) * lip + t * deep)
        parts.add_weights(ids, mring, fade)
        parts.add_tris(loft(prev, ids[::-1]))
        prev = ids[::-1]
    cap = parts.add([[xc, yc, z_corner - MOUTH_DEPTH_M * scale]],
                    to_tile(np.zeros((1, 2)), UV_TILES["mouth"]), MOUTH, deep)
    parts.add_weights(np.full(n, cap[0]), mring, MOUTH_CAP_FADE / n)
    parts.add_tris(fan(prev, cap[0]))
    bag = np.concatenate(parts.tris[first_tri:])
    del parts.tris[first_tri:]
    parts.add_tris(orient_to(bag, template.face_tris, mring, ring0))
