"""TODO docstring."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.core.errors import InputError

DISAGREE_FRAMES = 1.5


SYNC_SEARCH_S = 0.05


def _timestamps_sidecar(video: Path, n_frames: int) -> np.ndarray | None:
    """Frame times on the take's clock from a capture recording's CSV, or None."""
    csv = video.with_name(video.stem + "_frames.csv")
    if not csv.is_file():
        return None
    from capture.recorder import read_timestamps
    try:
        _, _, _, t_take = read_timestamps(csv)
    except (OSError, ValueError):
        return None
    if len(t_take) != n_frames or not np.all(np.diff(t_take) > 0):
        return None
    return np.asarray(t_take, np.float64)


def synchronise(tracks: list, calibration, cameras: list[int], names: list[str],
                timestamps: list[np.ndarray | None], reference: int = 0,
                offsets: str | Sequence[float] = "auto") -> tuple[list, np.ndarray, dict, list[str]]:
    """Put the tracks on one clock. Returns (tracks with shared-clock t_s, offsets (C,) relative to
    the reference, per-camera report, warnings)."""
    from dataclasses import replace

    from pipeline.multicam.fusion import reprojection_sync
    from pipeline.multicam.time_offset import estimate_offset

    C = len(tracks)
    warnings: list[str] = []
    rep = [{"name": n} for n in names]
    # Shared clock from the timestamps, the reference starting at 0.
    if all(ts is not None for ts in timestamps):
        t0 = timestamps[reference][0]
        tracks = [replace(tr, t_s=ts - t0) for tr, ts in zip(tracks, timestamps)]
        for r in rep:
            r["timestamps"] = "capture recording"
    else:
        for r, ts in zip(rep, timestamps):
            r["timestamps"] = "capture recording (ignored: not every video has one)" if ts is not None \
                else "none: the video starts at 0"
    have_clock = all(ts is not None for ts in timestamps)
    off = np.zeros(C)
    if not isinstance(offsets, str):
        off = np.asarray(offsets, np.float64) - float(offsets[reference])
        if len(off) != C:
            raise InputError(f"{len(off)} time offsets given for {C} videos")
        for r in rep:
            r["offset_from"] = "given"
        return tracks, off, {"cameras": rep}, warnings
    if offsets not in ("auto", "none"):
        raise InputError(f"offsets must be 'auto', 'none' or a list of seconds, not {offsets!r}")
    for c in range(C):
        rep[c]["offset_from"] = "timestamps" if have_clock else "assumed 0"
    if offsets == "none":
        return tracks, off, {"cameras": rep}, warnings

    unsure: list[tuple[int, float]] = []
    shortest = min(float(tr.t_s[-1] - tr.t_s[0]) for tr in tracks if tr.n_frames > 1)
    for c in range(C):
        if c == reference:
            continue
        # The offset within the recordings' own clocks; with timestamps, relative to the clock's.
        est = estimate_offset(tracks[reference], tracks[c], max_offset_s=min(5.0, 0.5 * shortest))
        rep[c]["motion_offset_s"] = None if not np.isfinite(est.offset_s) else round(est.offset_s, 5)
        rep[c]["motion_correlation"] = None if not np.isfinite(est.confidence) else round(est.confidence, 3)
        rep[c]["motion_margin"] = round(est.margin, 3)
        frame = 1.0 / float(tracks[c].fps or 30.0)
        if est.reliable():
            if not have_clock or abs(est.offset_s) > DISAGREE_FRAMES * frame:
                if have_clock:
                    warnings.append(f"{names[c]}: its timestamps disagree with its motion by "
                                    f"{est.offset_s:+.3f} s; using the motion's offset")
                off[c] = est.offset_s
                rep[c]["offset_from"] = "motion"
        elif not have_clock:
            unsure.append((c, est.confidence))
    refined, info = reprojection_sync(tracks, calibration, cameras, off, reference, SYNC_SEARCH_S)
    for c in range(C):
        if c != reference and abs(refined[c] - off[c]) > 1e-9:
            rep[c]["offset_from"] += " + reprojection"
    for c, r in unsure:
        warnings.append(f"{names[c]}: its motion does not say when it started (correlation {r:.2f}); "
                        f"assumed with {names[reference]}, then {refined[c] - refined[reference]:+.3f} s "
                        f"by the reprojection error (searched within +-{SYNC_SEARCH_S * 1000:.0f} ms)")
    return tracks, refined - refined[reference], {"cameras": rep, "reprojection_sync": info}, warnings
