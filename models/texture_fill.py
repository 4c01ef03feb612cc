"""Classical texture fills, the baselines the texture GAN is measured against.

* `telea_fill`: OpenCV's fast-marching inpainting (Telea 2004) of every unseen texel.
* `mirror_fill`: the texel's mirror image about the UV symmetry axis u = 0.5 (the canonical
  layout is left/right symmetric to within 0.1 % of the texture), where that one was seen;
  Telea for the texels whose mirror is unseen too.

Both take (R, R, 3) uint8 and a (R, R) bool seen mask and return (R, R, 3) uint8 with the seen
texels unchanged.
"""
from __future__ import annotations

import cv2
import numpy as np


def telea_fill(texture: np.ndarray, mask: np.ndarray, radius: float = 5.0) -> np.ndarray:
    if mask.all():
        return texture.copy()
    if not mask.any():
        return np.zeros_like(texture)
    holes = (~mask).astype(np.uint8)
    out = cv2.inpaint(np.ascontiguousarray(texture), holes, radius, cv2.INPAINT_TELEA)
    out[mask] = texture[mask]
    return out


def mirror_fill(texture: np.ndarray, mask: np.ndarray, radius: float = 5.0) -> np.ndarray:
    mt, mm = texture[:, ::-1], mask[:, ::-1]
    use = ~mask & mm
    out = texture.copy()
    out[use] = mt[use]
    return telea_fill(out, mask | use, radius)
