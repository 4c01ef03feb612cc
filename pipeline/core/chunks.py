"""Per-frame work in chunks of frames, so that its temporaries do not grow with the take.

Input: a function of arrays whose first axis is the frame (each frame computed on its own) and
those arrays; output: the function's result(s) for every frame, concatenated along that axis.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

CHUNK_FRAMES = 512  # frames per call: dense per-frame solves stay within a few MB


def per_frame_chunks(fn: Callable, *arrays: np.ndarray, chunk_frames: int = CHUNK_FRAMES):
    """fn(*arrays) computed on consecutive chunks of `chunk_frames` frames (axis 0 of every array)
    and concatenated; fn returns an array or a tuple of arrays, each with a frame axis first.
    Valid only for functions that treat each frame on its own."""
    n = len(arrays[0])
    if n <= chunk_frames:
        return fn(*arrays)
    parts = [fn(*(a[lo:lo + chunk_frames] for a in arrays)) for lo in range(0, n, chunk_frames)]
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate(x) for x in zip(*parts))
    return np.concatenate(parts)
