"""Training of the expression VAE (models/expression_vae.py): from scratch on many takes, and
per-take fine-tuning on the take itself.

In: training frames (M, 51) float32 ARKit scores in [0, 1] (`frames_of` takes them from Tracks:
the tracked, not gap-filled, frames of a take, ARKit columns only). Out: the model (eval mode)
and the mean training loss of each epoch; `train_on_takes` also writes a checkpoint.

The model is a denoising VAE: the encoder sees the frame plus Gaussian noise, the loss compares
the decoding with the clean frame. The command `python -m pipeline.train_expression` trains it on
sessions, tracks files or sample videos (`train_on_takes`; see pipeline/train_expression.py for
how the default checkpoint is made). Per-subject fine-tuning (`finetune`, which the pipeline's
expression stage calls on every take) runs the same loop from a checkpoint on the take itself for
a few seconds, then refines the decoder with one latent per frame (`refine_decoder`).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from models.expression_latent import N_WEIGHTS, as51, fit_latent
from models.expression_vae import ExpressionVAE, VAEConfig, load_checkpoint, mirror_index, save_checkpoint, vae_loss
from pipeline.core.errors import InputError
from pipeline.core.tracks import Tracks

DEFAULTS = dict(epochs=60, lr=2e-3, beta=1e-5, noise=0.01, batch=256, seed=0)
FINETUNE = dict(lr=5e-4, beta=1e-5, noise=0.01, batch=256)
MIN_TRAINING_FRAMES = 100     # frames: fewer cannot train a VAE from a checkpoint or from scratch
FINETUNE_MIN_FRAMES = 30      # frames: with fewer, per-take fine-tuning returns the model unchanged
FINETUNE_VAE_SHARE = 0.3      # share of fine-tuning's `seconds` cap for its first (VAE) stage
FINETUNE_START_FIT_ITERS = 4  # Gauss-Newton steps for the per-frame latents the decoder stage starts from
FINETUNE_MIN_DECODER_S = 0.5  # seconds: the decoder stage always gets at least this long
UNBOUNDED_EPOCHS = 1_000_000  # fine-tuning's first stage stops on its step count, not on epochs
ROBUST_LOSS_EPS = 1e-8        # weight^2: sqrt(r^2 + eps) is |r| (nearly L1) but smooth at r = 0


def clean_face_rows(tracks: Tracks) -> np.ndarray:
    """(N,) bool: frames MediaPipe really tracked (face found, not gap-filled, finite scores)."""
    return tracks.face_valid & ~tracks.face_filled & np.isfinite(tracks.blendshapes).all(1)


def frames_of(tracks: Tracks) -> np.ndarray:
    """(M, 51) clean training frames of one take: tracked (not filled), ARKit columns, clipped."""
    return np.clip(tracks.blendshapes[clean_face_rows(tracks), 1:], 0, 1).astype(np.float32)


def with_mirror(x: np.ndarray) -> np.ndarray:
    """Frames plus their left/right mirror images: (M, 51) -> (2M, 51)."""
    return np.concatenate([x, x[:, mirror_index()]]).astype(np.float32)


def _train_epoch(model: ExpressionVAE, opt: torch.optim.Optimizer, data: torch.Tensor, order: torch.Tensor,
                 hp: dict, gen: torch.Generator, stop: Callable[[], bool]) -> tuple[float, bool]:
    """One pass over data (M, 51) in `order` in batches of hp["batch"], denoising (input noise of
    std hp["noise"]) with KL weight hp["beta"]. stop() is asked after every optimiser step.
    Returns (mean loss of the epoch, whether stop() ended it early)."""
    total, seen = 0.0, 0
    batch = hp["batch"]
    for i in range(0, len(data), batch):
        xb = data[order[i:i + batch]]
        noisy = (xb + hp["noise"] * torch.randn(xb.shape, generator=gen)).clamp(0, 1)
        mu, logvar = model.encode(noisy)
        z = mu + torch.randn(mu.shape, generator=gen) * torch.exp(0.5 * logvar)
        loss, _, _ = vae_loss(model.decode(z), xb, mu, logvar, hp["beta"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(xb)
        seen += len(xb)
        if stop():
            return total / max(seen, 1), True
    return total / max(seen, 1), False


def train(x: np.ndarray, model: ExpressionVAE | None = None, cfg: VAEConfig = VAEConfig(),
          epochs: int = 60, seconds: float | None = None, max_steps: int | None = None,
          lr: float = 2e-3, beta: float = 1e-5, noise: float = 0.01, batch: int = 256,
          seed: int = 0, log=None) -> tuple[ExpressionVAE, list[float]]:
    """Fit (or fine-tune, when `model` is given) the VAE on frames x (M, 51) in [0, 1].

    Denoising: the encoder's input gets Gaussian noise of std `noise`, the target is the clean
    frame. Stops after `epochs`, `max_steps` optimiser steps or `seconds` of wall-clock time,
    whichever comes first (the step bound makes a run reproducible; the time bound caps it on a
    slow machine). Returns the model (eval mode) and the mean training loss of each epoch."""
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[1] != (model.cfg.n_inputs if model else cfg.n_inputs):
        raise InputError(f"training frames must be (M, 51) scores, got {x.shape}")
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    if model is None:
        torch.manual_seed(seed)  # the initial weights
        model = ExpressionVAE(cfg)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    data = torch.from_numpy(x)
    history: list[float] = []
    t0 = time.perf_counter()
    steps = 0

    def stop() -> bool:
        nonlocal steps
        steps += 1
        return (max_steps is not None and steps >= max_steps) or \
            (seconds is not None and time.perf_counter() - t0 > seconds)

    hp = {"batch": batch, "noise": noise, "beta": beta}
    for epoch in range(epochs):
        order = torch.from_numpy(rng.permutation(len(data)))
        loss, done = _train_epoch(model, opt, data, order, hp, gen, stop)
        history.append(loss)
        if log:
            log(f"epoch {epoch + 1:3d}  loss {history[-1]:.6f}")
        if done:
            break
    model.eval()
    return model, history


def refine_decoder(model: ExpressionVAE, x: np.ndarray, z0: np.ndarray, steps: int = 2500,
                   seconds: float | None = None, lr_decoder: float = 3e-4, lr_latent: float = 1e-2,
                   batch: int = 256, seed: int = 0) -> tuple[ExpressionVAE, np.ndarray]:
    """Second stage of per-subject fine-tuning ("auto-decoder"): optimise the decoder and one
    latent per frame together so the decoder reproduces the subject's frames x (M, 51) closely
    (robust, nearly L1 loss), starting from per-frame latents z0 (M, L). The encoder is left as
    is (the pipeline refines its guesses with `models.expression_latent.fit_latent`).
    Returns the model (eval mode, changed in place) and the final per-frame latents."""
    gen = torch.Generator().manual_seed(seed)
    frames = torch.from_numpy(np.asarray(x, np.float32))
    z = torch.tensor(np.asarray(z0, np.float32), requires_grad=True)
    model.train()
    opt = torch.optim.Adam([{"params": model.decoder.parameters(), "lr": lr_decoder},
                            {"params": [z], "lr": lr_latent}])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(frames), (min(batch, len(frames)),), generator=gen)
        loss = torch.sqrt((model.decode(z[idx]) - frames[idx]) ** 2 + ROBUST_LOSS_EPS).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if seconds is not None and time.perf_counter() - t0 > seconds:
            break
    model.eval()
    return model, z.detach().numpy()


def _finetune_frames(tracks_or_scores) -> np.ndarray:
    """Tracks (one or a list) or score arrays (N, 51|52) with NaN rows -> (M, 51) float32 frames
    in [0, 1]: the real observations only."""
    items = tracks_or_scores if isinstance(tracks_or_scores, (list, tuple)) else [tracks_or_scores]
    xs = []
    for it in items:
        if isinstance(it, Tracks):
            xs.append(frames_of(it))
        else:
            x = as51(it)
            xs.append(np.clip(x[np.isfinite(x).all(1)], 0, 1))
    return np.concatenate(xs).astype(np.float32) if xs else np.zeros((0, N_WEIGHTS), np.float32)


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
    x = _finetune_frames(tracks_or_scores)
    m = copy.deepcopy(model)
    if len(x) < FINETUNE_MIN_FRAMES:
        return m.eval()
    t0 = time.perf_counter()
    if vae_steps > 0:
        m, _ = train(x, m, epochs=UNBOUNDED_EPOCHS, seconds=FINETUNE_VAE_SHARE * seconds, max_steps=vae_steps,
                     seed=seed, **FINETUNE)
    if decoder_steps > 0:
        z0 = fit_latent(m, x, iters=FINETUNE_START_FIT_ITERS)
        left = max(seconds - (time.perf_counter() - t0), FINETUNE_MIN_DECODER_S)
        m, _ = refine_decoder(m, x, z0, steps=decoder_steps, seconds=left, seed=seed)
    return m


@dataclass
class TrainingRun:
    """What `train_on_takes` did: the checkpoint written, its training frames (mirrored ones
    included), epochs run, wall-clock seconds of training and writing, first and last epoch loss."""

    path: Path
    frames: int
    epochs: int
    seconds: float
    first_loss: float
    final_loss: float


def train_on_takes(takes: list[Tracks], out: Path, cfg: VAEConfig = VAEConfig(), epochs: int = DEFAULTS["epochs"],
                   seconds: float | None = None, mirror: bool = True, finetune_from: Path | None = None,
                   sources: list[str] | None = None, log=None) -> TrainingRun:
    """Train the VAE on the clean frames of `takes` and write the checkpoint `out`.

    mirror: add every frame's left/right mirror image (never when fine-tuning). finetune_from: a
    checkpoint to start from (with the fine-tuning hyperparameters FINETUNE; `cfg` is then
    ignored). sources: names of the takes, kept in the checkpoint's meta. log: called with one
    line per epoch. InputError with fewer than MIN_TRAINING_FRAMES tracked face frames."""
    x = np.concatenate([frames_of(t) for t in takes]) if takes else np.zeros((0, N_WEIGHTS), np.float32)
    if len(x) < MIN_TRAINING_FRAMES:
        raise InputError(f"only {len(x)} tracked face frames to train on; need at least {MIN_TRAINING_FRAMES}")
    mirror = mirror and not finetune_from
    if mirror:
        x = with_mirror(x)
    base = load_checkpoint(finetune_from)[0] if finetune_from else None
    hp = dict(FINETUNE) if finetune_from else {k: DEFAULTS[k] for k in ("lr", "beta", "noise", "batch")}
    t0 = time.perf_counter()
    model, hist = train(x, base, cfg, epochs=epochs, seconds=seconds, seed=DEFAULTS["seed"], log=log, **hp)
    save_checkpoint(model, out, meta={
        "frames": int(len(x)), "mirrored": mirror, "epochs": len(hist),
        "first_loss": float(hist[0]), "final_loss": float(hist[-1]),
        "sources": list(sources or []),
        "finetuned_from": str(finetune_from) if finetune_from else None,
        "hyperparameters": {**hp, "epochs": epochs}})
    return TrainingRun(Path(out), int(len(x)), len(hist), time.perf_counter() - t0, float(hist[0]), float(hist[-1]))
