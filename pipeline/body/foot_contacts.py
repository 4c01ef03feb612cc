"""Ground contacts of the body solve's feet: when each foot stands on the floor.

Inputs: the take's `Tracks` and conditioned pose landmarks (`PoseInput`, pipeline.body.conditioning),
the hips in the camera frame, and the solved `BodyMotion` (pipeline.body.solve: glTF world, metres,
Y up) of a `Skeleton`. Outputs: per-frame foot speeds (N, 2) metres per second (`foot_speeds`) and
contacts (N, 2) bool, [left, right] (`detect_contacts`, `foot_contacts`), for pipeline.body.feet.

A foot is planted while it is still and low: the slower of its heel and toe (foot_index) landmarks
moves slowly (a foot on its heel as it lands, or on its toes as it pushes off, counts) and its ankle
is near the lowest seen ankle, with hysteresis (start below the _START thresholds, end above the
_END ones); only where the leg was seen (its joint confidences at least SEEN_CONFIDENCE and, when
the solve sets it, `joint_from_view`); contacts shorter than MIN_CONTACT_S are dropped, gaps
shorter than MAX_GAP_S closed. The speed is the landmarks' image speed in metres at the hips'
depth with one camera (not the solved world speed: the single-camera root comes from the hips'
apparent size and drifts by tenths of a metre per second while a foot stands still, Pose2Sim's
cam01), their 3D speed in the room with several cameras.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import savgol_filter

from pipeline.body.conditioning import PoseInput
from pipeline.body.filters import LANDMARK_ORDER, LANDMARK_WINDOW_S, _run_bounds
from pipeline.body.root_motion import camera_focal_px
from pipeline.body.skeleton import Skeleton
from pipeline.core.tracks import POSE, Tracks

FEET = ("left", "right")
FOOT_POINTS = ("heel", "foot_index")  # the landmarks whose stillness plants a foot
CONTACT_SPEED_START_MPS = 0.25   # a foot slower than this (m/s) may start a contact ...
CONTACT_SPEED_END_MPS = 0.45     # ... and faster than this ends it (MediaPipe jitter of a still
#                                  foot: 0.02-0.25 m/s; a stepping foot: 0.5-3.5 m/s, Pose2Sim cam01)
CONTACT_HEIGHT_START_M = 0.05    # ankle above the lowest seen ankle (m) that may start a contact ...
CONTACT_HEIGHT_END_M = 0.08      # ... and that ends it (a heel rising on the ball lifts it ~6 cm)
ABOVE_LOWEST_MAX_M = 0.12        # an ankle this far above the lowest seen ankle, even a moving one,
#                                  is never planted (Pose2Sim cam01: a standing foot 10 cm above a
#                                  swinging one the solve puts too low; cam02, legs swapped: 18 cm)
SPEED_MEDIAN_S = 0.1             # temporal median of the foot landmarks before their speed, seconds
MIN_CONTACT_S = 0.15             # shorter contacts are dropped, seconds (a swinging foot turning
#                                  round is still for up to 0.1 s; a running stance lasts 0.2 s)
MAX_GAP_S = 0.1                  # shorter gaps between two contacts of a foot are closed, seconds
SEEN_CONFIDENCE = 0.5            # leg and foot joint confidences at least this: the foot was seen
DEFAULT_FPS = 30.0               # frame rate when the motion has fewer than two frames


def frames_per_second(t_s: np.ndarray) -> float:
    """Frames per second of timestamps t_s (N,) seconds."""
    if len(t_s) < 2:
        return DEFAULT_FPS
    step = float(np.median(np.diff(t_s)))
    return 1.0 / step if step > 0 else DEFAULT_FPS


def _derivative_runs(x: np.ndarray, valid: np.ndarray, fps: float) -> np.ndarray:
    """(N, ...) time derivative (units per second) of x (N, ...) along axis 0: a temporal median
    (SPEED_MEDIAN_S: a landmark that jumps for a frame or two, such as a foot whose left/right
    label flickers, is no motion) then the landmark filter's Savitzky-Golay derivative, on every
    run of valid frames (a plain difference on runs too short for it); NaN outside the runs."""
    out = np.full(x.shape, np.nan)
    win = int(round(LANDMARK_WINDOW_S * fps)) | 1
    median = int(round(SPEED_MEDIAN_S * fps)) | 1
    for s, e in zip(*_run_bounds(valid)):
        n = e - s
        w = min(win, n if n % 2 else n - 1)
        if w > LANDMARK_ORDER + 1:
            steady = median_filter(x[s:e], size=(min(median, w),) + (1,) * (x.ndim - 1), mode="nearest")
            out[s:e] = savgol_filter(steady, w, LANDMARK_ORDER, deriv=1, axis=0, mode="interp") * fps
        elif n > 1:
            out[s:e] = np.gradient(x[s:e], axis=0) * fps
    return out


def foot_speeds(tracks: Tracks, pin: PoseInput, cam_t: np.ndarray, fps: float) -> np.ndarray:
    """(N, 2) speed of each foot [left, right], metres per second: the slower of its heel and toe
    (foot_index) landmarks, so a foot standing on its heel (landing) or on its toes (pushing off)
    counts as still; inf where unknown.

    tracks: the take (its image size, and whether it is `multiview`); pin: its conditioned pose
    landmarks; cam_t: (N, 3) the hips in the camera frame, levelled or not (metres, NaN where
    unknown), as the solve computed them: their distance from the camera scales the pixels; fps:
    frames per second. One camera: the landmarks' image-plane speed in metres at the hips'
    distance. Several cameras: the triangulated landmarks' 3D speed in
    the room (pin.world_mp + tracks.pose_root_m).
    """
    points = [POSE[f"{side}_{part}"] for side in FEET for part in FOOT_POINTS]
    if tracks.multiview:
        world = pin.world_mp[:, points] + np.asarray(tracks.pose_root_m, float)[:, None]
        speed = np.linalg.norm(_derivative_runs(world, pin.valid, fps), axis=-1)
    else:
        pixels = pin.image[:, points, :2] * np.asarray(tracks.image_size, float)
        depth = np.linalg.norm(np.asarray(cam_t, float), axis=1)  # distance: the same once levelled
        ok = np.isfinite(depth)
        if not ok.any():
            return np.full((len(pin.valid), 2), np.inf)
        idx = np.arange(len(depth))
        depth = np.interp(idx, idx[ok], depth[ok])
        speed = np.linalg.norm(_derivative_runs(pixels, pin.valid, fps), axis=-1)
        speed = speed * (depth / camera_focal_px(tracks.image_size))[:, None]
    speed = np.where(np.isfinite(speed), speed, np.inf)
    return speed.reshape(len(speed), len(FEET), len(FOOT_POINTS)).min(axis=2)


def _hysteresis(start: np.ndarray, stay: np.ndarray) -> np.ndarray:
    """(N,) bool: on from a frame where `start` holds until the first frame where `stay` fails."""
    out = np.zeros(len(start), bool)
    on = False
    for i in range(len(start)):
        on = bool(stay[i]) if on else bool(start[i])
        out[i] = on
    return out


def runs_of(flags: np.ndarray) -> list[tuple[int, int]]:
    """[(start, end exclusive)] of the runs of True in flags (N,)."""
    return list(zip(*(b.tolist() for b in _run_bounds(flags))))


def clean_runs(flags: np.ndarray, min_frames: int, max_gap_frames: int) -> np.ndarray:
    """flags (N,) bool with gaps shorter than max_gap_frames between two runs closed, then runs
    shorter than min_frames dropped."""
    out = flags.copy()
    spans = runs_of(out)
    for (_, e0), (s1, _) in zip(spans[:-1], spans[1:]):
        if s1 - e0 < max_gap_frames:
            out[e0:s1] = True
    for s, e in runs_of(out):
        if e - s < min_frames:
            out[s:e] = False
    return out


def seen_legs(skel: Skeleton, motion) -> np.ndarray:
    """(N, 2) bool [left, right]: the leg down to the foot was solved from seen landmarks."""
    seen = np.zeros((motion.n_frames, 2), bool)
    from_view = getattr(motion, "joint_from_view", None)
    for k, side in enumerate(FEET):
        joints = [skel.index(f"{side}{bone}") for bone in ("UpperLeg", "LowerLeg", "Foot")]
        seen[:, k] = motion.valid & (motion.joint_confidence[:, joints].min(axis=1) >= SEEN_CONFIDENCE)
        if from_view is not None:
            seen[:, k] &= np.asarray(from_view)[:, joints].all(axis=1)
    return seen


def detect_contacts(speed_mps: np.ndarray, ankle_rel_y: np.ndarray, seen: np.ndarray,
                    fps: float) -> np.ndarray:
    """(N, 2) bool, each foot planted on the floor.

    speed_mps: (N, 2) the feet's speeds (`foot_speeds`); ankle_rel_y: (N, 2) ankle heights
    relative to the hips (metres, any common origin); seen: (N, 2) bool, the leg was seen.
    """
    # Height above the lowest seen ankle whose toe is still: a swinging foot that one camera's
    # depth puts below the standing one (a leg lifted to the side) must not lift the standing foot.
    # A foot far above the lowest one is not on the floor whatever its speed (a leg the solve got
    # wrong, e.g. left and right swapped).
    still = seen & (speed_mps < CONTACT_SPEED_END_MPS)
    floor_ankles = np.where(still.any(axis=1, keepdims=True), still, seen)
    height = ankle_rel_y - np.where(floor_ankles, ankle_rel_y, np.inf).min(axis=1, keepdims=True)
    height[ankle_rel_y - np.where(seen, ankle_rel_y, np.inf).min(axis=1, keepdims=True) > ABOVE_LOWEST_MAX_M] = np.inf
    min_frames = max(2, int(round(MIN_CONTACT_S * fps)))
    max_gap = int(round(MAX_GAP_S * fps))
    contact = np.zeros(seen.shape, bool)
    for k in range(seen.shape[1]):
        start = seen[:, k] & (speed_mps[:, k] < CONTACT_SPEED_START_MPS) & (height[:, k] < CONTACT_HEIGHT_START_M)
        stay = seen[:, k] & (speed_mps[:, k] < CONTACT_SPEED_END_MPS) & (height[:, k] < CONTACT_HEIGHT_END_M)
        contact[:, k] = clean_runs(_hysteresis(start, stay), min_frames, max_gap) & seen[:, k]
    return contact


def foot_contacts(skel: Skeleton, motion, foot_speed_mps: np.ndarray) -> np.ndarray:
    """(N, 2) bool [left, right] contacts of the solved motion (a `BodyMotion`); foot_speed_mps (N, 2)
    from `foot_speeds`."""
    fps = frames_per_second(motion.t_s)
    ankles = [skel.index(f"{side}Foot") for side in FEET]
    pos = motion.forward_kinematics(skel)
    ankle_rel_y = pos[:, ankles, 1] - pos[:, :1, 1]
    return detect_contacts(np.asarray(foot_speed_mps, float), ankle_rel_y, seen_legs(skel, motion), fps)
