"""Real takes to train the face's learned parts on (the expression VAE, the rig's ARKit prior):
session folders (their tracks.npz), tracks files, and sample videos tracked with MediaPipe.

Out: a list of `Tracks` (pipeline.core.tracks), one per take, in the order given (sessions,
then tracks files, then samples).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from capture.video import probe
from pipeline.core.errors import InputError
from pipeline.core.samples import fetch
from pipeline.core.tracks import Tracks
from pipeline.tracking.video import track_video


def track_samples(names: list[str], log: Callable[[str], None] | None = None) -> list[Tracks]:
    """Fetch the named sample videos (`python -m pipeline.samples list`) and track each with
    MediaPipe (no progress bar). log: called with "tracking NAME (N frames)" before each video."""
    takes = []
    for name in names:
        path = fetch(name)
        info = probe(path)
        if log:
            log(f"tracking {name} ({info.frame_count} frames)")
        takes.append(track_video(path, progress=False, info=info))
    return takes


def load_takes(sessions: list[Path], tracks_files: list[Path], samples: list[str],
               log: Callable[[str], None] | None = None) -> list[Tracks]:
    """The Tracks of session folders (each must hold tracks.npz), tracks.npz files and sample
    videos (tracked now; see `track_samples`). InputError for a missing tracks file."""
    takes = []
    for p in [s / "tracks.npz" for s in sessions] + list(tracks_files):
        if not p.is_file():
            raise InputError(f"{p} not found (a session folder must hold tracks.npz)")
        takes.append(Tracks.load(p))
    return takes + track_samples(samples, log)
