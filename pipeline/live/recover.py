"""A live take that was killed (`kill -9`, a crash, power loss) made whole again:
`python -m pipeline.capture --recover SESSION [--avatar]`.

`recover_take(session, avatar)`: each camera's segments and timestamps are made to agree and
joined into cam<i>.avi (capture.recorder.recover: row k of cam<i>_frames.csv is frame k of the
video), then manifest.json is written with a "capture" section saying what was recovered (the
killed take's own section is kept when it had written one). With `avatar`, every recorded camera
is tracked again from its recording (the live tracking died with the process), on the times its
timestamps give, saved as tracks_cam<i>.npz, and the camera that saw a face most often goes
through every stage of a recorded take (pipeline.session.stages.finish_session): tracks.npz,
avatar.glb, the engine formats and preview.png, as a take that ended normally.

In: a session folder written by pipeline.capture. Out: the manifest (dict). InputError (exit
code 3) for a folder that holds no recording; NothingTrackedError (4) with `avatar` when no
camera saw anyone; OutputError (6) when the manifest cannot be written anywhere.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from capture.recorder import RecordingSummary, read_timestamps, recover
from capture.video import frame_reader
from pipeline.core.errors import InputError
from pipeline.core.session_folder import read_manifest
from pipeline.core.tracks import Tracks
from pipeline.live.finish import choose_primary
from pipeline.live.manifest_place import write_take_manifest
from pipeline.session.stages import Stopwatch, finish_session
from pipeline.tracking.video import track_video

RECOVERED_STATUS = "recovered"


def recover_take(session: str | Path, avatar: bool = False, max_gap_s: float = 0.25,
                 keep_segments: bool = False, say=print) -> dict:
    """Join the killed take's recordings, write its manifest and, with `avatar`, its avatar;
    returns the manifest. say(line) reports each camera (see the module docstring)."""
    session = Path(session)
    if not session.is_dir() or not any(session.glob("cam*_frames.csv")):
        raise InputError(f"{session}: no live take to recover (no cam<i>_frames.csv); "
                         f"--recover takes the session folder of a pipeline.capture take")
    cams = recover(session, keep_segments=keep_segments)
    for c in cams:
        where = c.video or f"{len(c.segments)} segments (cam{c.camera}_segments/segments.ffconcat)"
        say(f"cam{c.camera}: {c.frames} frames recovered in {where}" + (f"; {c.error}" if c.error else ""))
    old = _old_manifest(session)
    section = {**old.get("capture", {}), "recovered": [_camera_entry(c) for c in cams]}
    base = {"tool": "dhcap pipeline.capture --recover", "capture": section,
            "outputs": {f"cam{c.camera}": {k: v for k, v in (("video", c.video), ("segments", c.segments),
                                                             ("timestamps", c.timestamps)) if v}
                        for c in cams}}
    if not avatar:
        manifest = {**base, "status": f"{RECOVERED_STATUS}: recordings only (add --avatar for the avatar)"}
        write_take_manifest(session, manifest, _warn)
        return manifest
    manifest = _export(session, cams, max_gap_s, base)
    write_take_manifest(session, manifest, _warn)
    return manifest


def _warn(line: str) -> None:
    print(line, file=sys.stderr)


def _old_manifest(session: Path) -> dict:
    """The killed take's manifest when it had written one (a take killed while exporting), else {}."""
    try:
        return read_manifest(session)
    except InputError:
        return {}


def _camera_entry(c: RecordingSummary) -> dict:
    """The manifest's account of one recovered camera."""
    return {"camera": c.camera, "frames": c.frames, "video": c.video, "segments": c.segments,
            "timestamps": c.timestamps, "bytes": c.bytes, "fps_measured": c.fps_measured, "error": c.error}


def _retrack(session: Path, c: RecordingSummary) -> Tracks | None:
    """One camera's tracks from its joined recording, on the times of its timestamps CSV (None
    when it has no joined video); saved as tracks_cam<i>.npz."""
    if c.video is None or c.frames < 2:
        return None
    tr = track_video(session / c.video, progress=False)
    t = read_timestamps(session / c.timestamps)[2]
    if tr.n_frames == len(t):  # the recording's own clock, not its nominal frame rate
        tr.t_s = t - t[0]
        tr.duration_s = float(tr.t_s[-1] + 1.0 / tr.fps)
    tr.meta = {**tr.meta, "camera": c.camera, "recovered": True, "recording": c.video}
    tr.save(session / f"tracks_cam{c.camera}.npz")
    return tr


def _export(session: Path, cams: list[RecordingSummary], max_gap_s: float, base: dict) -> dict:
    """Track every joined camera again and run every stage on the primary one; the manifest."""
    tracks = [_retrack(session, c) for c in cams]
    primary = choose_primary(tracks)
    if primary is None:
        raise InputError(f"{session}: no camera's recording could be joined; nothing to make an avatar from")
    c = cams[primary]
    sw = Stopwatch()
    with frame_reader(session / c.video) as frame_at:
        manifest = finish_session(
            tracks[primary], session, session.name, frame_at, sw, max_gap_s,
            input_info={"cameras": [f"cam{k.camera}" for k in cams], "primary_camera": primary,
                        "video": str(session / c.video), "frames_recorded": c.frames,
                        "frames_decoded": int(tracks[primary].n_frames)},
            tool="pipeline.capture --recover")
    manifest["capture"] = {**base["capture"], "primary_camera": primary}
    manifest["outputs"].update(base["outputs"])
    manifest["status"] = f"{RECOVERED_STATUS}: recordings and avatar"
    decoded = np.array([t.n_frames if t is not None else 0 for t in tracks])
    short = [f"cam{k.camera}" for k, n in zip(cams, decoded) if k.video and n != k.frames]
    if short:
        manifest.setdefault("warnings", []).append(
            f"{', '.join(short)}: fewer frames decoded than the timestamps list")
    return manifest
