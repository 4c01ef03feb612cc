"""Expression through the latent rig: MediaPipe's blendshape scores -> the expression VAE's latent
space -> smoothed, gap-filled, multi-camera latent track -> the decoded weights that drive the head.

Shapes: N frames, C cameras, L latent dimensions (the checkpoint's, 16 by default), 51 ARKit
weights. Scores may be given as (N, 52) in MediaPipe order (`_neutral` first, dropped) or (N, 51);
NaN rows mean "this camera has no face in this frame". Only real observations may be passed:
frames that `fill_short_gaps` interpolated must be NaN (see `observed_scores`).

Per frame, the latent that best explains every camera that sees the face is found by fitting the
decoder to their scores (Gauss-Newton from the encoder's mean), so several cameras are fused by
encoding each view and asking one latent to explain them all. Then:

* batch (`causal=False`, no lag): the latent track of all observed frames is optimised jointly for
  fidelity to the scores (a robust, nearly L1, penalty per weight and camera) plus
  `smooth` times the jitter of the decoded weights (the same penalty on their second
  differences), a trend filter through the decoder. The result is a function of the whole take,
  so it has no lag.
* live (`causal=True`, `LatentFilter`): a Kalman filter per latent dimension with a constant-
  velocity model; the observation noise is measured on the fly from the fitted latents'
  second differences, the process noise is `live_response` times it.

Frames where no camera sees the face: interior gaps up to `fill_max_s` are filled by linear
interpolation in latent space (decoded, the face moves through plausible expressions between its
neighbours; `filled`); longer gaps and the take's ends ease toward the neutral face with time
constant `relax_s` (not `filled`: a lost face goes neutral, as in the rest of the pipeline). The
live filter cannot look ahead: it holds the last expression for `fill_max_s`, then eases to
neutral.

Per-subject fine-tuning (`finetune`, about 8 s on one core) adapts the VAE to the take itself:
its own denoising objective, then the decoder and per-frame latents together, which brings the
decoder's error on the subject's frames from 4-20e-3 (pretrained) to 0.2-1e-3 per weight.

Measured on held-out real video (benchmarks/results/expression.md): the batch mode has a better
jitter-fidelity trade-off than a zero-phase (forward-backward) One Euro filter tuned per video
(lower error at matched jitter in 14 of 15 comparisons, a tie in the last; median error ratio
0.73), though the same objective solved on the weights without the VAE is better still; the
live filter does NOT beat a causal One Euro filter at matched jitter (16-63 % more error, more
lag); latent gap filling is NOT better than linear interpolation of the scores (4 % worse for
1 s gaps, 25 % worse for 0.2 s gaps, pooled), because the decoder reproduces frames it was not
fine-tuned on less closely than the take's other frames.
"""
from __future__ import annotations

import copy
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.expression_vae import ExpressionVAE, load_checkpoint
from pipeline.core.assets import ASSETS_DIR
from pipeline.core.errors import InputError
from pipeline.core.tracks import ARKIT_NAMES, Tracks, gap_spans

DEFAULT_CHECKPOINT = ASSETS_DIR / "models" / "expression_vae.pt"
N_WEIGHTS = len(ARKIT_NAMES)
_CHARB_EPS = 1e-4  # robust penalty sqrt(x^2 + eps^2): quadratic below eps, absolute value above


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
        import json
        path = Path(path)
        tmp = path.with_name(path.name + ".part.npz")
        np.savez_compressed(tmp, t_s=self.t_s, mean=self.mean, var=self.var, observed=self.observed,
                            filled=self.filled, weights=self.weights,
                            info=np.array(json.dumps(self.info)))
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "LatentTrack":
        import json
        with np.load(path, allow_pickle=False) as z:
            return cls(t_s=z["t_s"], mean=z["mean"], var=z["var"], observed=z["observed"],
                       filled=z["filled"], weights=z["weights"], info=json.loads(str(z["info"])))

    def summary(self) -> dict:
        """Small dict for glTF extras / the manifest (the track itself goes in a buffer)."""
        return {**self.info, "frames": int(len(self.t_s)), "latent_size": int(self.mean.shape[1]),
                "observed_frames": int(self.observed.sum()), "filled_frames": int(self.filled.sum())}


# ----------------------------------------------------------------------------------------------
# model helpers


