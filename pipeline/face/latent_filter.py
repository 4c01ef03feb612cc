"""The causal (live) latent expression filter: one frame of blendshape scores in, that frame's
51 ARKit morph weights out, in constant time per frame and without looking ahead.

    filt = LatentFilter(load_model())           # pipeline.face.latent_rig.load_model
    for frame in stream:
        w = filt.update(scores_or_None, t_s)    # (51,) float32 weights in (0, 1) for this frame

Per latent dimension (L of them, the VAE's latent size): a constant-velocity Kalman filter on the
latent fitted to the frame's scores (models.expression_latent.fit_latent). The observation noise
is measured on the fly from the fitted latents' second differences; the process noise is
`LatentParams.live_response` times it. While no camera sees the face the expression holds (the
velocity decays) for `fill_max_s`, then eases toward the neutral face with time constant
`relax_s`. Measured (benchmarks/results/expression.md): it does NOT beat a causal One Euro filter
at matched jitter.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from models.expression_latent import as51, decode, fit_latent, rest_latent
from models.expression_vae import ExpressionVAE
from pipeline.face.latent_track import LatentParams

MAD_TO_STD = 1.4826       # median absolute deviation -> standard deviation of a Gaussian
D2_NOISE_GAIN = 6.0       # white noise of variance r has second differences of variance 6 r
NOISE_HISTORY = 90        # frames: the live noise estimate uses this many last second differences
NOISE_MIN_SAMPLES = 10    # second differences needed before the estimate replaces the default
DEFAULT_LATENT_NOISE = 1e-3  # latent units^2: observation noise until enough frames are seen
MIN_LATENT_NOISE = 1e-6   # latent units^2: floor of the measured noise (a still face is not exact)
MIN_DT_S = 1e-4           # s: shortest frame interval (repeated timestamps would divide by zero)
MIN_TIME_CONSTANT_S = 1e-3  # s: floor of the velocity and relax time constants
INITIAL_VELOCITY_SPREAD_S = 0.1  # s: the first velocity is as uncertain as after this much process noise


def robust_noise_var(d2: np.ndarray) -> np.ndarray:
    """(K, D) second differences of a noisy signal -> (D,) robust estimate of the variance of its
    frame-to-frame noise (median spread, so expression changes do not count as noise)."""
    return (MAD_TO_STD * np.median(np.abs(d2), 0)) ** 2 / D2_NOISE_GAIN


class LatentFilter:
    """Causal latent filter for a live loop: one `update` per frame, constant time per frame.

    `scores` is one camera's (52,) or (51,) scores, a list of them (one per camera, None where a
    camera has no face), or None when no camera sees the face. Per latent dimension: a
    constant-velocity Kalman filter; the observation noise is the median spread of the last 90
    fitted latents' second differences (until 10 frames are seen, a default); the process noise is
    `live_response` times it. While unobserved the expression holds (velocity decays) for
    `fill_max_s`, then eases toward the neutral face. After `update`, `mean` and `var` (L,) hold
    the latent estimate and `holding` tells whether this frame held the last expression.
    """

    def __init__(self, model: ExpressionVAE, params: LatentParams = LatentParams(),
                 default_noise: float = DEFAULT_LATENT_NOISE):
        self.model = model
        self.params = params
        self.latent_size = model.cfg.latent
        self.z_rest = rest_latent(model).astype(np.float64)
        self.default_noise = default_noise
        self.state: np.ndarray | None = None    # (L, 2) position, velocity per latent dimension
        self.cov: np.ndarray | None = None      # (L, 2, 2) their covariance
        self.t_last: float | None = None
        self.t_seen: float | None = None
        self._recent: deque = deque(maxlen=3)   # last fitted latents of consecutive observed frames
        self._d2: deque = deque(maxlen=NOISE_HISTORY)
        self.holding = False

    @property
    def mean(self) -> np.ndarray:
        """(L,) float32 latent estimate (the neutral face's before the first observation)."""
        return (self.state[:, 0] if self.state is not None else self.z_rest).astype(np.float32)

    @property
    def var(self) -> np.ndarray:
        """(L,) float32 its variance (1 before the first observation)."""
        return (self.cov[:, 0, 0] if self.cov is not None else np.ones(self.latent_size)).astype(np.float32)

    def _noise(self) -> np.ndarray:
        """(L,) observation noise variance of a fitted latent."""
        if len(self._d2) < NOISE_MIN_SAMPLES:
            return np.full(self.latent_size, self.default_noise)
        return np.maximum(robust_noise_var(np.array(self._d2)), MIN_LATENT_NOISE)

    def update(self, scores, t_s: float) -> np.ndarray:
        """One frame -> its (51,) weights."""
        cams = scores if isinstance(scores, (list, tuple)) else [scores]
        rows = [as51(s)[0] for s in cams if s is not None and np.isfinite(np.asarray(s, np.float32)).all()]
        z_obs = fit_latent(self.model, np.stack(rows)[None], iters=self.params.fit_iters)[0] if rows else None
        return self.step(z_obs, len(rows), float(t_s))

    def step(self, z_obs: np.ndarray | None, n_cams: int, t: float) -> np.ndarray:
        """One frame given its fitted latent z_obs (L,) (None: no camera sees the face), the number
        of cameras it fuses and its time t (s) -> the frame's (51,) weights."""
        if z_obs is not None:
            self._remember(z_obs)
        noise = self._noise()
        if self.state is None:
            return self._start(z_obs, noise, t)
        dt = max(t - self.t_last, MIN_DT_S)
        self.t_last = t
        self._predict(dt, noise)
        self.holding = False
        if z_obs is not None:
            self._correct(z_obs, noise / max(n_cams, 1))
            self.t_seen = t
        else:
            self._coast(t, dt)
        return decode(self.model, self.state[None, :, 0])[0]

    def _remember(self, z_obs: np.ndarray) -> None:
        """Keep the second difference of the last three observed latents, if consecutive."""
        if self.t_seen is None or self.t_seen != self.t_last:
            self._recent.clear()  # second differences only over consecutive observations
        self._recent.append(np.asarray(z_obs, np.float64))
        if len(self._recent) == 3:
            older, prev, cur = self._recent
            self._d2.append(cur - 2 * prev + older)

    def _start(self, z_obs: np.ndarray | None, noise: np.ndarray, t: float) -> np.ndarray:
        """Before the first observation: the neutral face; at it: start the state there."""
        if z_obs is None:
            self.t_last = t
            return decode(self.model, self.z_rest[None])[0]
        self.state = np.stack([z_obs, np.zeros(self.latent_size)], 1)
        self.cov = np.zeros((self.latent_size, 2, 2))
        self.cov[:, 0, 0] = noise
        self.cov[:, 1, 1] = noise * self.params.live_response * INITIAL_VELOCITY_SPREAD_S
        self.t_last = self.t_seen = t
        return decode(self.model, self.state[None, :, 0])[0]

    def _predict(self, dt: float, noise: np.ndarray) -> None:
        """Advance state and covariance by dt seconds (velocity decaying with live_velocity_tau_s)."""
        p = self.params
        decay = np.exp(-dt / max(p.live_velocity_tau_s, MIN_TIME_CONSTANT_S))
        transition = np.array([[1.0, dt], [0.0, decay]])
        q = p.live_response * noise
        process = np.stack([np.stack([q * dt ** 3 / 3, q * dt ** 2 / 2], -1),
                            np.stack([q * dt ** 2 / 2, q * dt], -1)], 1)
        self.state = self.state @ transition.T
        self.cov = np.einsum("ij,ljk,mk->lim", transition, self.cov, transition) + process

    def _correct(self, z_obs: np.ndarray, obs_var: np.ndarray) -> None:
        """Kalman update of every dimension with the observed latent (variance obs_var (L,))."""
        innovation_var = self.cov[:, 0, 0] + obs_var
        gain = self.cov[:, :, 0] / innovation_var[:, None]
        self.state = self.state + gain * (z_obs - self.state[:, 0])[:, None]
        self.cov = self.cov - gain[:, :, None] * self.cov[:, 0, :][:, None, :]

    def _coast(self, t: float, dt: float) -> None:
        """No observation: hold for fill_max_s after the last one, then ease to the neutral face."""
        p = self.params
        gone = t - (self.t_seen if self.t_seen is not None else t)
        if gone > p.fill_max_s:
            keep = np.exp(-dt / max(p.relax_s, MIN_TIME_CONSTANT_S))
            self.state[:, 0] = self.z_rest + keep * (self.state[:, 0] - self.z_rest)
            self.state[:, 1] *= keep
        else:
            self.holding = True
