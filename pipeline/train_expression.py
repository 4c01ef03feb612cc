"""TODO docstring."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from models.expression_training import DEFAULTS, FINETUNE, frames_of, train, with_mirror
from models.expression_vae import VAEConfig, load_checkpoint, save_checkpoint
from pipeline.core.errors import InputError, PipelineError, report
from pipeline.core.tracks import Tracks


def _load_takes(sessions: list[Path], tracks_files: list[Path], samples: list[str]) -> list[Tracks]:
    takes = []
    for p in [s / "tracks.npz" for s in sessions] + list(tracks_files):
        if not p.is_file():
            raise InputError(f"{p} not found (a session folder must hold tracks.npz)")
        takes.append(Tracks.load(p))
    if samples:
        from capture.video import probe, read_frames
        from pipeline.core.samples import fetch
        from pipeline.tracking.video import track_stream
        for name in samples:
            info = probe(fetch(name))
            print(f"tracking {name} ({info.frame_count} frames)", flush=True)
            takes.append(track_stream(read_frames(info), info.fps, (info.width, info.height),
                                      info.frame_count, info.path))
    return takes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.train_expression",
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
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        takes = _load_takes(a.sessions, a.tracks, a.samples)
        x = np.concatenate([frames_of(t) for t in takes]) if takes else np.zeros((0, 51), np.float32)
        if len(x) < 100:
            raise InputError(f"only {len(x)} tracked face frames to train on; need at least 100")
        mirror = not a.no_mirror and not a.finetune
        if mirror:
            x = with_mirror(x)
        base = load_checkpoint(a.finetune)[0] if a.finetune else None
        hp = dict(FINETUNE) if a.finetune else {k: DEFAULTS[k] for k in ("lr", "beta", "noise", "batch")}
        t0 = time.perf_counter()
        model, hist = train(x, base, VAEConfig(latent=a.latent, hidden=a.hidden), epochs=a.epochs,
                            seconds=a.seconds, seed=DEFAULTS["seed"], log=lambda s: print(s, flush=True),
                            **hp)
        save_checkpoint(model, a.out, meta={
            "frames": int(len(x)), "mirrored": mirror, "epochs": len(hist),
            "first_loss": float(hist[0]), "final_loss": float(hist[-1]),
            "sources": [str(s) for s in a.sessions] + [str(p) for p in a.tracks] + list(a.samples),
            "finetuned_from": str(a.finetune) if a.finetune else None,
            "hyperparameters": {**hp, "epochs": a.epochs}})
        print(f"wrote {a.out}: {len(x)} frames, {len(hist)} epochs in {time.perf_counter() - t0:.1f} s, "
              f"loss {hist[0]:.6f} -> {hist[-1]:.6f}")
    except PipelineError as e:
        return report(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