def load_model(path: str | Path | None = None) -> ExpressionVAE:
    """The default (or given) checkpoint, in eval mode. AssetError if missing or corrupt."""
    return load_checkpoint(path or DEFAULT_CHECKPOINT)[0]


def _as51(scores: np.ndarray) -> np.ndarray:
    x = np.asarray(scores, np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] not in (N_WEIGHTS, N_WEIGHTS + 1):
        raise InputError(f"blendshape scores must be (N, 52) or (N, 51), got {np.shape(scores)}")
    return x[:, 1:] if x.shape[1] == N_WEIGHTS + 1 else x


def observed_scores(tracks: Tracks) -> np.ndarray:
    """(N, 52) scores of the frames MediaPipe really tracked; NaN where the face was missing or
    only gap-filled (`face_filled`)."""
    ok = tracks.face_valid & ~tracks.face_filled & np.isfinite(tracks.blendshapes).all(1)
    return np.where(ok[:, None], tracks.blendshapes, np.nan).astype(np.float32)


@torch.no_grad()
def encode(model: ExpressionVAE, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 51|52) scores (NaN rows allowed) -> encoder mean, var (N, L); NaN rows stay NaN."""
    x = _as51(scores)
    ok = np.isfinite(x).all(1)
    mean = np.full((len(x), model.cfg.latent), np.nan, np.float32)
    var = np.full_like(mean, np.nan)
    if ok.any():
        mu, logvar = model.encode(torch.from_numpy(np.clip(x[ok], 0, 1)))
        mean[ok], var[ok] = mu.numpy(), logvar.exp().numpy()
    return mean, var


@torch.no_grad()
def decode(model: ExpressionVAE, z: np.ndarray) -> np.ndarray:
    """(N, L) latents -> (N, 51) float32 weights in (0, 1)."""
    return model.decode(torch.as_tensor(np.asarray(z, np.float32))).numpy()


def _jacobian(model: ExpressionVAE, z: torch.Tensor) -> torch.Tensor:
    """(B, L) -> decoder Jacobian (B, 51, L), in closed form for the decoder's
    Linear-SiLU-Linear-SiLU-Linear-sigmoid layers (torch.func for any other decoder)."""
    layers = list(model.decoder)
    kinds = [type(m) for m in layers]
    if kinds != [torch.nn.Linear, torch.nn.SiLU, torch.nn.Linear, torch.nn.SiLU, torch.nn.Linear]:
        from torch.func import jacfwd, vmap
        return vmap(jacfwd(lambda v: model.decode(v[None])[0]))(z)
    l1, _, l2, _, l3 = layers

    def dsilu(h):
        sg = torch.sigmoid(h)
        return sg * (1 + h * (1 - sg))

    h1 = l1(z)
    h2 = l2(torch.nn.functional.silu(h1))
    y = torch.sigmoid(l3(torch.nn.functional.silu(h2)))
    J = dsilu(h1)[:, :, None] * l1.weight                     # (B, H, L)
    J = dsilu(h2)[:, :, None] * (l2.weight @ J)               # (B, H, L)
    return (y * (1 - y))[:, :, None] * (l3.weight @ J)        # (B, 51, L)


@torch.no_grad()
def fit_latent(model: ExpressionVAE, scores: np.ndarray, z0: np.ndarray | None = None,
               iters: int = 6) -> np.ndarray:
    """Per-frame latent that best decodes to the scores of every camera seeing the face.

    scores: (B, C, 51) with NaN rows for cameras without a face (or (B, 51) for one camera);
    z0: (B, L) start (default: mean of the cameras' encoder means). Least squares, Gauss-Newton
    with Levenberg-Marquardt damping per frame. Frames no camera sees keep z0 (or NaN).
    Returns (B, L) float32.
    """
    y = np.asarray(scores, np.float32)
    if y.ndim == 2:
        y = y[:, None]
    B, C, _ = y.shape
    seen = np.isfinite(y).all(2)                                         # (B, C)
    rows = seen.any(1)
    if z0 is None:
        enc = np.stack([encode(model, y[:, c])[0] for c in range(C)], 1)  # (B, C, L)
        with np.errstate(invalid="ignore"):
            z0 = np.nanmean(np.where(seen[..., None], enc, np.nan), axis=1) if C > 1 else enc[:, 0]
    out = np.array(z0, np.float32, copy=True)
    if not rows.any() or iters <= 0:
        return out
    Y = torch.from_numpy(np.nan_to_num(np.clip(y[rows], 0, 1)))          # (b, C, 51)
    M = torch.from_numpy(seen[rows].astype(np.float32))[..., None]      # (b, C, 1)
    nc = M.sum(1)                                                       # (b, 1)
    z = torch.from_numpy(out[rows])
    L = z.shape[1]
    eye = torch.eye(L)

    def cost(zz):
        r = (model.decode(zz)[:, None] - Y) * M
        return (r ** 2).sum((1, 2))

    mu = torch.full((len(z),), 1e-3)
    c0 = cost(z)
    for _ in range(iters):
        J = _jacobian(model, z)                                          # (b, 51, L)
        r = ((model.decode(z)[:, None] - Y) * M).sum(1)                  # (b, 51) summed over cams
        H = nc[..., None] * (J.transpose(1, 2) @ J)                      # (b, L, L)
        g = (J.transpose(1, 2) @ r[..., None])[..., 0]
        H = H + mu[:, None, None] * (torch.diagonal(H, dim1=1, dim2=2).mean(1)[:, None, None] + 1e-6) * eye
        step = torch.linalg.solve(H, -g[..., None])[..., 0]
        zn = z + step
        cn = cost(zn)
        better = cn < c0
        z = torch.where(better[:, None], zn, z)
        c0 = torch.where(better, cn, c0)
        mu = torch.where(better, mu * 0.3, mu * 10.0).clamp(1e-6, 1e6)
    out[rows] = z.numpy()
    return out


_REST_CACHE: "weakref.WeakKeyDictionary[ExpressionVAE, np.ndarray]" = weakref.WeakKeyDictionary()


def rest_latent(model: ExpressionVAE) -> np.ndarray:
    """(L,) the latent of the neutral face (all scores 0): where a lost face relaxes to."""
    if model not in _REST_CACHE:
        _REST_CACHE[model] = fit_latent(model, np.zeros((1, N_WEIGHTS), np.float32), iters=20)[0]
    return _REST_CACHE[model]


def score_noise(y: np.ndarray) -> float:
    """Variance of the tracker's frame-to-frame noise on the scores (N, 51), NaN rows allowed:
    robust (median) spread of second differences of consecutive frames, divided by 6 (white noise
    of variance r has second differences of variance 6 r). Averaged over the 51 weights."""
    y = np.asarray(y, np.float64)
    d2 = y[2:] - 2 * y[1:-1] + y[:-2]
    d2 = d2[np.isfinite(d2).all(1)]
    if len(d2) < 10:
        return 1e-4
    return float(max(np.mean((1.4826 * np.median(np.abs(d2), 0)) ** 2 / 6.0), 1e-8))


# ----------------------------------------------------------------------------------------------
# per-subject fine-tuning


def finetune(model: ExpressionVAE, tracks_or_scores, seconds: float = 15.0, vae_steps: int = 800,
             decoder_steps: int = 2500, seed: int = 0) -> ExpressionVAE:
    """A copy of `model` fine-tuned on the take itself, in a few seconds of CPU time.

    tracks_or_scores: Tracks (one, or a list, e.g. one per camera) or an array of scores
    (N, 51|52) with NaN rows; only real observations are used (not gap-filled frames).
    Two stages: `vae_steps` steps of the VAE's own (denoising) training from the checkpoint, then
    `decoder_steps` steps of `refine_decoder` (decoder and per-frame latents together), which
    brings the decoder's error on the subject's frames down to a few 1e-4 per weight. The step
    counts make a run reproducible (about 8 s on one core, whatever the take's length); `seconds`
    only caps the wall-clock time on a slow or busy machine (30 % of it for the first stage).
    With fewer than 30 frames the model is returned unchanged (a copy)."""
    from models.expression_training import FINETUNE, frames_of, refine_decoder, train

    items = tracks_or_scores if isinstance(tracks_or_scores, (list, tuple)) else [tracks_or_scores]
    xs = []
    for it in items:
        if isinstance(it, Tracks):
            xs.append(frames_of(it))
        else:
            x = _as51(it)
            xs.append(np.clip(x[np.isfinite(x).all(1)], 0, 1))
    x = np.concatenate(xs).astype(np.float32) if xs else np.zeros((0, N_WEIGHTS), np.float32)
    m = copy.deepcopy(model)
    if len(x) < 30:
        return m.eval()
    t0 = time.perf_counter()
    if vae_steps > 0:
        m, _ = train(x, m, epochs=1_000_000, seconds=0.3 * seconds, max_steps=vae_steps, seed=seed,
                     **FINETUNE)
    if decoder_steps > 0:
        z0 = fit_latent(m, x, iters=4)
        left = max(seconds - (time.perf_counter() - t0), 0.5)
        m, _ = refine_decoder(m, x, z0, steps=decoder_steps, seconds=left, seed=seed)
    return m


# ----------------------------------------------------------------------------------------------
# the stage


def _stack_cameras(scores_per_camera: list[np.ndarray], n: int) -> np.ndarray:
    if isinstance(scores_per_camera, np.ndarray) and scores_per_camera.ndim == 2:
        scores_per_camera = [scores_per_camera]
    cams = [_as51(s) for s in scores_per_camera]
    if not cams or any(len(c) != n for c in cams):
        raise InputError(f"every camera needs one row of scores per frame ({n} frames), got "
                         f"{[len(c) for c in cams]}")
    return np.clip(np.stack(cams, 1), 0, 1)  # NaN stays NaN


def _charb(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x * x + _CHARB_EPS ** 2)


def _smooth_batch(model: ExpressionVAE, Y: np.ndarray, seen: np.ndarray, z0: np.ndarray,
                  obs_idx: np.ndarray, p: LatentParams) -> np.ndarray:
    """Trend filter through the decoder over observed frames. Y (n, C, 51), seen (n, C), z0 (n, L)
    for the observed frames only; obs_idx (n,) their frame indices (second differences only over
    runs of consecutive frames)."""
    if p.smooth <= 0 or p.iters <= 0 or len(z0) < 3:
        return z0
    tri = torch.from_numpy(((obs_idx[1:-1] - obs_idx[:-2]) == 1) & ((obs_idx[2:] - obs_idx[1:-1]) == 1))
    tri = tri.float()[:, None]
    n_tri = max(float(tri.sum()), 1.0)
    Yt = torch.from_numpy(np.nan_to_num(Y).astype(np.float32))
    Mt = torch.from_numpy(seen.astype(np.float32))[..., None]
    n_obs = float(len(z0))
    z = torch.tensor(z0, dtype=torch.float32, requires_grad=True)
    opt = torch.optim.Adam([z], lr=p.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, p.iters)
    for _ in range(p.iters):
        w = model.decode(z)
        fit = (_charb(w[:, None] - Yt) * Mt).sum() / (n_obs * N_WEIGHTS)
        jit = (_charb(w[2:] - 2 * w[1:-1] + w[:-2]) * tri).sum() / (n_tri * N_WEIGHTS)
        loss = fit + p.smooth * jit
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return z.detach().numpy().astype(np.float32)


@torch.no_grad()
def _laplace_var(model: ExpressionVAE, z: np.ndarray, seen: np.ndarray, r_cam: np.ndarray) -> np.ndarray:
    """Diagonal of (sum over cameras of J^T J / r_c + I)^-1 per frame: z (n, L), seen (n, C)."""
    if len(z) == 0:
        return np.zeros_like(z)
    J = _jacobian(model, torch.from_numpy(z))
    prec = torch.from_numpy((seen / r_cam[None]).sum(1).astype(np.float32))[:, None, None]
    H = prec * (J.transpose(1, 2) @ J) + torch.eye(z.shape[1])
    return torch.diagonal(torch.linalg.inv(H), dim1=1, dim2=2).numpy().astype(np.float32)


def _fill_gaps(t: np.ndarray, mean: np.ndarray, var: np.ndarray, observed: np.ndarray,
               z_rest: np.ndarray, p: LatentParams) -> np.ndarray:
    """Fill unobserved rows of mean / var in place; return the `filled` flags."""
    n, L = mean.shape
    filled = np.zeros(n, bool)
    if not observed.any():
        mean[:] = z_rest
        var[:] = 1.0
        return filled
    zo = mean[observed]
    prior_var = np.maximum(np.var(zo, 0), 1e-4) if len(zo) > 1 else np.ones(L)
    dz = np.diff(zo, axis=0)
    dt = np.diff(t[observed])
    rate = np.median(dz ** 2 / np.maximum(dt, 1e-3)[:, None], 0) if len(dz) else np.ones(L)
    frame_dt = float(np.median(np.diff(t))) if n > 1 else 0.0
    for s, e in gap_spans(observed):
        left, right = s - 1, e  # nearest observed frames (may be out of range)
        # a gap's length is the time missing: (frames missing) x frame interval
        if left >= 0 and right < n and t[right] - t[left] <= p.fill_max_s + frame_dt + 1e-9:
            w = ((t[s:e] - t[left]) / (t[right] - t[left]))[:, None]
            mean[s:e] = (1 - w) * mean[left] + w * mean[right]
            dl, dr = t[s:e] - t[left], t[right] - t[s:e]
            var[s:e] = (1 - w) * var[left] + w * var[right] + rate * (dl * dr / (dl + dr))[:, None]
            filled[s:e] = True
            continue
        z = np.repeat(z_rest[None], e - s, 0).astype(np.float64)
        v = np.repeat(prior_var[None], e - s, 0).astype(np.float64)
        for edge in (left, right):
            if 0 <= edge < n:
                k = np.exp(-np.abs(t[s:e] - t[edge]) / max(p.relax_s, 1e-3))[:, None]
                z += k * (mean[edge] - z_rest)
                v = (1 - k) * v + k * var[edge]
        mean[s:e] = z
        var[s:e] = v
    return filled


def latent_expression(model: ExpressionVAE, scores_per_camera, t_s: np.ndarray,
                      params: LatentParams = LatentParams(), causal: bool = False) -> LatentTrack:
    """The stage: scores of one or more cameras -> LatentTrack (latent mean/var, flags, weights).

    scores_per_camera: list of C arrays (N, 52) in MediaPipe order or (N, 51), NaN rows where that
    camera has no (real) face; a single (N, 52|51) array means one camera. t_s: (N,) seconds,
    increasing. causal=False: batch smoothing over the whole take, no lag. causal=True: the live
    filter run frame by frame (what `LatentFilter` gives in a live loop).
    """
    t0 = time.perf_counter()
    t = np.asarray(t_s, np.float64)
    n = len(t)
    Y = _stack_cameras(scores_per_camera, n)                         # (N, C, 51)
    seen = np.isfinite(Y).all(2)                                     # (N, C)
    observed = seen.any(1)
    L = model.cfg.latent
    z_fit = fit_latent(model, Y, iters=params.fit_iters)              # (N, L), NaN where unobserved
    r_cam = np.array([score_noise(Y[:, c]) for c in range(Y.shape[1])])
    if causal:
        filt = LatentFilter(model, params)
        mean = np.zeros((n, L), np.float32)
        var = np.zeros((n, L), np.float32)
        weights = np.zeros((n, N_WEIGHTS), np.float32)
        filled = np.zeros(n, bool)
        for k in range(n):
            weights[k] = filt._step(z_fit[k] if observed[k] else None, int(seen[k].sum()), t[k])
            mean[k], var[k] = filt.mean, filt.var
            filled[k] = not observed[k] and filt.holding
        info = {"mode": "live", "live_response": params.live_response}
    else:
        mean = np.full((n, L), np.nan, np.float32)
        var = np.full((n, L), np.nan, np.float32)
        idx = np.flatnonzero(observed)
        if len(idx):
            zs = _smooth_batch(model, Y[idx], seen[idx], z_fit[idx], idx, params)
            mean[idx] = zs
            var[idx] = _laplace_var(model, zs, seen[idx], r_cam)
        filled = _fill_gaps(t, mean, var, observed, rest_latent(model), params)
        weights = decode(model, mean)
        info = {"mode": "batch", "smooth": params.smooth}
    info.update({"latent_size": L, "cameras": int(Y.shape[1]), "fill_max_s": params.fill_max_s,
                 "score_noise_std": [round(float(np.sqrt(r)), 6) for r in r_cam],
                 "seconds": round(time.perf_counter() - t0, 3)})
    return LatentTrack(t, mean.astype(np.float32), var.astype(np.float32), observed, filled,
                       weights.astype(np.float32), info)


# ----------------------------------------------------------------------------------------------
# live


class LatentFilter:
    """Causal latent filter for a live loop: one `update` per frame, constant time per frame.

        filt = LatentFilter(load_model())
        for frame in stream:
            w = filt.update(scores_or_None, t_s)      # (51,) weights for this frame

    `scores` is one camera's (52,) or (51,) scores, a list of them (one per camera, None where a
    camera has no face), or None when no camera sees the face. Per latent dimension: a
    constant-velocity Kalman filter; the observation noise is the median spread of the last 90
    fitted latents' second differences (until 10 frames are seen, a default); the process noise is
    `live_response` times it. While unobserved the expression holds (velocity decays) for
    `fill_max_s`, then eases toward the neutral face. After `update`, `mean` and `var` (L,) hold
    the latent estimate.
    """

    def __init__(self, model: ExpressionVAE, params: LatentParams = LatentParams(),
                 default_noise: float = 1e-3):
        self.model = model
        self.p = params
        self.L = model.cfg.latent
        self.z_rest = rest_latent(model).astype(np.float64)
        self.default_noise = default_noise
        self.x: np.ndarray | None = None        # (L, 2) position, velocity
        self.P: np.ndarray | None = None        # (L, 2, 2)
        self.t_last: float | None = None
        self.t_seen: float | None = None
        self._recent: deque = deque(maxlen=3)   # last fitted latents of consecutive observed frames
        self._d2: deque = deque(maxlen=90)
        self.holding = False

    @property
    def mean(self) -> np.ndarray:
        return (self.x[:, 0] if self.x is not None else self.z_rest).astype(np.float32)

    @property
    def var(self) -> np.ndarray:
        return (self.P[:, 0, 0] if self.P is not None else np.ones(self.L)).astype(np.float32)

    def _noise(self) -> np.ndarray:
        if len(self._d2) < 10:
            return np.full(self.L, self.default_noise)
        d2 = np.array(self._d2)
        return np.maximum((1.4826 * np.median(np.abs(d2), 0)) ** 2 / 6.0, 1e-6)

    def update(self, scores, t_s: float) -> np.ndarray:
        """One frame -> its (51,) weights."""
        cams = scores if isinstance(scores, (list, tuple)) else [scores]
        rows = [_as51(s)[0] for s in cams if s is not None and np.isfinite(np.asarray(s, np.float32)).all()]
        z_obs = fit_latent(self.model, np.stack(rows)[None], iters=self.p.fit_iters)[0] if rows else None
        return self._step(z_obs, len(rows), float(t_s))

    def _step(self, z_obs: np.ndarray | None, n_cams: int, t: float) -> np.ndarray:
        p = self.p
        if z_obs is not None and (self.t_seen is None or self.t_seen != self.t_last):
            self._recent.clear()  # second differences only over consecutive observations
        if z_obs is not None:
            self._recent.append(np.asarray(z_obs, np.float64))
            if len(self._recent) == 3:
                a, b, c = self._recent
                self._d2.append(c - 2 * b + a)
        r = self._noise()
        if self.x is None:
            if z_obs is None:
                self.t_last = t
                return decode(self.model, self.z_rest[None])[0]
            self.x = np.stack([z_obs, np.zeros(self.L)], 1)
            self.P = np.zeros((self.L, 2, 2))
            self.P[:, 0, 0] = r
            self.P[:, 1, 1] = r * p.live_response * 0.1
            self.t_last = self.t_seen = t
            return decode(self.model, self.x[None, :, 0])[0]
        dt = max(t - self.t_last, 1e-4)
        self.t_last = t
        b = np.exp(-dt / max(p.live_velocity_tau_s, 1e-3))
        F = np.array([[1.0, dt], [0.0, b]])
        q = p.live_response * r
        Q = np.stack([np.stack([q * dt ** 3 / 3, q * dt ** 2 / 2], -1),
                      np.stack([q * dt ** 2 / 2, q * dt], -1)], 1)
        self.x = self.x @ F.T
        self.P = np.einsum("ij,ljk,mk->lim", F, self.P, F) + Q
        self.holding = False
        if z_obs is not None:
            R = r / max(n_cams, 1)
            S = self.P[:, 0, 0] + R
            K = self.P[:, :, 0] / S[:, None]
            self.x = self.x + K * (z_obs - self.x[:, 0])[:, None]
            self.P = self.P - K[:, :, None] * self.P[:, 0, :][:, None, :]
            self.t_seen = t
        else:
            gone = t - (self.t_seen if self.t_seen is not None else t)
            if gone > p.fill_max_s:
                k = np.exp(-dt / max(p.relax_s, 1e-3))
                self.x[:, 0] = self.z_rest + k * (self.x[:, 0] - self.z_rest)
                self.x[:, 1] *= k
            else:
                self.holding = True
        return decode(self.model, self.x[None, :, 0])[0]
