"""Several cameras' tracks of one take -> the same tracks on one clock, and their time offsets.

In:  per camera its `Tracks` (times `t_s` on its own clock, seconds from its first frame), its
     frame times from a capture recording's sidecar CSV when there is one (`_timestamps_sidecar`),
     and the calibration the cameras share.
Out: the tracks (on the recordings' shared clock when every one has timestamps, the reference
     starting at 0), offsets (C,) seconds relative to the reference (pipeline.multicam.time_offset's
     convention: an event at t in the reference is at t + offset_s in that camera), a per-camera
     report of where each offset came from, and warnings.

Offsets come from, in turn: the capture timestamps (or 0 without them); the motion itself
(pipeline.multicam.time_offset, when it is reliable and either there are no timestamps or they
disagree with it by more than DISAGREE_FRAMES); then `reprojection_sync` refines them within
+-SYNC_SEARCH_S by the reprojection error of the triangulated body, which resolves fractions of a
frame. Offsets given by the caller are used as they are.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from capture.recorder import read_timestamps
from pipeline.core.errors import InputError
from pipeline.core.tracks import Tracks
from pipeline.multicam.calibration import Calibration, Camera
from pipeline.multicam.time_offset import BODY_LANDMARKS, estimate_offset
from pipeline.multicam.triangulation import triangulate
from pipeline.multicam.view_sampling import DEFAULT_FPS, SampledView, sample_view

DISAGREE_FRAMES = 1.5        # frames: timestamps further than this from the motion's offset lose to it
SYNC_SEARCH_S = 0.05         # seconds either side of an offset that the reprojection refinement tries
MAX_MOTION_OFFSET_S = 5.0    # seconds: the motion correlation looks no further for an offset
MAX_OFFSET_FRACTION = 0.5    # ... nor further than this fraction of the shortest recording
SYNC_SWEEPS = 2              # passes over the cameras refining each offset in turn
SYNC_MAX_FRAMES = 1500       # reference frames the refinement triangulates (spread over the take)
SUBFRAME_STEPS = (-0.5, -0.25, 0.25, 0.5)  # frames around the best whole-frame offset tried next
MIN_ERRORS_FOR_MEDIAN = 50   # reprojection errors needed for an offset's cost to count
OFFSET_CHANGED_S = 1e-9      # seconds: a refinement moving an offset less than this did not move it


def _timestamps_sidecar(video: Path, n_frames: int) -> np.ndarray | None:
    """(n_frames,) frame times on the take's clock, seconds, from a capture recording's CSV next to
    `video`, or None (no CSV, unreadable, another frame count, or times not increasing)."""
    csv = video.with_name(video.stem + "_frames.csv")
    if not csv.is_file():
        return None
    try:
        _, _, _, t_take = read_timestamps(csv)
    except (OSError, ValueError):
        return None
    if len(t_take) != n_frames or not np.all(np.diff(t_take) > 0):
        return None
    return np.asarray(t_take, np.float64)


# ---------------------------------------------------------------------------------------------
# Refinement against the calibration


def _median_body_error(cams: list[Camera], views: list[SampledView]) -> float:
    """Median reprojection error (pixels) of every camera's body landmarks triangulated by plain
    DLT (no rejection) from views sampled on one timeline; inf with too few errors to tell."""
    n_cams = len(cams)
    uv = np.stack([v.uv[:, BODY_LANDMARKS] for v in views]).reshape(n_cams, -1, 2)
    weight = np.stack([v.vis[:, BODY_LANDMARKS] for v in views]).reshape(n_cams, -1)
    tri = triangulate(cams, uv, weight, None, exact_errors=False)
    errors = np.where(tri.used, tri.camera_error_px, np.nan)
    errors = errors[np.isfinite(errors)]
    return float(np.median(errors)) if len(errors) > MIN_ERRORS_FOR_MEDIAN else np.inf


def _best_offset(cost, current: float, frame_s: float, search_s: float) -> float:
    """The offset (seconds) of least cost(offset): whole frames (frame_s seconds) within +-search_s
    of `current`, then quarter frames around the best of those when one of them is better."""
    steps = round(search_s / frame_s)
    grid = current + np.arange(-steps, steps + 1) * frame_s
    costs = [cost(o) for o in grid]
    best = float(grid[int(np.argmin(costs))])
    fine = best + np.array(SUBFRAME_STEPS) * frame_s
    fine_costs = [cost(o) for o in fine]
    if min(fine_costs) < min(costs):
        best = float(fine[int(np.argmin(fine_costs))])
    return best


def reprojection_sync(tracks: list[Tracks], calibration: Calibration, cameras: list[int] | None = None,
                      offsets_s: list[float] | None = None, reference: int = 0,
                      search_s: float = SYNC_SEARCH_S, max_frames: int = SYNC_MAX_FRAMES
                      ) -> tuple[np.ndarray, dict]:
    """Refine time offsets so that the body triangulates best: per camera in turn (two sweeps),
    the offset within +-search_s of the current one that minimises the median reprojection error of
    all cameras' body landmarks (plain DLT, no rejection), first on whole frames then on quarter
    frames. Much sharper than correlating motion once the cameras are calibrated, since a wrong
    offset puts the same landmark at two places.

    Returns (offsets (C,) seconds, {"median_error_px_before", "median_error_px_after"}).
    """
    n_cams = len(tracks)
    cameras = list(range(n_cams)) if cameras is None else list(cameras)
    cams = [calibration.cameras[k] for k in cameras]
    offsets = np.zeros(n_cams) if offsets_s is None else np.asarray(offsets_s, np.float64).copy()
    t = np.asarray(tracks[reference].t_s, np.float64)
    if len(t) > max_frames:
        t = t[np.linspace(0, len(t) - 1, max_frames).round().astype(int)]
    views = [sample_view(tr, t - offsets[reference] + offsets[c]) for c, tr in enumerate(tracks)]

    def cost(c: int, offset: float) -> float:
        """The median error with camera c at `offset` and the others where they are."""
        trial = list(views)
        trial[c] = sample_view(tracks[c], t - offsets[reference] + offset)
        return _median_body_error(cams, trial)

    before = cost(reference, offsets[reference])
    for _ in range(SYNC_SWEEPS):
        for c in range(n_cams):
            if c == reference:
                continue
            frame_s = 1.0 / float(tracks[c].fps or DEFAULT_FPS)
            offsets[c] = _best_offset(lambda o, c=c: cost(c, o), offsets[c], frame_s, search_s)
            views[c] = sample_view(tracks[c], t - offsets[reference] + offsets[c])
    after = cost(reference, offsets[reference])
    return offsets, {"median_error_px_before": round(before, 3), "median_error_px_after": round(after, 3)}


# ---------------------------------------------------------------------------------------------
# One clock


def _shared_clock(tracks: list, timestamps: list[np.ndarray | None], reference: int,
                  report: list[dict]) -> list:
    """The tracks with t_s from their timestamps, the reference's first frame at 0, when every
    camera has them; else unchanged. Notes in each camera's report where its times came from."""
    if all(ts is not None for ts in timestamps):
        t0 = timestamps[reference][0]
        tracks = [replace(tr, t_s=ts - t0) for tr, ts in zip(tracks, timestamps)]
        for r in report:
            r["timestamps"] = "capture recording"
    else:
        for r, ts in zip(report, timestamps):
            r["timestamps"] = "capture recording (ignored: not every video has one)" if ts is not None \
                else "none: the video starts at 0"
    return tracks


