"""Train the texture completion GAN on face textures unwrapped from real media.

    python -m pipeline.train_texture                       # the default checkpoint
    python -m pipeline.train_texture --steps 200 --out my_gan.pt --seconds 600
    python -m pipeline.train_texture --finetune assets/models/texture_gan.pt --texture face.png --mask seen.png

Progress: one JSON record per logged step on stdout; then "wrote <out> ...". Exit code 0, or the
one-line error of `pipeline.core.errors.report`. The work is `pipeline.face.texture_gan_training`.
"""
from __future__ import annotations

import argparse
import json
import sys

from models.texture_gan import DEFAULT_CHECKPOINT
from models.texture_training import DEFAULTS
from pipeline.core.assets import BUNDLED_DIR, record_checkpoint
from pipeline.core.errors import PipelineError, report
from pipeline.core.quiet import send_native_stderr_to_devnull
from pipeline.face.texture_gan_training import train_texture_gan

COMMAND = "python -m pipeline.train_texture"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(DEFAULT_CHECKPOINT))
    ap.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    ap.add_argument("--batch", type=int, default=DEFAULTS["batch"])
    ap.add_argument("--seconds", type=float, default=None, help="stop after this much training time")
    ap.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--full", dest="half", action="store_false",
                    help="keep float32 weights and the discriminator in the final file (default: "
                         "the generator alone in float16, as shipped)")
    ap.add_argument("--finetune", help="start from this checkpoint (e.g. per subject)")
    ap.add_argument("--texture", help="with --finetune: a texture PNG (RGB) to fine-tune on")
    ap.add_argument("--mask", help="with --texture: its seen mask PNG (non-zero = seen)")
    a = ap.parse_args(argv)
    send_native_stderr_to_devnull()
    try:
        train_texture_gan(a.out, steps=a.steps, batch=a.batch, seconds=a.seconds, seed=a.seed,
                          threads=a.threads, half=a.half, finetune_from=a.finetune, texture=a.texture,
                          mask=a.mask,
                          command=f"{COMMAND} " + " ".join(argv if argv is not None else sys.argv[1:]),
                          log=lambda rec: print(json.dumps(rec), flush=True),
                          say=lambda line: print(line, flush=True))
    except PipelineError as e:
        return report(e)
    if record_checkpoint(a.out):
        print(f"recorded its SHA-256 in {BUNDLED_DIR / 'SHA256SUMS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
