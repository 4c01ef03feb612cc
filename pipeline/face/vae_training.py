"""The expression VAE's training on real takes, as `python -m pipeline.train_expression` runs it.

In: session folders, tracks.npz files and sample video names (pipeline/face/training_takes.py),
the model's size and the training's bounds. Out: a checkpoint written to `out` and a
`TrainingRun` (models/expression_training.py) saying what was trained.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from models.expression_training import DEFAULTS, TrainingRun, train_on_takes
from models.expression_vae import VAEConfig
from pipeline.face.training_takes import load_takes


def train_expression_vae(sessions: list[Path], tracks_files: list[Path], samples: list[str], out: Path,
                         latent: int = VAEConfig.latent, hidden: int = VAEConfig.hidden,
                         epochs: int = DEFAULTS["epochs"], seconds: float | None = None, mirror: bool = True,
                         finetune_from: Path | None = None, threads: int | None = None,
                         log: Callable[[str], None] | None = None) -> TrainingRun:
    """Load the takes, train the VAE (from scratch, or from the checkpoint `finetune_from`) on
    their tracked face frames and write the checkpoint `out`.

    latent, hidden: the model's size (ignored when fine-tuning); epochs, seconds: training bounds;
    mirror: add left/right mirrored frames (never when fine-tuning); threads: torch CPU threads
    (None: torch's default); log: called with progress lines (tracking, one per epoch).
    InputError for a missing tracks file or too few face frames; AssetError for a bad checkpoint."""
    if threads:
        torch.set_num_threads(threads)
    takes = load_takes(sessions, tracks_files, samples, log)
    sources = [str(s) for s in sessions] + [str(p) for p in tracks_files] + list(samples)
    return train_on_takes(takes, out, VAEConfig(latent=latent, hidden=hidden), epochs=epochs, seconds=seconds,
                          mirror=mirror, finetune_from=finetune_from, sources=sources, log=log)
