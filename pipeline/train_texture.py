"""TODO docstring."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from models.texture_gan import DEFAULT_CHECKPOINT, GANConfig, load_checkpoint, save_checkpoint
from models.texture_training import DEFAULTS, FINETUNE, finetune, make_training_set, sample_batch, train
from pipeline.core.errors import PipelineError, report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.train_texture", description=__doc__.splitlines()[0])
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
    torch.set_num_threads(max(1, a.threads))
    from pipeline.core.quiet import send_native_stderr_to_devnull
    send_native_stderr_to_devnull()

    def log(rec):
        print(json.dumps(rec), flush=True)

    try:
        t0 = time.perf_counter()
        if a.finetune:
            import cv2
            gen, meta = load_checkpoint(a.finetune)
            if not (a.texture and a.mask):
                raise PipelineError("--finetune needs --texture and --mask")
            tex = cv2.cvtColor(cv2.imread(a.texture), cv2.COLOR_BGR2RGB)
            mask = cv2.imread(a.mask, cv2.IMREAD_GRAYSCALE) > 0
            steps = a.steps if a.steps != DEFAULTS["steps"] else FINETUNE["steps"]
            gen = finetune(gen, tex, mask, steps=steps, seconds=a.seconds, log=log)
            save_checkpoint(gen, a.out, {**meta, "finetuned_on": a.texture})
            print(f"wrote {a.out} ({time.perf_counter() - t0:.0f} s)")
            return 0
        from pipeline.face.texture_dataset import TRAIN_SOURCES, load_split
        items = load_split("train", GANConfig().size)
        t_data = time.perf_counter() - t0
        data = make_training_set(items)
        eval_batch = sample_batch(np.random.default_rng(12345), data, 16)
        print(f"{len(items)} training textures of {len(np.unique(data.person))} people, "
              f"{len(data.bank)} real view masks ({t_data:.0f} s to unwrap/cache)", flush=True)
        t_start = time.perf_counter()
        # progress goes to a side file (float32, with the discriminator, to resume from); the
        # output, often the shipped checkpoint, is only replaced by a finished run
        partial = Path(a.out).with_name(Path(a.out).stem + ".training.pt")

        def meta_of(hist):
            return {"trained_on": list(TRAIN_SOURCES), "textures": len(items),
                    "people": int(len(np.unique(data.person))), "steps": len(hist),
                    "batch": a.batch, "seed": a.seed, "threads": a.threads,
                    "train_seconds": round(time.perf_counter() - t_start, 1),
                    "final_l1": hist[-1]["l1"],
                    # hidden-texel L1 on a fixed batch of *training* faces (new masks): a
                    # progress curve, not a validation score
                    "eval_hidden_l1": [h["eval_hidden_l1"] for h in hist if "eval_hidden_l1" in h],
                    "command": "python -m models.train_texture "
                               + " ".join(argv if argv is not None else sys.argv[1:])}

        gen, disc, hist = train(data, steps=a.steps, batch=a.batch, seed=a.seed, seconds=a.seconds,
                                log=log, eval_batch=eval_batch,
                                on_checkpoint=lambda g, d, h: save_checkpoint(g, partial, meta_of(h), d),
                                **{k: v for k, v in DEFAULTS.items() if k not in ("steps", "batch", "seed")})
        t_train = time.perf_counter() - t_start
        # the shipped file: the generator in float16 (the discriminator is only for training)
        save_checkpoint(gen, a.out, meta_of(hist), None if a.half else disc, half=a.half)
        partial.unlink(missing_ok=True)
        print(f"wrote {a.out}: {len(hist)} steps in {t_train:.0f} s", flush=True)
    except PipelineError as e:
        return report(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
