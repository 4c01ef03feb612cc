"""Checkpoint files of this project's torch models: plain dicts of tensors and plain values with a
"format" tag, written atomically, read with `torch.load(weights_only=True)` (no pickled code)."""
from __future__ import annotations

from pathlib import Path

import torch

from pipeline.core.errors import AssetError


def write_blob(blob: dict, path: str | Path) -> Path:
    """Write atomically (a .part file renamed), so a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


def read_blob(path: str | Path, fmt: str, what: str, train_command: str) -> dict:
    """The checkpoint's dict; AssetError (one line) when the file is missing, unreadable or of
    another format. what: e.g. "texture GAN"; train_command: how to make a new one."""
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"{what} checkpoint {path} is missing; train one with "
                         f"`{train_command}` or restore assets/")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, not a torch file, or one that needs pickled code
        raise AssetError(f"{path} is not a readable {what} checkpoint ({type(e).__name__}); "
                         f"re-train or restore it") from None
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        got = repr(blob.get("format")) if isinstance(blob, dict) else type(blob).__name__
        raise AssetError(f"{path} is not a {what} checkpoint (format {got}, expected {fmt!r})")
    return blob


def weights_error(path: str | Path, e: Exception) -> AssetError:
    """The one-line error for weights that do not fit the model their config describes."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return AssetError(f"{path}: weights do not match its config ({msg[:160]})")
