"""Latent-space maths of the expression VAE (models/expression_vae.py), shared by the pipeline's
expression stage (pipeline/face/latent_rig.py) and the per-take fine-tuning
(models/expression_training.py).

Shapes: N (or B) frames, C cameras, L latent dimensions (the checkpoint's, 16 by default), 51
ARKit weights in [0, 1]. Scores may be given as (N, 52) in MediaPipe order (`_neutral` first,
dropped) or (N, 51); NaN rows mean "no face in this frame". Everything returned is float32.

    encode(model, scores)        (N, 51|52) -> encoder mean, var (N, L)
    decode(model, z)             (N, L) -> weights (N, 51) in (0, 1)
    jacobian(model, z)           (B, L) tensor -> decoder Jacobian (B, 51, L) tensor
    fit_latent(model, scores)    (B, C, 51) or (B, 51) -> (B, L) latent that best decodes to them
    rest_latent(model)           (L,) latent of the neutral face (all scores 0)
"""
from __future__ import annotations

import weakref

import numpy as np
import torch
from torch.func import jacfwd, vmap

from models.expression_vae import ExpressionVAE
from pipeline.core.errors import InputError
from pipeline.core.tracks import ARKIT_NAMES

N_WEIGHTS = len(ARKIT_NAMES)  # ARKit weights per frame (51); MediaPipe adds `_neutral` in front
DEFAULT_FIT_ITERS = 6         # Gauss-Newton steps of a per-frame fit (enough from the encoder's guess)
REST_FIT_ITERS = 20           # steps for the neutral face's latent: fitted once per model, so fit closely
# Levenberg-Marquardt damping of the per-frame fit, a fraction of the mean diagonal of J^T J
# (dimensionless): it starts small (nearly Gauss-Newton), shrinks after a step that lowers a
# frame's cost and grows after one that does not, within [MIN, MAX].
LM_DAMPING_START = 1e-3
LM_DAMPING_SHRINK = 0.3
LM_DAMPING_GROW = 10.0
LM_DAMPING_MIN = 1e-6
LM_DAMPING_MAX = 1e6
LM_DIAG_FLOOR = 1e-6  # weight^2 per latent^2: added to the mean diagonal so a flat decoder is still damped
# Frames encoded, decoded or fitted at once: every frame is independent, so a long take goes
# through in chunks of this many and its memory stays flat in its length (a fit's Jacobians
# take about 50 KB a frame while they are built; 1024 frames: about 50 MB).
CHUNK_FRAMES = 1024
# The decoder layers whose Jacobian `jacobian` writes in closed form (any other decoder: torch.func).
CLOSED_FORM_DECODER = [torch.nn.Linear, torch.nn.SiLU, torch.nn.Linear, torch.nn.SiLU, torch.nn.Linear]


def as51(scores: np.ndarray) -> np.ndarray:
    """(N, 52) MediaPipe scores (`_neutral` first) or (N, 51), or one frame (52,) | (51,)
    -> (N, 51) float32 ARKit scores (not clipped; NaN stays NaN). InputError for other shapes."""
    x = np.asarray(scores, np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] not in (N_WEIGHTS, N_WEIGHTS + 1):
        raise InputError(f"blendshape scores must be (N, 52) or (N, 51), got {np.shape(scores)}")
    return x[:, 1:] if x.shape[1] == N_WEIGHTS + 1 else x


