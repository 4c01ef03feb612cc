"""Expression through the latent rig: MediaPipe's blendshape scores -> the expression VAE's latent
space -> smoothed, gap-filled, multi-camera latent track -> the decoded weights that drive the head.

In: scores of C cameras, each (N, 52) in MediaPipe order (`_neutral` first, dropped) or (N, 51),
NaN rows where that camera has no face; frame times t_s (N,) in seconds. Out: a `LatentTrack`
(pipeline/face/latent_track.py): latent mean/var (N, L) (L = the checkpoint's latent size, 16 by
default), observed/filled flags (N,) and the 51 decoded ARKit weights (N, 51) in (0, 1). Only real
observations may be passed: frames that `fill_short_gaps` interpolated must be NaN (see
`observed_scores`).

Per frame, the latent that best explains every camera that sees the face is found by fitting the
decoder to their scores (Gauss-Newton from the encoder's mean; models/expression_latent.py), so
several cameras are fused by encoding each view and asking one latent to explain them all. Then:

* batch (`causal=False`, no lag): the latent track of all observed frames is optimised jointly for
  fidelity to the scores (a robust, nearly L1, penalty per weight and camera) plus
  `smooth` times the jitter of the decoded weights (the same penalty on their second
  differences), a trend filter through the decoder. The result is a function of the whole take,
  so it has no lag.
* live (`causal=True`): the causal `LatentFilter` (pipeline/face/latent_filter.py) run frame by
  frame, a Kalman filter per latent dimension with a constant-velocity model.

Frames where no camera sees the face: interior gaps up to `fill_max_s` are filled by linear
interpolation in latent space (decoded, the face moves through plausible expressions between its
neighbours; `filled`); longer gaps and the take's ends ease toward the neutral face with time
constant `relax_s` (not `filled`: a lost face goes neutral, as in the rest of the pipeline). The
live filter cannot look ahead: it holds the last expression for `fill_max_s`, then eases to
neutral.

Per-subject fine-tuning (`finetune`, models/expression_training.py, about 8 s on one core) adapts
the VAE to the take itself: its own denoising objective, then the decoder and per-frame latents
together, which brings the decoder's error on the subject's frames from 4-20e-3 (pretrained) to
0.2-1e-3 per weight.

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

import time
from pathlib import Path

import numpy as np
import torch

from models.expression_latent import CHUNK_FRAMES, N_WEIGHTS, as51, decode, fit_latent, jacobian, rest_latent
from models.expression_training import clean_face_rows
from models.expression_vae import ExpressionVAE, load_checkpoint
from pipeline.core.assets import ASSETS_DIR, EXPRESSION_VAE, model_path
from pipeline.core.errors import InputError
from pipeline.core.tracks import Tracks, gap_spans
from pipeline.face.latent_filter import MIN_TIME_CONSTANT_S, LatentFilter, robust_noise_var
from pipeline.face.latent_track import LatentParams, LatentTrack

DEFAULT_CHECKPOINT = ASSETS_DIR / "models" / "expression_vae.pt"
_CHARB_EPS = 1e-4  # robust penalty sqrt(x^2 + eps^2): quadratic below eps, absolute value above
SCORE_NOISE_MIN_ROWS = 10   # second differences needed to measure a camera's score noise
DEFAULT_SCORE_NOISE = 1e-4  # score units^2: a camera's noise variance when it cannot be measured
MIN_SCORE_NOISE = 1e-8      # score units^2: floor of the measured noise variance
LOST_FACE_VAR = 1.0         # latent units^2: the VAE prior's variance, for a take that never shows a face
MIN_LATENT_VAR = 1e-4       # latent units^2: floor of the take's latent variance (the relax target's)
MIN_STEP_S = 1e-3           # s: floor of the time between observed frames in the latent drift rate
GAP_TOLERANCE_S = 1e-9      # s: rounding slack when comparing a gap's length with fill_max_s


def load_model(path: str | Path | None = None) -> ExpressionVAE:
    """The default (or given) checkpoint, in eval mode. AssetError if missing or corrupt; the
    default one must also match its SHA-256 in assets/models/SHA256SUMS (a flipped weight loads
    silently otherwise)."""
    return load_checkpoint(path or model_path(EXPRESSION_VAE))[0]


def observed_scores(tracks: Tracks) -> np.ndarray:
    """(N, 52) scores of the frames MediaPipe really tracked; NaN where the face was missing or
    only gap-filled (`face_filled`)."""
    return np.where(clean_face_rows(tracks)[:, None], tracks.blendshapes, np.nan).astype(np.float32)


def score_noise(y: np.ndarray) -> float:
    """Variance of the tracker's frame-to-frame noise on the scores (N, 51), NaN rows allowed:
    robust (median) spread of second differences of consecutive frames, divided by 6 (white noise
    of variance r has second differences of variance 6 r). Averaged over the 51 weights."""
    y = np.asarray(y, np.float64)
    d2 = y[2:] - 2 * y[1:-1] + y[:-2]
    d2 = d2[np.isfinite(d2).all(1)]
    if len(d2) < SCORE_NOISE_MIN_ROWS:
        return DEFAULT_SCORE_NOISE
    return float(max(np.mean(robust_noise_var(d2)), MIN_SCORE_NOISE))


def _stack_cameras(scores_per_camera: list[np.ndarray], n: int) -> np.ndarray:
    """C arrays (n, 51|52) (or one 2-D array) -> (n, C, 51) clipped to [0, 1], NaN rows kept."""
    if isinstance(scores_per_camera, np.ndarray) and scores_per_camera.ndim == 2:
        scores_per_camera = [scores_per_camera]
    cams = [as51(s) for s in scores_per_camera]
    if not cams or any(len(c) != n for c in cams):
        raise InputError(f"every camera needs one row of scores per frame ({n} frames), got "
                         f"{[len(c) for c in cams]}")
    return np.clip(np.stack(cams, 1), 0, 1)  # NaN stays NaN


def _charb(x: torch.Tensor) -> torch.Tensor:
    """Charbonnier penalty, elementwise: nearly |x|, smooth at 0."""
    return torch.sqrt(x * x + _CHARB_EPS ** 2)


def _smooth_batch(model: ExpressionVAE, scores: np.ndarray, seen: np.ndarray, z0: np.ndarray,
                  obs_idx: np.ndarray, p: LatentParams) -> np.ndarray:
    """Trend filter through the decoder over observed frames. scores (n, C, 51), seen (n, C),
    z0 (n, L) for the observed frames only; obs_idx (n,) their frame indices (second differences
    only over runs of consecutive frames). Returns the smoothed latents (n, L) float32.

    Every step is one full-batch Adam step on the whole take, its gradient summed over chunks of
    CHUNK_FRAMES frames (each chunk decodes two frames past its end for the second differences
    that start in it), so the decoder's activations and their gradients never exist for more
    than one chunk at a time: memory stays flat in the take's length, the result is the same."""
    if p.smooth <= 0 or p.iters <= 0 or len(z0) < 3:
        return z0
    consecutive = ((obs_idx[1:-1] - obs_idx[:-2]) == 1) & ((obs_idx[2:] - obs_idx[1:-1]) == 1)
    triple = torch.from_numpy(consecutive).float()[:, None]
    n_triples = max(float(triple.sum()), 1.0)
    targets = torch.from_numpy(np.nan_to_num(scores).astype(np.float32))
    mask = torch.from_numpy(seen.astype(np.float32))[..., None]
    n_obs = len(z0)
    z = torch.tensor(z0, dtype=torch.float32, requires_grad=True)
    opt = torch.optim.Adam([z], lr=p.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, p.iters)
    for _ in range(p.iters):
        opt.zero_grad()
        for a in range(0, n_obs, CHUNK_FRAMES):
            b = min(a + CHUNK_FRAMES, n_obs)
            w = model.decode(z[a:min(b + 2, n_obs)])
            fit = (_charb(w[:b - a, None] - targets[a:b]) * mask[a:b]).sum() / (n_obs * N_WEIGHTS)
            n_jit = min(b, n_obs - 2) - a  # second differences starting in this chunk
            jit = (_charb(w[2:n_jit + 2] - 2 * w[1:n_jit + 1] + w[:n_jit]) * triple[a:a + n_jit]).sum() \
                / (n_triples * N_WEIGHTS) if n_jit > 0 else 0.0
            (fit + p.smooth * jit).backward()
        opt.step()
        sched.step()
    return z.detach().numpy().astype(np.float32)


