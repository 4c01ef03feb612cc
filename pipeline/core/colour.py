"""Colour conversions and texture sampling shared by the texture stage and the glTF reader.

sRGB is what images and glTF textures hold (0-1 here); linear is what glTF vertex colours and
lighting use (IEC 61966-2-1 transfer functions)."""
from __future__ import annotations

import cv2
import numpy as np


def srgb_to_linear(c) -> np.ndarray:
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c) -> np.ndarray:
    c = np.clip(np.asarray(c, np.float64), 0, 1)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def sample_uv(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear samples (N, C) float32 of an (H, W, C) image at UVs (N, 2), v = 0 at the top,
    texel centres at (i + 0.5) / size; edges clamp."""
    h, w = image.shape[:2]
    xy = (np.asarray(uv, np.float32) * np.array([w, h], np.float32) - 0.5).reshape(-1, 1, 2)
    out = cv2.remap(np.asarray(image, np.float32), xy[..., 0], xy[..., 1], cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(len(xy), -1)
