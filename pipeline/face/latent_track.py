"""The settings of the latent expression stage (`LatentParams`) and what it produces for a take
(`LatentTrack`, saved as the session's latent.npz). Shapes: N frames, L latent dimensions."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.core.atomic import atomic_path


@dataclass
class LatentParams:
    """smooth:        weight of the jitter term against the fidelity term (batch); 0 = no smoothing,
                      1 (default) removes 50-75 % of MediaPipe's jitter (benchmark videos).
    iters, lr:        optimiser steps and Adam learning rate of the batch smoother.
    fit_iters:        Gauss-Newton steps of the per-frame latent fit.
    fill_max_s:       interior gaps up to this long (seconds) are filled by latent interpolation.
    relax_s:          time constant (s) of the ease toward the neutral face where the face is lost.
    live_response:    live filter: process noise / measured observation noise (1/s^3 units of a
                      constant-velocity model); larger follows faster with more jitter.
    live_velocity_tau_s: live filter: the velocity state decays with this time constant.
    """

    smooth: float = 1.0
    iters: int = 400
    lr: float = 0.05
    fit_iters: int = 6
    fill_max_s: float = 1.0
    relax_s: float = 0.3
    live_response: float = 1000.0
    live_velocity_tau_s: float = 0.5


@dataclass
class LatentTrack:
    """The latent expression of a take.

    t_s:      (N,) float64 frame times, seconds.
    mean:     (N, L) float32 latent expression per frame.
    var:      (N, L) float32 its uncertainty per dimension: for observed frames the Gauss-Newton
              (Laplace) variance of the per-frame fit given the measured score noise; growing
              across filled gaps; the take's latent variance where the face is lost.
    observed: (N,) bool, at least one camera saw the face (a real tracking result).
    filled:   (N,) bool, not observed but interpolated in latent space (interior gap <= fill_max_s).
    weights:  (N, 51) float32 decoded ARKit weights in (0, 1), the head's morph weights.
    info:     small JSON-able summary (mode, latent size, smoothing, cameras, timings).
    """

    t_s: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    observed: np.ndarray
    filled: np.ndarray
    weights: np.ndarray
    info: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        """latent.npz: the arrays above (no pickles) and `info` as a JSON string."""
        with atomic_path(path) as tmp:  # OutputError naming the file when the disk refuses it
            np.savez_compressed(tmp, t_s=self.t_s, mean=self.mean, var=self.var, observed=self.observed,
                                filled=self.filled, weights=self.weights,
                                info=np.array(json.dumps(self.info)))

    @classmethod
    def load(cls, path: str | Path) -> "LatentTrack":
        """Read a latent.npz written by `save`."""
        with np.load(path, allow_pickle=False) as z:
            return cls(t_s=z["t_s"], mean=z["mean"], var=z["var"], observed=z["observed"],
                       filled=z["filled"], weights=z["weights"], info=json.loads(str(z["info"])))

    def summary(self) -> dict:
        """Small dict for glTF extras / the manifest (the track itself goes in a buffer)."""
        return {**self.info, "frames": int(len(self.t_s)), "latent_size": int(self.mean.shape[1]),
                "observed_frames": int(self.observed.sum()), "filled_frames": int(self.filled.sum())}