@torch.no_grad()
def _laplace_var(model: ExpressionVAE, z: np.ndarray, seen: np.ndarray, r_cam: np.ndarray) -> np.ndarray:
    """Diagonal of (sum over cameras of J^T J / r_c + I)^-1 per frame (I: the VAE's unit prior):
    z (n, L), seen (n, C), r_cam (C,) score noise variances -> (n, L) float32 (frames are
    independent: in chunks of CHUNK_FRAMES, flat memory in the take's length)."""
    out = np.zeros_like(z, dtype=np.float32)
    for a in range(0, len(z), CHUNK_FRAMES):
        jac = jacobian(model, torch.from_numpy(np.ascontiguousarray(z[a:a + CHUNK_FRAMES])))
        prec = torch.from_numpy((seen[a:a + CHUNK_FRAMES] / r_cam[None]).sum(1).astype(np.float32))[:, None, None]
        hess = prec * (jac.transpose(1, 2) @ jac) + torch.eye(z.shape[1])
        out[a:a + CHUNK_FRAMES] = torch.diagonal(torch.linalg.inv(hess), dim1=1, dim2=2).numpy()
    return out


def _latent_spread(t: np.ndarray, mean: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The take's latent variance (L,) (where a lost face's uncertainty relaxes to) and the latent
    drift rate (L,) in latent units^2 per second (how fast uncertainty grows across a gap)."""
    latent_size = mean.shape[1]
    zo = mean[observed]
    prior_var = np.maximum(np.var(zo, 0), MIN_LATENT_VAR) if len(zo) > 1 else np.ones(latent_size)
    dz = np.diff(zo, axis=0)
    dt = np.diff(t[observed])
    rate = np.median(dz ** 2 / np.maximum(dt, MIN_STEP_S)[:, None], 0) if len(dz) else np.ones(latent_size)
    return prior_var, rate


def _interpolate_gap(t: np.ndarray, mean: np.ndarray, var: np.ndarray, left: int, right: int,
                     rate: np.ndarray) -> None:
    """Fill frames left+1 .. right-1 in place: latent linear between the observed frames `left`
    and `right`, variance linear plus the drift of a Brownian bridge (rate (L,) per second)."""
    span = slice(left + 1, right)
    w = ((t[span] - t[left]) / (t[right] - t[left]))[:, None]
    mean[span] = (1 - w) * mean[left] + w * mean[right]
    from_left, to_right = t[span] - t[left], t[right] - t[span]
    var[span] = (1 - w) * var[left] + w * var[right] + rate * (from_left * to_right / (from_left + to_right))[:, None]


def _relax_gap(t: np.ndarray, mean: np.ndarray, var: np.ndarray, start: int, end: int, z_rest: np.ndarray,
               prior_var: np.ndarray, relax_s: float) -> None:
    """Fill frames start .. end-1 in place: from each observed neighbour (if any) ease toward the
    neutral latent z_rest (L,) and the take's variance prior_var (L,) with time constant relax_s."""
    n_frames = len(t)
    z = np.repeat(z_rest[None], end - start, 0).astype(np.float64)
    v = np.repeat(prior_var[None], end - start, 0).astype(np.float64)
    for edge in (start - 1, end):
        if 0 <= edge < n_frames:
            keep = np.exp(-np.abs(t[start:end] - t[edge]) / max(relax_s, MIN_TIME_CONSTANT_S))[:, None]
            z += keep * (mean[edge] - z_rest)
            v = (1 - keep) * v + keep * var[edge]
    mean[start:end] = z
    var[start:end] = v