@torch.no_grad()
def encode(model: ExpressionVAE, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 51|52) scores (NaN rows allowed) -> encoder mean, var (N, L); NaN rows stay NaN."""
    x = as51(scores)
    ok = np.isfinite(x).all(1)
    mean = np.full((len(x), model.cfg.latent), np.nan, np.float32)
    var = np.full_like(mean, np.nan)
    rows = np.flatnonzero(ok)
    for i in range(0, len(rows), CHUNK_FRAMES):  # in chunks: flat memory in the take's length
        r = rows[i:i + CHUNK_FRAMES]
        mu, logvar = model.encode(torch.from_numpy(np.clip(x[r], 0, 1)))
        mean[r], var[r] = mu.numpy(), logvar.exp().numpy()
    return mean, var


@torch.no_grad()
def decode(model: ExpressionVAE, z: np.ndarray) -> np.ndarray:
    """(N, L) latents -> (N, 51) float32 weights in (0, 1) (in chunks of CHUNK_FRAMES frames)."""
    z = np.asarray(z, np.float32)
    out = np.empty((len(z), N_WEIGHTS), np.float32)
    for i in range(0, len(z), CHUNK_FRAMES):
        out[i:i + CHUNK_FRAMES] = model.decode(torch.from_numpy(np.ascontiguousarray(z[i:i + CHUNK_FRAMES]))).numpy()
    return out


def _dsilu(h: torch.Tensor) -> torch.Tensor:
    """Derivative of SiLU(h) = h sigmoid(h), elementwise."""
    sg = torch.sigmoid(h)
    return sg * (1 + h * (1 - sg))


def jacobian(model: ExpressionVAE, z: torch.Tensor) -> torch.Tensor:
    """(B, L) -> decoder Jacobian (B, 51, L), in closed form for the decoder's
    Linear-SiLU-Linear-SiLU-Linear-sigmoid layers (torch.func for any other decoder)."""
    layers = list(model.decoder)
    if [type(m) for m in layers] != CLOSED_FORM_DECODER:
        return vmap(jacfwd(lambda v: model.decode(v[None])[0]))(z)
    l1, _, l2, _, l3 = layers
    h1 = l1(z)
    h2 = l2(torch.nn.functional.silu(h1))
    y = torch.sigmoid(l3(torch.nn.functional.silu(h2)))
    jac = _dsilu(h1)[:, :, None] * l1.weight                   # (B, H, L)
    jac = _dsilu(h2)[:, :, None] * (l2.weight @ jac)           # (B, H, L)
    return (y * (1 - y))[:, :, None] * (l3.weight @ jac)       # (B, 51, L)


def _encoder_start(model: ExpressionVAE, scores: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """scores (B, C, 51), seen (B, C) -> (B, L): the mean of the encoder means of the cameras
    that see the face (NaN where none does)."""
    n_cams = scores.shape[1]
    enc = np.stack([encode(model, scores[:, c])[0] for c in range(n_cams)], 1)  # (B, C, L)
    if n_cams == 1:
        return enc[:, 0]
    use = seen[..., None] & np.isfinite(enc)
    count = use.sum(1)
    return np.where(count > 0, np.where(use, enc, 0.0).sum(1) / np.maximum(count, 1), np.nan).astype(enc.dtype)


@torch.no_grad()
def _levenberg_marquardt(model: ExpressionVAE, targets: torch.Tensor, mask: torch.Tensor, z: torch.Tensor,
                         iters: int) -> torch.Tensor:
    """Damped Gauss-Newton per frame on the squared error between the decoding and every seen
    camera's scores. targets (b, C, 51) scores (0 where unseen), mask (b, C, 1) 1 where seen,
    z (b, L) start -> (b, L); a frame keeps a step only if it lowers that frame's cost."""
    cams_seen = mask.sum(1)                                                   # (b, 1)
    eye = torch.eye(z.shape[1])

    def cost(zz):
        resid = (model.decode(zz)[:, None] - targets) * mask
        return (resid ** 2).sum((1, 2))

    damping = torch.full((len(z),), LM_DAMPING_START)
    best = cost(z)
    for _ in range(iters):
        jac = jacobian(model, z)                                              # (b, 51, L)
        resid = ((model.decode(z)[:, None] - targets) * mask).sum(1)          # (b, 51) summed over cams
        hess = cams_seen[..., None] * (jac.transpose(1, 2) @ jac)             # (b, L, L)
        grad = (jac.transpose(1, 2) @ resid[..., None])[..., 0]
        diag_mean = torch.diagonal(hess, dim1=1, dim2=2).mean(1)[:, None, None]
        hess = hess + damping[:, None, None] * (diag_mean + LM_DIAG_FLOOR) * eye
        step = torch.linalg.solve(hess, -grad[..., None])[..., 0]
        z_new = z + step
        cost_new = cost(z_new)
        better = cost_new < best
        z = torch.where(better[:, None], z_new, z)
        best = torch.where(better, cost_new, best)
        damping = torch.where(better, damping * LM_DAMPING_SHRINK,
                              damping * LM_DAMPING_GROW).clamp(LM_DAMPING_MIN, LM_DAMPING_MAX)
    return z


@torch.no_grad()
def fit_latent(model: ExpressionVAE, scores: np.ndarray, z0: np.ndarray | None = None,
               iters: int = DEFAULT_FIT_ITERS) -> np.ndarray:
    """Per-frame latent that best decodes to the scores of every camera seeing the face.

    scores: (B, C, 51) with NaN rows for cameras without a face (or (B, 51) for one camera);
    z0: (B, L) start (default: mean of the cameras' encoder means). Least squares, Gauss-Newton
    with Levenberg-Marquardt damping per frame. Frames no camera sees keep z0 (or NaN).
    Returns (B, L) float32.
    """
    y = np.asarray(scores, np.float32)
    if y.ndim == 2:
        y = y[:, None]
    seen = np.isfinite(y).all(2)                                              # (B, C)
    rows = seen.any(1)
    if z0 is None:
        z0 = _encoder_start(model, y, seen)
    out = np.array(z0, np.float32, copy=True)
    if not rows.any() or iters <= 0:
        return out
    idx = np.flatnonzero(rows)
    for i in range(0, len(idx), CHUNK_FRAMES):  # frames are fitted independently: in chunks, flat memory
        r = idx[i:i + CHUNK_FRAMES]
        targets = torch.from_numpy(np.nan_to_num(np.clip(y[r], 0, 1)))         # (b, C, 51)
        mask = torch.from_numpy(seen[r].astype(np.float32))[..., None]         # (b, C, 1)
        out[r] = _levenberg_marquardt(model, targets, mask, torch.from_numpy(out[r]), iters).numpy()
    return out


_REST_CACHE: "weakref.WeakKeyDictionary[ExpressionVAE, np.ndarray]" = weakref.WeakKeyDictionary()


def rest_latent(model: ExpressionVAE) -> np.ndarray:
    """(L,) the latent of the neutral face (all scores 0): where a lost face relaxes to."""
    if model not in _REST_CACHE:
        _REST_CACHE[model] = fit_latent(model, np.zeros((1, N_WEIGHTS), np.float32), iters=REST_FIT_ITERS)[0]
    return _REST_CACHE[model]