def _motion_offsets(tracks: list, names: list[str], reference: int, have_clock: bool, offsets: np.ndarray,
                    report: list[dict], warnings: list[str]) -> list[tuple[int, float]]:
    """Offsets from the motion (pipeline.multicam.time_offset) written into `offsets` (C,) seconds
    where reliable and either there is no clock or it disagrees; the report and warnings say so.
    Returns (camera, correlation) of the cameras whose start neither says."""
    unsure: list[tuple[int, float]] = []
    shortest = min(float(tr.t_s[-1] - tr.t_s[0]) for tr in tracks if tr.n_frames > 1)
    for c in range(len(tracks)):
        if c == reference:
            continue
        # The offset within the recordings' own clocks; with timestamps, relative to the clock's.
        est = estimate_offset(tracks[reference], tracks[c],
                              max_offset_s=min(MAX_MOTION_OFFSET_S, MAX_OFFSET_FRACTION * shortest))
        report[c]["motion_offset_s"] = None if not np.isfinite(est.offset_s) else round(est.offset_s, 5)
        report[c]["motion_correlation"] = None if not np.isfinite(est.confidence) else round(est.confidence, 3)
        report[c]["motion_margin"] = round(est.margin, 3)
        frame_s = 1.0 / float(tracks[c].fps or DEFAULT_FPS)
        if est.reliable():
            if not have_clock or abs(est.offset_s) > DISAGREE_FRAMES * frame_s:
                if have_clock:
                    warnings.append(f"{names[c]}: its timestamps disagree with its motion by "
                                    f"{est.offset_s:+.3f} s; using the motion's offset")
                offsets[c] = est.offset_s
                report[c]["offset_from"] = "motion"
        elif not have_clock:
            unsure.append((c, est.confidence))
    return unsure


