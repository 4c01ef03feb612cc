"""The generic ARKit prior of the face rig (`assets/face/arkit_prior.npz`, read by
pipeline.face.rig.load_prior): 51 morph targets (51, 468, 3) in metres on the canonical face
(+Y up, +Z out of the face, the subject's left = +X).

`build_prior` fits the rig regression over several real takes, pulled toward the hand-made
`procedural_prior` for shapes the takes rarely show; `build_prior_file` does it for sample videos
(tracked with MediaPipe) and writes the file (`python -m pipeline.face_rig build-prior`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from pipeline.core.tracks import ARKIT_NAMES, Tracks
from pipeline.face.canonical import load_canonical_face
from pipeline.face.head_space import face_points_m
from pipeline.face.rig import (
    BROW_INNER,
    BROW_OUTER,
    CHEEK,
    EYE_LOWER,
    EYE_UPPER,
    LOWER_LIP,
    MOUTH_CORNER,
    N_MESH,
    NOSE_WING,
    UPPER_LIP,
    ridge_solve,
)
from pipeline.face.training_takes import track_samples

DEFAULT_SAMPLES = ["franck", "cap13"]  # the prior's real training takes (no test uses them)
PRIOR_TO_PROCEDURAL = 20.0  # frames at full activation a shape needs before the takes outweigh the procedural one
MM = 1e-3                   # metres per millimetre: the procedural shapes' sizes below are in mm
SIDES = (("Left", 1.0), ("Right", -1.0))  # side name, sign of x toward that side's outside

# Landmarks of the procedural shapes (MediaPipe face mesh indices).
MOUTH_CORNERS = [61, 291]   # right, left
EAR_POINTS = [234, 454]     # the jaw's hinge is near the ears (right, left)
CHIN = [17, 18, 200]
# Regions: the jaw is what lies below the lip line, within its width.
LIP_LINE_DROP_M = 0.004     # the jaw region starts 4 mm below the mouth corners' height
LIP_LINE_SOFTNESS_M = 0.004  # width of the falloff across that line
JAW_HALF_WIDTH_M = 0.035    # the jaw moves fully within 35 mm of the midline
JAW_SIDE_FALLOFF_M = 0.015  # and fades beyond over about 15 mm
JAW_OPEN_DEG = 12.0         # jawOpen rotates the jaw region this much about the ears' axis
MIDLINE_SOFTNESS_M = 0.006  # width of the split into the face's left and right halves
# Falloff radii of the landmark regions (`_falloff`), metres.
LIP_RADIUS_M = 0.005
CHIN_RADIUS_M = 0.008
CORNER_RADIUS_M = 0.012
CHEEK_RADIUS_M = 0.012
NOSE_WING_RADIUS_M = 0.006
BROW_RADIUS_M = 0.01
LID_RADIUS_M = 0.004
PUCKER_PULL = 0.3           # pucker moves the lips this share of the way to the mouth's centre line
BLINK_TRAVEL = 0.95         # a blink moves the upper lid this share of the way to the lower lid
# Other lid shapes as multiples of the blink's lid motion (negative: the lid opens).
EYE_WIDE_LID = -0.3
EYE_LOOK_UP_LID = -0.2
EYE_LOOK_DOWN_LID = 0.3
EYE_SQUINT_CHEEK = 0.5      # eyeSquint also raises the cheek by this share of cheekSquint

# Displacement of a full (score 1.0) shape at the centre of its region, mm (x, y, z); "/lower" and
# "/upper" are the lower and upper lip's parts. For the per-side shapes x points toward that
# side's outside (mirrored for the right side).
SHAPE_MM = {
    "jawLeft": (8, 0, 0), "jawRight": (-8, 0, 0), "jawForward": (0, 0, 6),
    "mouthClose/lower": (0, 5, 0), "mouthClose/upper": (0, -2, 0),
    "mouthPucker": (0, 0, 4),
    "mouthFunnel": (0, 0, 5), "mouthFunnel/upper": (0, 2, 0), "mouthFunnel/lower": (0, -2, 0),
    "mouthLeft": (7, 0, 0), "mouthRight": (-7, 0, 0),
    "mouthRollLower": (0, 1.5, -3), "mouthRollUpper": (0, -1.5, -3),
    "mouthShrugLower": (0, 3, 1), "mouthShrugUpper": (0, 2.5, 0),
    "mouthSmile": (6, 5, -3), "mouthFrown": (0, -5, 0), "mouthDimple": (4, 0, -3), "mouthStretch": (6, -3, 0),
    "mouthPress/lower": (0, 1.5, 0), "mouthPress/upper": (0, -1.5, 0),
    "mouthLowerDown": (0, -4, 0), "mouthUpperUp": (0, 4, 0),
    "cheekPuff": (6, 0, 3), "cheekSquint": (0, 3, 0), "noseSneer": (0, 3, 0),
    "browDown": (-1, -4, 0), "browInnerUp": (0, 5, 0), "browOuterUp": (0, 5, 0),
    "eyeSquint": (0, 2, 0), "eyeLookIn": (-0.5, 0, 0), "eyeLookOut": (0.5, 0, 0),
}


def _mm(name: str, sx: float = 1.0) -> list:
    """SHAPE_MM[name] in metres, x times sx (x stays an exact 0 where it is 0)."""
    x, y, z = SHAPE_MM[name]
    return [sx * x * MM if x else 0, y * MM if y else 0, z * MM if z else 0]


def _falloff(v: np.ndarray, ids, radius_m: float) -> np.ndarray:
    """Smooth falloff (1 at the landmarks, ~0 beyond 2 radii) over the mesh vertices v (468, 3)."""
    d = np.min(np.linalg.norm(v[:, None, :] - v[np.atleast_1d(ids)][None], axis=2), axis=1)
    return np.exp(-0.5 * (d / radius_m) ** 2)


def _jaw_shapes(v: np.ndarray, shapes: dict) -> None:
    """jawOpen (a rotation about the ears' axis), jawLeft/Right/Forward of the region below the lips."""
    y_mouth = v[MOUTH_CORNERS, 1].mean()
    lower = 1.0 / (1.0 + np.exp((v[:, 1] - (y_mouth - LIP_LINE_DROP_M)) / LIP_LINE_SOFTNESS_M))  # below the lip line
    jaw_w = lower * np.exp(-0.5 * (np.maximum(np.abs(v[:, 0]) - JAW_HALF_WIDTH_M, 0) / JAW_SIDE_FALLOFF_M) ** 2)
    jaw_w[UPPER_LIP] = 0.0
    pivot = np.array([0.0, v[EAR_POINTS, 1].mean(), v[EAR_POINTS, 2].mean()])  # near the ears
    ang = np.radians(JAW_OPEN_DEG)
    rel = v - pivot
    rot = np.stack([rel[:, 0], rel[:, 1] * np.cos(ang) + rel[:, 2] * np.sin(ang),
                    -rel[:, 1] * np.sin(ang) + rel[:, 2] * np.cos(ang)], 1)
    shapes["jawOpen"] = jaw_w[:, None] * (rot - rel)
    for name in ("jawLeft", "jawRight", "jawForward"):
        shapes[name] = jaw_w[:, None] * _mm(name)


def _mouth_shapes(v: np.ndarray, lips_up: np.ndarray, lips_lo: np.ndarray, shapes: dict) -> None:
    """The mouth shapes that move both sides together (close, pucker, funnel, left/right, roll, shrug)."""
    mouth = np.maximum(lips_up, lips_lo)
    shapes["mouthClose"] = lips_lo[:, None] * _mm("mouthClose/lower") + lips_up[:, None] * _mm("mouthClose/upper")
    centre = v[MOUTH_CORNERS].mean(0)
    toward_centre = np.zeros_like(v)
    toward_centre[:, 0] = -(v[:, 0] - centre[0]) * PUCKER_PULL
    shapes["mouthPucker"] = mouth[:, None] * (toward_centre + _mm("mouthPucker"))
    shapes["mouthFunnel"] = mouth[:, None] * _mm("mouthFunnel") + lips_up[:, None] * _mm("mouthFunnel/upper") \
        + lips_lo[:, None] * _mm("mouthFunnel/lower")
    shapes["mouthLeft"] = mouth[:, None] * _mm("mouthLeft")
    shapes["mouthRight"] = mouth[:, None] * _mm("mouthRight")
    shapes["mouthRollLower"] = lips_lo[:, None] * _mm("mouthRollLower")
    shapes["mouthRollUpper"] = lips_up[:, None] * _mm("mouthRollUpper")
    shapes["mouthShrugLower"] = np.maximum(lips_lo, _falloff(v, CHIN, CHIN_RADIUS_M))[:, None] * _mm("mouthShrugLower")
    shapes["mouthShrugUpper"] = lips_up[:, None] * _mm("mouthShrugUpper")


def _mouth_side_shapes(v: np.ndarray, side: str, sx: float, lips_up: np.ndarray, lips_lo: np.ndarray,
                       shapes: dict) -> None:
    """One side's mouth corner and lip shapes (smile, frown, dimple, stretch, press, lower/upper)."""
    corner = _falloff(v, MOUTH_CORNER[side], CORNER_RADIUS_M)
    for name in ("mouthSmile", "mouthFrown", "mouthDimple", "mouthStretch"):
        shapes[f"{name}{side}"] = corner[:, None] * _mm(name, sx)
    half = 1.0 / (1.0 + np.exp(-sx * v[:, 0] / MIDLINE_SOFTNESS_M))
    shapes[f"mouthPress{side}"] = half[:, None] * (lips_lo[:, None] * _mm("mouthPress/lower")
                                                   + lips_up[:, None] * _mm("mouthPress/upper"))
    shapes[f"mouthLowerDown{side}"] = (half * lips_lo)[:, None] * _mm("mouthLowerDown")
    shapes[f"mouthUpperUp{side}"] = (half * lips_up)[:, None] * _mm("mouthUpperUp")


def _cheek_nose_brow_shapes(v: np.ndarray, side: str, sx: float, shapes: dict) -> None:
    """One side's cheek, nose and brow shapes; cheekPuff and browInnerUp add up over both sides."""
    cheek = _falloff(v, CHEEK[side], CHEEK_RADIUS_M)
    shapes["cheekPuff"] = shapes["cheekPuff"] + cheek[:, None] * _mm("cheekPuff", sx)
    shapes[f"cheekSquint{side}"] = cheek[:, None] * _mm("cheekSquint")
    shapes[f"noseSneer{side}"] = _falloff(v, NOSE_WING[side], NOSE_WING_RADIUS_M)[:, None] * _mm("noseSneer")
    inner = _falloff(v, BROW_INNER[side], BROW_RADIUS_M)
    shapes[f"browDown{side}"] = np.maximum(inner, _falloff(v, BROW_OUTER[side], BROW_RADIUS_M))[:, None] \
        * _mm("browDown", sx)
    shapes["browInnerUp"] = shapes["browInnerUp"] + _falloff(v, BROW_INNER[side], BROW_RADIUS_M)[:, None] \
        * _mm("browInnerUp")
    shapes[f"browOuterUp{side}"] = _falloff(v, BROW_OUTER[side], BROW_RADIUS_M)[:, None] * _mm("browOuterUp")


def _eye_shapes(v: np.ndarray, side: str, sx: float, shapes: dict) -> None:
    """One side's eyelid shapes: the upper lid travels to the lower lid for a blink; squint and
    gaze shapes are fractions of that motion (eyeSquint also takes part of cheekSquint)."""
    up, lo = EYE_UPPER[side], EYE_LOWER[side]
    travel = v[lo] - v[up]  # corners (first and last) travel zero
    w_up = _falloff(v, up[1:-1], LID_RADIUS_M)
    nearest = np.argmin(np.linalg.norm(v[:, None] - v[up][None], axis=2), axis=1)
    lid = w_up[:, None] * travel[nearest] * BLINK_TRAVEL
    shapes[f"eyeBlink{side}"] = lid
    shapes[f"eyeWide{side}"] = EYE_WIDE_LID * lid
    shapes[f"eyeSquint{side}"] = _falloff(v, lo[1:-1], LID_RADIUS_M)[:, None] * _mm("eyeSquint") \
        + EYE_SQUINT_CHEEK * shapes[f"cheekSquint{side}"]
    shapes[f"eyeLookUp{side}"] = EYE_LOOK_UP_LID * lid
    shapes[f"eyeLookDown{side}"] = EYE_LOOK_DOWN_LID * lid
    shapes[f"eyeLookIn{side}"] = w_up[:, None] * _mm("eyeLookIn", sx)
    shapes[f"eyeLookOut{side}"] = w_up[:, None] * _mm("eyeLookOut", sx)


def procedural_prior(v: np.ndarray | None = None) -> np.ndarray:
    """(51, 468, 3) hand-made ARKit-like shapes on the face v (468, 3) (default: canonical), metres.

    Crude but anatomically directed: a fallback for shapes no take shows. Magnitudes are those
    of a full (score 1.0) expression of an adult face.
    """
    v = load_canonical_face().vertices_m if v is None else v
    shapes = {n: np.zeros((N_MESH, 3)) for n in ARKIT_NAMES}
    _jaw_shapes(v, shapes)
    lips_up = _falloff(v, UPPER_LIP, LIP_RADIUS_M)
    lips_lo = _falloff(v, LOWER_LIP, LIP_RADIUS_M)
    _mouth_shapes(v, lips_up, lips_lo, shapes)
    for side, sx in SIDES:
        _mouth_side_shapes(v, side, sx, lips_up, lips_lo, shapes)
        _cheek_nose_brow_shapes(v, side, sx, shapes)
        _eye_shapes(v, side, sx, shapes)
    return np.stack([shapes[n] for n in ARKIT_NAMES]).astype(np.float64)


def build_prior(tracks_list: list[Tracks], lam: float = PRIOR_TO_PROCEDURAL) -> np.ndarray:
    """Generic prior (51, 468, 3), metres: the rig regression over several real takes, pulled to
    procedural shapes.

    Each take's deltas are measured on its own subject; they are averaged after the fit through
    one shared design (all frames of all takes, one neutral per take).
    """
    proc = procedural_prior()
    design_rows, target_rows, n_takes = [], [], len(tracks_list)
    for j, tr in enumerate(tracks_list):
        pts = face_points_m(tr)
        ok = tr.face_valid & np.isfinite(pts).all(axis=(1, 2))
        onehot = np.zeros((ok.sum(), n_takes))
        onehot[:, j] = 1.0
        design_rows.append(np.c_[onehot, np.clip(tr.blendshapes[ok, 1:], 0, 1)])
        target_rows.append(pts[ok, :N_MESH].reshape(ok.sum(), -1))
    design, targets = np.vstack(design_rows).astype(np.float64), np.vstack(target_rows)
    n_shapes = design.shape[1] - n_takes
    beta = ridge_solve(design, targets, n_takes, proc.reshape(n_shapes, -1), lam)
    return beta[n_takes:].reshape(n_shapes, N_MESH, 3)


def build_prior_file(samples: list[str], out: Path, log: Callable[[str], None] | None = None) -> Path:
    """Track the named sample videos (`python -m pipeline.samples list`) with MediaPipe, build the
    prior from them and write it to `out` (deltas_m float32 (51, 468, 3), names, sources).
    log: called with one line per video before it is tracked. Returns `out`."""
    prior = build_prior(track_samples(samples, log))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, deltas_m=prior.astype(np.float32), names=np.array(ARKIT_NAMES),
                        sources=np.array(samples))
    return out