def _fill_gaps(t: np.ndarray, mean: np.ndarray, var: np.ndarray, observed: np.ndarray,
               z_rest: np.ndarray, p: LatentParams) -> np.ndarray:
    """Fill unobserved rows of mean / var (N, L) in place; return the (N,) `filled` flags."""
    n_frames = len(mean)
    filled = np.zeros(n_frames, bool)
    if not observed.any():
        mean[:] = z_rest
        var[:] = LOST_FACE_VAR
        return filled
    prior_var, rate = _latent_spread(t, mean, observed)
    frame_dt = float(np.median(np.diff(t))) if n_frames > 1 else 0.0
    for start, end in gap_spans(observed):
        left, right = start - 1, end  # nearest observed frames (may be out of range)
        # a gap's length is the time missing: (frames missing) x frame interval
        if left >= 0 and right < n_frames and t[right] - t[left] <= p.fill_max_s + frame_dt + GAP_TOLERANCE_S:
            _interpolate_gap(t, mean, var, left, right, rate)
            filled[start:end] = True
        else:
            _relax_gap(t, mean, var, start, end, z_rest, prior_var, p.relax_s)
    return filled


def _batch_track(model: ExpressionVAE, scores: np.ndarray, seen: np.ndarray, z_fit: np.ndarray, t: np.ndarray,
                 r_cam: np.ndarray, params: LatentParams):
    """The batch mode: smooth the observed frames' latents, their Laplace variance, fill the gaps.
    scores (N, C, 51), seen (N, C), z_fit (N, L) per-frame fits -> mean, var (N, L), filled (N,),
    weights (N, 51)."""
    n_frames, latent_size = len(t), model.cfg.latent
    observed = seen.any(1)
    mean = np.full((n_frames, latent_size), np.nan, np.float32)
    var = np.full((n_frames, latent_size), np.nan, np.float32)
    idx = np.flatnonzero(observed)
    if len(idx):
        zs = _smooth_batch(model, scores[idx], seen[idx], z_fit[idx], idx, params)
        mean[idx] = zs
        var[idx] = _laplace_var(model, zs, seen[idx], r_cam)
    filled = _fill_gaps(t, mean, var, observed, rest_latent(model), params)
    return mean, var, filled, decode(model, mean)