def synchronise(tracks: list, calibration, cameras: list[int], names: list[str],
                timestamps: list[np.ndarray | None], reference: int = 0,
                offsets: str | Sequence[float] = "auto") -> tuple[list, np.ndarray, dict, list[str]]:
    """Put the tracks on one clock (see the module docstring). offsets: "auto", "none" (the clock's
    or 0) or seconds per camera. Returns (tracks with shared-clock t_s, offsets (C,) seconds relative
    to the reference, {"cameras": per-camera report[, "reprojection_sync": ...]}, warnings)."""
    n_cams = len(tracks)
    warnings: list[str] = []
    rep = [{"name": n} for n in names]
    tracks = _shared_clock(tracks, timestamps, reference, rep)
    have_clock = all(ts is not None for ts in timestamps)
    off = np.zeros(n_cams)
    if not isinstance(offsets, str):
        off = np.asarray(offsets, np.float64) - float(offsets[reference])
        if len(off) != n_cams:
            raise InputError(f"{len(off)} time offsets given for {n_cams} videos")
        for r in rep:
            r["offset_from"] = "given"
        return tracks, off, {"cameras": rep}, warnings
    if offsets not in ("auto", "none"):
        raise InputError(f"offsets must be 'auto', 'none' or a list of seconds, not {offsets!r}")
    for c in range(n_cams):
        rep[c]["offset_from"] = "timestamps" if have_clock else "assumed 0"
    if offsets == "none":
        return tracks, off, {"cameras": rep}, warnings

    unsure = _motion_offsets(tracks, names, reference, have_clock, off, rep, warnings)
    refined, info = reprojection_sync(tracks, calibration, cameras, off, reference, SYNC_SEARCH_S)
    for c in range(n_cams):
        if c != reference and abs(refined[c] - off[c]) > OFFSET_CHANGED_S:
            rep[c]["offset_from"] += " + reprojection"
    for c, r in unsure:
        warnings.append(f"{names[c]}: its motion does not say when it started (correlation {r:.2f}); "
                        f"assumed with {names[reference]}, then {refined[c] - refined[reference]:+.3f} s "
                        f"by the reprojection error (searched within +-{SYNC_SEARCH_S * 1000:.0f} ms)")
    return tracks, refined - refined[reference], {"cameras": rep, "reprojection_sync": info}, warnings
