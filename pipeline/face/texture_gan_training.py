"""Training and fine-tuning the texture completion GAN with this face's UV layout, from the
sample media: what `python -m pipeline.train_texture` runs.

The models' training loop (`models.texture_training`) knows nothing of the face; this module
gives it the face region of the UV layout ((R, R) bool, `texture_raster.face_region`), the
occlusion sampler (`texture_masks.random_mask`) and the real turned-view masks of the training
textures (`texture_masks.real_view_masks`).

* `training_set(items)`: a `TrainingSet` of unwrapped face textures (`texture_dataset`).
* `finetune_on_texture(gen, texture, mask)`: a copy of the generator tuned on one face.
* `train_texture_gan(...)`: the whole command: the default training run on the cached training
  textures (written to `out`, progress to a side file), or with `finetune_from` the fine-tuning
  of a checkpoint on one texture PNG and its seen mask PNG.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import torch

from models.texture_gan import DEFAULT_CHECKPOINT, GANConfig, TextureGenerator, load_checkpoint, save_checkpoint
from models.texture_training import DEFAULTS, FINETUNE, TrainingSet, finetune, make_training_set, sample_batch, train
from pipeline.core.errors import PipelineError
from pipeline.face.texture_dataset import TRAIN_SOURCES, load_split
from pipeline.face.texture_masks import random_mask, real_view_masks
from pipeline.face.texture_raster import face_region

EVAL_SEED = 12345             # the fixed evaluation batch's draws
EVAL_BATCH = 16               # examples in it
FINETUNE_SECONDS = 30.0       # default time limit of a fine-tuning run


def training_set(items, bank_from_visibility: bool = True) -> TrainingSet:
    """From `texture_dataset.FaceTexture`s (or (texture, mask) pairs) of one size R: the models'
    training set with this face's region and occlusions; bank_from_visibility: add the items'
    real turned-view masks to the occlusions."""
    items = list(items)
    first = items[0].texture if hasattr(items[0], "texture") else items[0][0]
    bank = real_view_masks(items) if bank_from_visibility else []
    return make_training_set(items, face_region(first.shape[0]), random_mask, bank)


def finetune_on_texture(gen: TextureGenerator, texture: np.ndarray, mask: np.ndarray,
                        steps: int = FINETUNE["steps"], seconds: float | None = FINETUNE_SECONDS,
                        seed: int = 0, log=None) -> TextureGenerator:
    """Per-subject fine-tuning (`models.texture_training.finetune`) on one face: texture
    (S, S, 3) uint8 RGB and its (S, S) bool seen mask, any size. Returns the tuned copy."""
    return finetune(gen, texture, mask, face_region(gen.cfg.size), random_mask, steps=steps,
                    seconds=seconds, seed=seed, log=log)


def _finetune_checkpoint(checkpoint, out, texture_png, mask_png, steps: int, seconds, log, say) -> None:
    """Fine-tune a checkpoint on a texture PNG (RGB) and its seen mask PNG (non-zero = seen);
    write it to out."""
    t0 = time.perf_counter()
    gen, meta = load_checkpoint(checkpoint)
    if not (texture_png and mask_png):
        raise PipelineError("--finetune needs --texture and --mask")
    tex = cv2.cvtColor(cv2.imread(texture_png), cv2.COLOR_BGR2RGB)
    mask = cv2.imread(mask_png, cv2.IMREAD_GRAYSCALE) > 0
    steps = steps if steps != DEFAULTS["steps"] else FINETUNE["steps"]
    gen = finetune_on_texture(gen, tex, mask, steps=steps, seconds=seconds, log=log)
    save_checkpoint(gen, out, {**meta, "finetuned_on": texture_png})
    say(f"wrote {out} ({time.perf_counter() - t0:.0f} s)")


def _train_on_samples(out, steps: int, batch: int, seconds, seed: int, threads: int, half: bool,
                      command: str, log, say) -> None:
    """The default training run on the cached training textures (see the module docstring)."""
    t0 = time.perf_counter()
    items = load_split("train", GANConfig().size)
    t_data = time.perf_counter() - t0
    data = training_set(items)
    eval_batch = sample_batch(np.random.default_rng(EVAL_SEED), data, EVAL_BATCH)
    say(f"{len(items)} training textures of {len(np.unique(data.person))} people, "
        f"{len(data.bank)} real view masks ({t_data:.0f} s to unwrap/cache)")
    t_start = time.perf_counter()
    # progress goes to a side file (float32, with the discriminator, to resume from); the
    # output, often the shipped checkpoint, is only replaced by a finished run
    partial = Path(out).with_name(Path(out).stem + ".training.pt")

    def meta_of(hist):
        return {"trained_on": list(TRAIN_SOURCES), "textures": len(items),
                "people": int(len(np.unique(data.person))), "steps": len(hist),
                "batch": batch, "seed": seed, "threads": threads,
                "train_seconds": round(time.perf_counter() - t_start, 1),
                "final_l1": hist[-1]["l1"],
                # hidden-texel L1 on a fixed batch of *training* faces (new masks): a
                # progress curve, not a validation score
                "eval_hidden_l1": [h["eval_hidden_l1"] for h in hist if "eval_hidden_l1" in h],
                "command": command}

    gen, disc, hist = train(data, steps=steps, batch=batch, seed=seed, seconds=seconds,
                            log=log, eval_batch=eval_batch,
                            on_checkpoint=lambda g, d, h: save_checkpoint(g, partial, meta_of(h), d),
                            **{k: v for k, v in DEFAULTS.items() if k not in ("steps", "batch", "seed")})
    t_train = time.perf_counter() - t_start
    # the shipped file: the generator in float16 (the discriminator is only for training)
    save_checkpoint(gen, out, meta_of(hist), None if half else disc, half=half)
    partial.unlink(missing_ok=True)
    say(f"wrote {out}: {len(hist)} steps in {t_train:.0f} s")


def train_texture_gan(out=str(DEFAULT_CHECKPOINT), steps: int = DEFAULTS["steps"], batch: int = DEFAULTS["batch"],
                      seconds: float | None = None, seed: int = DEFAULTS["seed"], threads: int = 2,
                      half: bool = True, finetune_from=None, texture=None, mask=None,
                      command: str = "python -m pipeline.train_texture", log=None, say=print) -> None:
    """Train the texture GAN (or, with finetune_from, fine-tune that checkpoint on the texture
    and mask PNGs) and write it to out. threads: torch CPU threads; half: store the generator
    alone in float16 (else float32 weights and the discriminator too); command: recorded in the
    checkpoint's meta; log(record dict) gets the training progress, say(str) the messages.
    PipelineError (AssetError, InputError) for missing inputs."""
    torch.set_num_threads(max(1, threads))
    if finetune_from:
        _finetune_checkpoint(finetune_from, out, texture, mask, steps, seconds, log, say)
        return
    _train_on_samples(out, steps, batch, seconds, seed, threads, half, command, log, say)