def _live_track(model: ExpressionVAE, z_fit: np.ndarray, seen: np.ndarray, t: np.ndarray, params: LatentParams):
    """The live mode: `LatentFilter` frame by frame on the per-frame fits z_fit (N, L) (NaN where
    unobserved), seen (N, C) -> mean, var (N, L), filled (N,), weights (N, 51)."""
    n_frames, latent_size = len(t), model.cfg.latent
    observed = seen.any(1)
    filt = LatentFilter(model, params)
    mean = np.zeros((n_frames, latent_size), np.float32)
    var = np.zeros((n_frames, latent_size), np.float32)
    weights = np.zeros((n_frames, N_WEIGHTS), np.float32)
    filled = np.zeros(n_frames, bool)
    for k in range(n_frames):
        weights[k] = filt.step(z_fit[k] if observed[k] else None, int(seen[k].sum()), t[k])
        mean[k], var[k] = filt.mean, filt.var
        filled[k] = not observed[k] and filt.holding
    return mean, var, filled, weights


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
    scores = _stack_cameras(scores_per_camera, len(t))                  # (N, C, 51)
    seen = np.isfinite(scores).all(2)                                   # (N, C)
    z_fit = fit_latent(model, scores, iters=params.fit_iters)           # (N, L), NaN where unobserved
    r_cam = np.array([score_noise(scores[:, c]) for c in range(scores.shape[1])])
    if causal:
        mean, var, filled, weights = _live_track(model, z_fit, seen, t, params)
        info = {"mode": "live", "live_response": params.live_response}
    else:
        mean, var, filled, weights = _batch_track(model, scores, seen, z_fit, t, r_cam, params)
        info = {"mode": "batch", "smooth": params.smooth}
    info.update({"latent_size": model.cfg.latent, "cameras": int(scores.shape[1]), "fill_max_s": params.fill_max_s,
                 "score_noise_std": [round(float(np.sqrt(r)), 6) for r in r_cam],
                 "seconds": round(time.perf_counter() - t0, 3)})
    return LatentTrack(t, mean.astype(np.float32), var.astype(np.float32), seen.any(1), filled,
                       weights.astype(np.float32), info)
