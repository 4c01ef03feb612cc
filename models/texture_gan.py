"""Texture completion GAN: fills the face texels no camera saw, keeping the seen ones.

Generator: a U-Net over the whole UV square at `cfg.size` (256) texels. Its input (19 channels):
the partial texture (RGB in [-1, 1], 0 where unseen), the seen mask, both mirrored left/right
(the canonical UV layout is symmetric about u = 0.5, so the mirror image holds the other side of
the face: the network learns symmetry *with* the shading and colour differences between the two
sides), the texel coordinates u, v (where on the face a texel is), the mean colour of the seen
texels, a classical pre-fill (`prefill`: the mirror texel where that was seen, a push-pull
pyramid interpolation elsewhere) and OpenCV's Telea inpainting of the partial texture (which
continues the boundary inwards: better than the mirror at the face's rim, where the mirror image
is hair or background). The network predicts a residual on the pre-fill (its last
layer starts near zero, so an untrained generator is the classical fill and training only has to
learn the corrections: shading and colour differences between the sides, structure where the
mirror is unseen too). A space-to-depth first layer and a depth-to-space last layer keep every
convolution at 128 x 128 or coarser (CPU). Output: RGB everywhere; the seen texels are then put
back (`composite`).

Discriminator: a PatchGAN (spectral norm, 4 strided convolutions, 54 px receptive field) on the
texture with the mask of texels whose ground truth is known, so it judges local skin texture
and seams, never the unknown border.

Checkpoint: a dict of tensors and plain values read with `torch.load(weights_only=True)`; a
missing, unreadable, foreign or mismatched file raises `AssetError` (one line).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from models.checkpoint import read_blob, weights_error, write_blob
from models.texture_fill import telea_fill

CHECKPOINT_FORMAT = "dhcap-texture-gan-3"
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "assets" / "models" / "texture_gan.pt"
IN_CHANNELS = 19


@dataclass(frozen=True)
class GANConfig:
    size: int = 256                               # working resolution of the UV square
    channels: tuple[int, ...] = (32, 64, 128, 192, 256)
    disc_channels: int = 32


def _conv(i: int, o: int, stride: int = 1) -> nn.Sequential:
    k = 4 if stride == 2 else 3
    return nn.Sequential(nn.Conv2d(i, o, k, stride, 1), nn.LeakyReLU(0.2, inplace=True))


class TextureGenerator(nn.Module):
    def __init__(self, cfg: GANConfig = GANConfig()):
        super().__init__()
        self.cfg = cfg
        ch = list(cfg.channels)
        self.inc = nn.Sequential(nn.PixelUnshuffle(2), _conv(IN_CHANNELS * 4, ch[0]))
        self.downs = nn.ModuleList([_conv(ch[k], ch[k + 1], 2) for k in range(len(ch) - 1)])
        c = ch[-1]
        self.mid = nn.Sequential(nn.Conv2d(c, c, 3, 1, 2, dilation=2), nn.LeakyReLU(0.2, inplace=True),
                                 nn.Conv2d(c, c, 3, 1, 4, dilation=4), nn.LeakyReLU(0.2, inplace=True),
                                 nn.Conv2d(c, c, 3, 1, 1))
        self.ups = nn.ModuleList([_conv(ch[k + 1] + ch[k], ch[k]) for k in reversed(range(len(ch) - 1))])
        self.out = nn.Sequential(nn.Conv2d(ch[0], 12, 3, 1, 1), nn.PixelShuffle(2))
        nn.init.normal_(self.out[0].weight, std=1e-3)   # start (almost) as the pre-fill
        nn.init.zeros_(self.out[0].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inc(x)
        skips = [h]
        for d in self.downs:
            h = d(h)
            skips.append(h)
        h = h + self.mid(h)
        for up, skip in zip(self.ups, reversed(skips[:-1])):
            h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = up(torch.cat([h, skip], 1))
        return self.out(h)


class PatchDiscriminator(nn.Module):
    def __init__(self, cfg: GANConfig = GANConfig()):
        super().__init__()
        c = cfg.disc_channels
        sn = nn.utils.spectral_norm
        self.net = nn.Sequential(
            sn(nn.Conv2d(4, c, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(c, 2 * c, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(2 * c, 4 * c, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(4 * c, 4 * c, 3, 1, 1)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(4 * c, 1, 3, 1, 1)))

    def forward(self, rgb: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([rgb * known, known], 1))


def _coords(size: int) -> torch.Tensor:
    g = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    v, u = torch.meshgrid(g, g, indexing="ij")
    return torch.stack([u, v])[None]


def push_pull(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Fill the holes of x (B, C, R, R) (mask m (B, 1, R, R), 1 = known) by pyramid
    interpolation: average down to 1 texel, then back up, each level keeping what it knows."""
    xs, ms = [x * m], [m]
    while xs[-1].shape[-1] > 1:
        xs.append(F.avg_pool2d(xs[-1], 2))
        ms.append(F.avg_pool2d(ms[-1], 2))
    out = xs[-1] / ms[-1].clamp(min=1e-6)
    for k in range(len(xs) - 2, -1, -1):
        up = F.interpolate(out, size=xs[k].shape[-2:], mode="bilinear", align_corners=False)
        out = xs[k] + (1 - ms[k]) * up          # premultiplied: known share + the coarser rest
    return out


