"""How many CPU threads torch uses for a piece of work: `with torch_threads(n): ...` (n an int)."""
from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def torch_threads(n: int):
    """Run torch on n intra-op threads meanwhile (restored afterwards). The models here are
    small: one or two threads are fastest, more only fight MediaPipe's own."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