def prefill(partial: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Classical fill in [0, 1]: seen texels, else their mirror if seen, else push-pull."""
    mm = mask.flip(-1)
    use = (1 - mask) * mm
    x = partial * mask + use * partial.flip(-1)
    return push_pull(x, (mask + use).clamp(max=1))


def telea(partial: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """OpenCV's Telea inpainting (radius 5) of each image of a batch, in [0, 1]."""
    out = []
    for p, m in zip(partial, mask):
        img = np.clip(np.round(p.permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)
        out.append(telea_fill(img, m[0].numpy() > 0.5).astype(np.float32) / 255)
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def make_input(partial: torch.Tensor, mask: torch.Tensor,
               inpainted: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """partial (B, 3, R, R) in [0, 1], mask (B, 1, R, R) in {0, 1}, optionally its Telea
    inpainting (computed when None) -> (generator input (B, 19, R, R), pre-fill (B, 3, R, R))."""
    x = (partial * 2 - 1) * mask
    b, _, r, _ = x.shape
    mean = (x.sum((2, 3)) / mask.sum((2, 3)).clamp(min=1))[:, :, None, None].expand(b, 3, r, r)
    pre = prefill(partial, mask)
    if inpainted is None:
        inpainted = telea(partial, mask)
    return torch.cat([x, mask, x.flip(-1), mask.flip(-1), _coords(r).expand(b, 2, r, r), mean,
                      pre * 2 - 1, inpainted * 2 - 1], 1), pre


def generate(model: TextureGenerator, partial: torch.Tensor, mask: torch.Tensor,
             clamp: bool = True, inpainted: torch.Tensor | None = None) -> torch.Tensor:
    """Generator output (B, 3, R, R): the pre-fill plus the predicted residual, clamped to
    [0, 1] (training uses clamp=False: a clamp would stop the gradient of texels out of range).
    inpainted: the batch's Telea inpainting when already computed."""
    x, pre = make_input(partial, mask, inpainted)
    out = pre + model(x)
    return out.clamp(0, 1) if clamp else out


def composite(partial: torch.Tensor, mask: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
    return mask * partial + (1 - mask) * generated


# ------------------------------------------------------------------------------------------------
# Checkpoints
# ------------------------------------------------------------------------------------------------

def save_checkpoint(model: TextureGenerator, path: str | Path, meta: dict | None = None,
                    disc: PatchDiscriminator | None = None, half: bool = False) -> Path:
    """Write atomically. The discriminator is kept too when given (to resume or fine-tune with
    the adversarial loss). half: store the weights as float16 (half the file; they are read
    back as float32). `meta` holds only plain values."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = asdict(model.cfg)
    cfg["channels"] = list(cfg["channels"])
    blob = {"format": CHECKPOINT_FORMAT, "config": cfg,
            "generator": {k: (v.detach().half() if half and v.is_floating_point() else v.detach()).clone()
                          for k, v in model.state_dict().items()},
            "meta": meta or {}}
    if disc is not None:
        blob["discriminator"] = {k: v.detach().clone() for k, v in disc.state_dict().items()}
    return write_blob(blob, path)


def load_checkpoint(path: str | Path = DEFAULT_CHECKPOINT, with_disc: bool = False):
    """-> (generator in eval mode, meta) or, with_disc, (generator, discriminator or None, meta).
    AssetError (one line) for a missing, unreadable, foreign or mismatched file."""
    blob = read_blob(path, CHECKPOINT_FORMAT, "texture GAN", "python -m pipeline.train_texture")
    try:
        c = dict(blob["config"])
        cfg = GANConfig(size=int(c["size"]), channels=tuple(int(x) for x in c["channels"]),
                        disc_channels=int(c["disc_channels"]))
        gen = TextureGenerator(cfg)
        gen.load_state_dict(blob["generator"])
        disc = None
        if with_disc and "discriminator" in blob:
            disc = PatchDiscriminator(cfg)
            disc.load_state_dict(blob["discriminator"])
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        raise weights_error(path, e) from None
    gen.eval()
    meta = dict(blob.get("meta") or {})
    return (gen, disc, meta) if with_disc else (gen, meta)


# ------------------------------------------------------------------------------------------------
# Inference on a full-resolution texture
# ------------------------------------------------------------------------------------------------

def to_work_size(texture: np.ndarray, mask: np.ndarray, size: int, visibility: np.ndarray | None = None):
    """Area-average to size x size -> (texture, mask) or, with visibility, (texture, mask,
    visibility); a texel stays seen only when every texel it averages was seen (no black
    bleeding in from unseen ones)."""
    t = cv2.resize(texture, (size, size), interpolation=cv2.INTER_AREA)
    m = cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) >= 0.999
    t[~m] = 0
    if visibility is None:
        return t, m
    return t, m, cv2.resize(visibility.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)


@torch.no_grad()
def fill_work(model: TextureGenerator, texture: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(R, R, 3) uint8 partial + (R, R) bool seen mask at the model's size -> (R, R, 3) float32
    generator output in [0, 255] (the whole square, seen texels not yet put back)."""
    p = torch.from_numpy(texture.astype(np.float32) / 255).permute(2, 0, 1)[None]
    m = torch.from_numpy(mask.astype(np.float32))[None, None]
    out = generate(model, p, m)[0].permute(1, 2, 0).numpy() * 255
    return out.astype(np.float32)


def complete(texture: np.ndarray, mask: np.ndarray, model: TextureGenerator,
             feather: float | None = None) -> np.ndarray:
    """Fill the unseen texels of a texture of any size S (a multiple of nothing in particular):
    the generator runs at its working size on the area-averaged texture, its output is upsampled
    (bicubic) to S and composited under the seen texels. Seen texels further than `feather`
    texels (default S/256) from an unseen one keep their values exactly; nearer ones fade
    linearly into the generated fill, so the seam does not show. Returns (S, S, 3) uint8."""
    S = texture.shape[0]
    R = model.cfg.size
    if not mask.any():
        small_t, small_m = np.zeros((R, R, 3), np.uint8), np.zeros((R, R), bool)
    else:
        small_t, small_m = to_work_size(texture, mask, R)
    gen = fill_work(model, small_t, small_m)
    up = cv2.resize(gen, (S, S), interpolation=cv2.INTER_CUBIC) if S != R else gen
    feather = max(1.0, S / 256) if feather is None else feather
    if feather > 0:
        dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
        alpha = np.clip(dist / feather, 0, 1)[..., None]
    else:
        alpha = mask[..., None].astype(np.float32)
    out = alpha * texture.astype(np.float32) + (1 - alpha) * up
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
