"""Single-camera body depth held to the image: MediaPipe's world landmarks refitted so that their
perspective projection meets its image landmarks, with the skeleton's bone lengths.

Inputs: the conditioned pose of N frames of one camera: image landmarks (N, 33, 3) normalised (x
right, y down, [0, 1] inside the frame), world landmarks (N, 33, 3) metres in MediaPipe's frame
(hip-centred, x image-right, y down, z away from the camera), visibility (N, 33), valid (N,)
bool; the image size (width, height) in pixels; the skeleton's segment lengths (metres, keys of
`pipeline.body.skeleton.MEASURED_RATIOS`); the frame rate. Output (`lift_to_image`): world
landmarks (N, 33, 3) in the same units and axes, hip-centred, NaN where not valid; frames that
cannot be fitted keep MediaPipe's.

Why: MediaPipe's world landmarks are right about the image plane to about its 2D accuracy, but
their depth is the weak part (on Pose2Sim's 4-camera demo, after Procrustes alignment to the
triangulation, the mean residual is 20-37 mm across the image and about 60 mm in depth), and their
limbs do not keep one length (the arms come out about 10 % short of the legs' proportion). The
image landmarks are a measurement; the depth of a bone whose length is known follows from how
long it looks in the image, up to its sign.

How, per frame (vectorised over frames):
  1. Camera: a pinhole with CAMERA_FOV_DEG across the image's long side (`focal_px`; 1567 px
     for Pose2Sim's 1080 x 1920 cameras, whose calibration says 1675-1682), principal point at
     the image centre. The focal length is not fitted: over a factor of two of focal length the
     reprojection error changes by a few percent only on the demo's cameras, and its minimum is
     not at the calibrated value. Then the rotation and translation that put MediaPipe's world
     landmarks onto the image landmarks (`fit_pose_camera`, Gauss-Newton on rotation vector and
     translation from the linear translation-only solution): MediaPipe's world frame is turned
     9-14 degrees from the camera's on the demo.
  2. Lift (`_solve`): the 3D landmarks in the camera, found by a few Gauss-Newton steps on
       * the image: projection minus image landmark, as metres at the subject's depth
         (IMAGE_SIGMA_M), weighted by visibility and only inside the frame;
       * the shape: each bone of the landmark tree (SHAPE_EDGES) close to MediaPipe's rotated
         bone vector, loosely across the image (SHAPE_SIGMA_XY_M) and more loosely in depth
         (SHAPE_SIGMA_Z_M): MediaPipe's depth is the prior for the sign and order of the depth;
       * the skeleton's lengths (LENGTH_SEGMENTS, LENGTH_SIGMA_M);
       * time: each landmark close to a Savitzky-Golay smoothing (SMOOTH_WINDOW_S) of the previous
         step's solution (SMOOTH_SIGMA_M), so the depth does not jitter with the image noise;
       * a weak anchor to the start (ANCHOR_SIGMA_M), so unseen bodies stay where MediaPipe put
         them.
  3. Landmarks not solved (the eyes, mouth and thumbs) ride on their parent landmark with
     MediaPipe's rotated offset.
  4. An elbow bending backward has its forearm's depth mirrored about the elbow, as the solve
     does for a knee bending forward; of two readings that both bend it forward, the straighter
     is taken (`_bend_elbows_forward`).
  5. The result goes back into MediaPipe's orientation (the inverse of the fitted rotation) and
     about the hips: only the body's shape changes, not how the whole body is turned, which the
     camera fit cannot tell well where little of the body is seen (a head-and-shoulders take).
Cost: one dense (69 x 69) solve per frame and step, in chunks of CHUNK_FRAMES frames: about
0.7 ms of CPU per frame (Pose2Sim's cam01 repeated to 3000 frames), 6-7 s for a 5-minute take
at 30 fps.

`image_segment_lengths` measures the arm segments from the image instead of MediaPipe's world
landmarks (the image across, MediaPipe's depth along the view), for the skeleton's sizing.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.body.filters import _savgol_runs
from pipeline.body.landmarks import inside_image
from pipeline.body.rotations import MP_TO_GLTF, _frame, _swing, _unit
from pipeline.core.chunks import CHUNK_FRAMES, per_frame_chunks
from pipeline.core.tracks import POSE, Tracks

CAMERA_FOV_DEG = 63.0           # field of view across the image's long side, degrees: MediaPipe's
                                # virtual camera's; phones and webcams have 60-78 (see focal_px)
MIN_FIT_WEIGHT = 0.5            # landmarks fitting the camera: visibility (times inside) at least this
MIN_FIT_LANDMARKS = 4           # fewer: the frame is not lifted (MediaPipe's landmarks are kept)
MIN_DEPTH_M = 0.1               # a camera fit this close (or behind the camera) has failed, metres
START_DEPTH_M = 3.0             # depth assumed where the linear fit fails, metres (only a start)
PNP_ITERATIONS = 6              # Gauss-Newton steps of the camera fit
LIFT_ITERATIONS = 6             # Gauss-Newton steps of the lift
WINDOW_FRAMES = 2048            # frames per window of the lift (bounds its memory in the take's length)
WINDOW_MARGIN_S = 2.0           # of the take solved on either side of a window, seconds (the smoothing
                                # reaches about LIFT_ITERATIONS x half its window, 0.6 s)
IMAGE_SIGMA_M = 0.02            # image landmark noise, metres at the subject (about 10 px of 1920 at 3.3 m)
SHAPE_SIGMA_XY_M = 0.04         # MediaPipe's bone vectors across the view, metres
SHAPE_SIGMA_Z_M = 0.08          # ... and along it (depth is its weak part), metres
LENGTH_SIGMA_M = 0.01           # the skeleton's segment lengths, metres
SMOOTH_SIGMA_M = 0.02           # pull toward the smoothed previous step, metres
SMOOTH_WINDOW_S = 0.2           # its Savitzky-Golay window, seconds
SMOOTH_ORDER = 2                # ... and polynomial order
ANCHOR_SIGMA_M = 1.0            # weak pull toward the start, metres (keeps unseen parts in place)
RIDGE = 1e-9                    # added to the normal equations' diagonal, for numerical safety
MIN_LENGTH_M = 1e-6             # a segment shorter than this has no direction
MIN_SEGMENT_FRAMES = 3          # image lengths from fewer frames are not used
MIN_SEGMENT_VISIBILITY = 0.5    # both ends at least this visible (and inside the frame) to measure

# The landmarks the lift solves for, and those carried along by a parent with MediaPipe's offset.
LIFTED = ("nose", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
          "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
          "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
          "left_heel", "right_heel", "left_foot_index", "right_foot_index")
# Pose landmarks 1-6 are the eyes (inner, centre, outer), 9-10 the mouth corners.
CARRIED = {1: "nose", 2: "nose", 3: "nose", 4: "nose", 5: "nose", 6: "nose", 9: "nose", 10: "nose",
           POSE["left_thumb"]: "left_wrist", POSE["right_thumb"]: "right_wrist"}
_HIPS = ("left_hip", "right_hip")
_SHOULDERS = ("left_shoulder", "right_shoulder")
# Bones of the landmark tree (from-group, to-group; a group's position is its landmarks' mean).
SHAPE_EDGES = [(("left_hip",), ("right_hip",)), (_HIPS, _SHOULDERS), (("right_shoulder",), ("left_shoulder",)),
               (_SHOULDERS, ("nose",)), (("nose",), ("left_ear",)), (("nose",), ("right_ear",))]
for _side in ("left", "right"):
    SHAPE_EDGES += [((f"{_side}_shoulder",), (f"{_side}_elbow",)), ((f"{_side}_elbow",), (f"{_side}_wrist",)),
                    ((f"{_side}_wrist",), (f"{_side}_pinky",)), ((f"{_side}_wrist",), (f"{_side}_index",)),
                    ((f"{_side}_hip",), (f"{_side}_knee",)), ((f"{_side}_knee",), (f"{_side}_ankle",)),
                    ((f"{_side}_ankle",), (f"{_side}_heel",)), ((f"{_side}_ankle",), (f"{_side}_foot_index",))]
# Segments held to the skeleton's lengths: (skeleton length key, from-group, to-group).
LENGTH_SEGMENTS = [("shoulder_width", ("left_shoulder",), ("right_shoulder",)),
                   ("hip_width", ("left_hip",), ("right_hip",)), ("torso", _HIPS, _SHOULDERS)]
for _side in ("left", "right"):
    LENGTH_SEGMENTS += [("upper_arm", (f"{_side}_shoulder",), (f"{_side}_elbow",)),
                        ("lower_arm", (f"{_side}_elbow",), (f"{_side}_wrist",)),
                        ("upper_leg", (f"{_side}_hip",), (f"{_side}_knee",)),
                        ("lower_leg", (f"{_side}_knee",), (f"{_side}_ankle",))]
IMAGE_LENGTH_KEYS = ("upper_arm", "lower_arm")  # measured from the image by `image_segment_lengths`
HAND_PARTS = ("pinky", "index", "thumb")     # hand landmarks that move with the wrist
DEPTH_MIRROR = np.array([1.0, 1.0, -1.0])       # a vector with its depth mirrored
# Two readings of a forearm that both bend the elbow forward: the mirrored one is preferred by as
# much as its cosine between upper arm and forearm exceeds the other's by more than this (a few
# degrees: not on noise). Measured on Pose2Sim's 4 cameras against their triangulation (PA-MPJPE of
# 12 joints): 0.0 and 0.1 give the same within 1 mm; 0.3 takes hardly any frame.
ELBOW_STRAIGHTER_COS = 0.05
# Changing reading from one frame to the next costs this per unit of the forearm direction's jump
# (unit vectors), in the same units as the preference (cosines): a forearm's reading changes where
# its depth is small (the two readings close), or after a run of frames that clearly prefer the
# other, never back and forth (flicker of up to 155 degrees a frame on Pose2Sim's cam01 otherwise).
READING_SWITCH_COST = 1.0
BACKWARD_COST = 1e6             # a reading bending the elbow backward when the other does not

_K = len(LIFTED)
_LIFTED_IDX = np.array([POSE[name] for name in LIFTED])


def _coefficients(groups: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> np.ndarray:
    """(E, K) coefficients over the lifted landmarks: mean of the to-group minus mean of the from-group."""
    out = np.zeros((len(groups), _K))
    for row, (start, end) in enumerate(groups):
        for names, sign in ((start, -1.0), (end, 1.0)):
            for name in names:
                out[row, LIFTED.index(name)] += sign / len(names)
    return out


_EDGE_C = _coefficients(SHAPE_EDGES)
_SEGMENT_C = _coefficients([(a, b) for _, a, b in LENGTH_SEGMENTS])
_SHAPE_W = 1.0 / np.array([SHAPE_SIGMA_XY_M, SHAPE_SIGMA_XY_M, SHAPE_SIGMA_Z_M]) ** 2
# The shape term's normal matrix is the same in every frame: (3K, 3K).
_SHAPE_H = np.einsum("bk,bl,d,de->kdle", _EDGE_C, _EDGE_C, _SHAPE_W, np.eye(3)).reshape(3 * _K, 3 * _K)


def focal_px(image_size: tuple[int, int]) -> float:
    """Focal length (pixels) of the assumed camera for an image (width, height): CAMERA_FOV_DEG
    across the image's long side."""
    return 0.5 * max(image_size) / np.tan(np.radians(CAMERA_FOV_DEG) / 2)


def image_rays(image: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(..., 2) normalised camera coordinates (x/z, y/z) of image landmarks (..., 3) (normalised
    image coordinates); the principal point is the image centre."""
    width, height = image_size
    focal = focal_px(image_size)
    return np.stack([(image[..., 0] - 0.5) * width / focal, (image[..., 1] - 0.5) * height / focal], axis=-1)


def image_weight(image: np.ndarray, vis: np.ndarray) -> np.ndarray:
    """(...,) weight of each image landmark: its visibility, 0 outside the frame or where unknown."""
    return np.nan_to_num(np.clip(vis, 0.0, 1.0) * inside_image(image))


def _projection_jacobian(points: np.ndarray) -> np.ndarray:
    """(..., 2, 3) derivative of (x/z, y/z) with respect to the point (..., 3)."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    jac = np.zeros(points.shape[:-1] + (2, 3))
    jac[..., 0, 0] = jac[..., 1, 1] = 1.0 / z
    jac[..., 0, 2] = -x / z ** 2
    jac[..., 1, 2] = -y / z ** 2
    return jac


def _linear_translation(world: np.ndarray, rays: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(N, 3) translation t (rotation identity) with (world + t) projecting onto the rays, linear
    least squares: x + tx = u (z + tz) and y + ty = v (z + tz) per landmark."""
    n, k = rays.shape[:2]
    rows = np.zeros((n, k, 2, 3))
    rows[..., 0, 0] = rows[..., 1, 1] = 1.0
    rows[..., 0, 2], rows[..., 1, 2] = -rays[..., 0], -rays[..., 1]
    rhs = np.stack([rays[..., 0] * world[..., 2] - world[..., 0], rays[..., 1] * world[..., 2] - world[..., 1]], -1)
    sw = np.sqrt(weight)[..., None]
    rows = (rows * sw[..., None]).reshape(n, 2 * k, 3)
    rhs = (rhs * sw).reshape(n, 2 * k)
    normal = np.einsum("nki,nkj->nij", rows, rows) + RIDGE * np.eye(3)
    t = np.linalg.solve(normal, np.einsum("nki,nk->ni", rows, rhs)[..., None])[..., 0]
    bad = ~np.isfinite(t).all(1) | (t[:, 2] < MIN_DEPTH_M)
    t[bad] = (0.0, 0.0, START_DEPTH_M)
    return t


def fit_pose_camera(world: np.ndarray, rays: np.ndarray,
                    weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame rotation R (N, 3, 3) and translation t (N, 3) taking world landmarks (N, K, 3)
    (MediaPipe's frame, metres) into the camera so that they project onto `rays` (N, K, 2)
    (normalised camera coordinates), weighted least squares (weight (N, K)); and (N,) bool where
    the fit holds (enough landmarks, in front of the camera). Each frame is fitted on its own, in
    chunks of frames (the Jacobians of a whole take would grow with its length)."""
    return per_frame_chunks(_fit_pose_camera_chunk, world, rays, weight)


def _fit_pose_camera_chunk(world: np.ndarray, rays: np.ndarray,
                           weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fit_pose_camera on one chunk of frames."""
    n = len(world)
    weight = np.where(weight >= MIN_FIT_WEIGHT, weight, 0.0)
    rot = np.tile(np.eye(3), (n, 1, 1))
    t = _linear_translation(world, rays, weight)
    sw = np.sqrt(weight)[..., None]
    for _ in range(PNP_ITERATIONS):
        turned = np.einsum("nij,nkj->nki", rot, world)
        cam = turned + t[:, None]
        resid = (cam[..., :2] / cam[..., 2:3] - rays) * sw                       # (N, K, 2)
        d_proj = _projection_jacobian(cam) * sw[..., None]                        # (N, K, 2, 3)
        # A small rotation w turns a point p by w x p: d(cam)/dw = -[p]x.
        d_rot = -np.cross(turned[..., None, :], np.eye(3)[None, None], axis=-1).swapaxes(-1, -2)
        jac = np.concatenate([np.einsum("nkab,nkbc->nkac", d_proj, d_rot), d_proj], -1).reshape(n, -1, 6)
        normal = np.einsum("nri,nrj->nij", jac, jac) + RIDGE * np.eye(6)
        step = -np.linalg.solve(normal, np.einsum("nri,nr->ni", jac, resid.reshape(n, -1))[..., None])[..., 0]
        step = np.nan_to_num(step)
        rot = Rotation.from_rotvec(step[:, :3]).as_matrix() @ rot
        t = t + step[:, 3:]
    ok = ((weight > 0).sum(1) >= MIN_FIT_LANDMARKS) & np.isfinite(t).all(1) & (t[:, 2] > MIN_DEPTH_M)
    return rot, t, ok


def _segment_lengths(lengths: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of _SEGMENT_C whose skeleton length is known, and those lengths (metres)."""
    rows = [i for i, (key, _, _) in enumerate(LENGTH_SEGMENTS) if key in lengths]
    return np.array(rows, np.int64), np.array([lengths[LENGTH_SEGMENTS[i][0]] for i in rows])


def _length_terms(points: np.ndarray, rows: np.ndarray, target_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normal-equation blocks (N, K, 3, K, 3) and gradient (N, K, 3) of the segment lengths of
    points (N, K, 3) against target_m (S,) for the segments `rows` of _SEGMENT_C."""
    coef = _SEGMENT_C[rows]                                             # (S, K)
    vec = coef @ points                                                  # (N, S, 3)
    length = np.maximum(np.linalg.norm(vec, axis=-1), MIN_LENGTH_M)
    unit = vec / length[..., None]
    outer = np.einsum("nsa,nsb->nsab", unit, unit) / LENGTH_SIGMA_M ** 2
    normal = np.zeros((len(points), _K, 3, _K, 3))
    for s, row in enumerate(coef):  # a segment touches 2-4 landmarks: add its blocks one by one
        ends = np.flatnonzero(row)
        for k in ends:
            for m in ends:
                normal[:, k, :, m, :] += row[k] * row[m] * outer[:, s]
    grad = coef.T @ (unit * ((length - target_m) / LENGTH_SIGMA_M ** 2)[..., None])
    return normal, grad


def _lift_step(points: np.ndarray, target: dict[str, np.ndarray], rows: np.ndarray, lengths_m: np.ndarray,
               smooth: np.ndarray | None) -> np.ndarray:
    """One Gauss-Newton step of the lift for a chunk of frames (see the module docstring).

    points: (N, K, 3) current landmarks in the camera (metres); target: "rays" (N, K, 2), "weight"
    (N, K), "edges" (N, E, 3) MediaPipe's rotated bone vectors, "start" (N, K, 3); smooth: (N, K, 3)
    the smoothed previous solution or None. Returns the updated points.
    """
    n = len(points)
    depth = np.median(points[..., 2], axis=1)[:, None]                   # metres per unit of x/z
    w_img = target["weight"] * (depth / IMAGE_SIGMA_M) ** 2              # (N, K)
    jac = _projection_jacobian(points)                                   # (N, K, 2, 3)
    resid = points[..., :2] / points[..., 2:3] - target["rays"]
    jac_w = jac.swapaxes(-1, -2) * w_img[..., None, None]               # (N, K, 3, 2)
    diag = jac_w @ jac                                                   # (N, K, 3, 3)
    grad = (jac_w @ resid[..., None])[..., 0]
    edges = _EDGE_C @ points - target["edges"]                           # (N, E, 3)
    grad += _EDGE_C.T @ (edges * _SHAPE_W)
    normal, g_len = _length_terms(points, rows, lengths_m)
    grad += g_len
    diag += np.eye(3) / ANCHOR_SIGMA_M ** 2
    grad += (points - target["start"]) / ANCHOR_SIGMA_M ** 2
    if smooth is not None:
        diag += np.eye(3) / SMOOTH_SIGMA_M ** 2
        grad += (points - smooth) / SMOOTH_SIGMA_M ** 2
    for k in range(_K):
        normal[:, k, :, k, :] += diag[:, k]
    normal = normal.reshape(n, 3 * _K, 3 * _K) + _SHAPE_H + RIDGE * np.eye(3 * _K)
    step = np.linalg.solve(normal, grad.reshape(n, -1, 1))[..., 0]
    return points - step.reshape(n, _K, 3)


def _solve(start: np.ndarray, target: dict[str, np.ndarray], lengths: dict[str, float], frames: np.ndarray,
           fps: float) -> np.ndarray:
    """(N, K, 3) lifted landmarks from the start (N, K, 3) (camera frame, metres), LIFT_ITERATIONS
    steps over chunks of frames; the smoothing term runs along the runs of consecutive frames of
    the take (`frames` (N,) int: each row's frame index; a jump starts a new run)."""
    rows, lengths_m = _segment_lengths(lengths)
    points = start.copy()
    for step in range(LIFT_ITERATIONS):
        smooth = None if step == 0 else _smooth_runs(points, frames, fps)
        for lo in range(0, len(points), CHUNK_FRAMES):
            part = slice(lo, lo + CHUNK_FRAMES)
            points[part] = _lift_step(points[part], {k: v[part] for k, v in target.items()}, rows, lengths_m,
                                      None if smooth is None else smooth[part])
    return points


def _smooth_runs(points: np.ndarray, frames: np.ndarray, fps: float) -> np.ndarray:
    """points (N, ...) Savitzky-Golay smoothed (SMOOTH_WINDOW_S) along each run of consecutive
    frame indices `frames` (N,), never across a gap (a person leaving, frames rejected)."""
    gaps = np.flatnonzero(np.diff(frames) > 1) + 1
    spaced = np.insert(points, gaps, np.nan, axis=0)  # one invalid row at each gap
    valid = np.insert(np.ones(len(points), bool), gaps, False)
    smoothed = _savgol_runs(spaced, valid, fps, SMOOTH_WINDOW_S, SMOOTH_ORDER)
    return np.delete(smoothed, gaps + np.arange(len(gaps)), axis=0)


def lift_to_image(image_size: tuple[int, int], image: np.ndarray, world: np.ndarray, vis: np.ndarray,
                  valid: np.ndarray, lengths: dict[str, float], fps: float,
                  window_frames: int = WINDOW_FRAMES) -> np.ndarray:
    """World landmarks (N, 33, 3) (MediaPipe's axes, metres, hip-centred) whose perspective
    projection meets the image landmarks with the skeleton's `lengths` (see the module docstring).

    image: (N, 33, 3) normalised; world: (N, 33, 3) MediaPipe world landmarks; vis: (N, 33);
    valid: (N,) bool; lengths: skeleton segment lengths (metres); fps: frames per second. Frames
    not valid, or where the camera fit fails, are returned unchanged. The lift runs over windows of
    `window_frames` frames, each solved with WINDOW_MARGIN_S of the take on either side (its
    smoothing reaches a fraction of that), so its memory does not grow with the take's length.
    """
    out = np.array(world, np.float64, copy=True)
    idx = np.flatnonzero(valid & np.isfinite(world).all(axis=(1, 2)) & np.isfinite(image[..., :2]).all(axis=(1, 2)))
    if len(idx) == 0:
        return out
    margin = int(np.ceil(WINDOW_MARGIN_S * fps))
    parts = []
    for lo in range(0, len(idx), window_frames):
        a, b = max(0, lo - margin), min(len(idx), lo + window_frames + margin)
        rows = idx[a:b]
        body, rot, ok = _lift_window(image_size, image[rows], out[rows], vis[rows], rows, lengths, fps)
        keep = slice(lo - a, lo - a + min(window_frames, len(idx) - lo))
        parts.append((body[keep], rot[keep], ok[keep]))
    body, rot, ok = (np.concatenate(x) for x in zip(*parts))
    body, rot = body[ok], rot[ok]
    _bend_elbows_forward(body)  # over the whole take: its reading is chosen along the take
    body -= body[:, [POSE["left_hip"], POSE["right_hip"]]].mean(1, keepdims=True)
    # Back into MediaPipe's orientation: only the shape changes (the per-frame camera rotation is
    # fitted to compare MediaPipe's shape with the image, not to turn the body).
    out[idx[ok]] = np.einsum("nji,nkj->nki", rot, body)
    return out


def _lift_window(image_size: tuple[int, int], image: np.ndarray, world: np.ndarray, vis: np.ndarray,
                 frames: np.ndarray, lengths: dict[str, float],
                 fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lift of M valid frames (`frames` (M,) their indices in the take; the other arguments as
    lift_to_image's, M rows each): the body (M, 33, 3) in the camera (metres; rows not `ok` are
    undefined), the fitted camera rotation (M, 3, 3) and (M,) bool where the camera fit holds."""
    rays = image_rays(image[:, _LIFTED_IDX], image_size)
    weight = image_weight(image[:, _LIFTED_IDX], vis[:, _LIFTED_IDX])
    rot, t, ok = fit_pose_camera(world[:, _LIFTED_IDX], rays, weight)
    turned = np.einsum("nij,nkj->nki", rot, world)                      # MediaPipe's shape, camera axes
    start = turned[:, _LIFTED_IDX] + t[:, None]
    target = {"rays": rays, "weight": weight, "start": start,
              "edges": np.einsum("ek,nkd->ned", _EDGE_C, turned[:, _LIFTED_IDX])}
    lifted = _solve(start[ok], {k: v[ok] for k, v in target.items()}, lengths, frames[ok], fps)
    body = turned + t[:, None]
    body[np.ix_(ok, _LIFTED_IDX)] = lifted
    for child, parent in CARRIED.items():  # ride on the parent with MediaPipe's offset
        body[ok, child] = lifted[:, LIFTED.index(parent)] + turned[ok, child] - turned[ok, POSE[parent]]
    return body, rot, ok


def weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    """The median of values x (K,) with weights w (K,) >= 0, not all 0."""
    order = np.argsort(x)
    cum = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cum, 0.5 * cum[-1])])


def image_segment_lengths(tracks: Tracks) -> dict[str, float]:
    """Lengths (metres, MediaPipe's scale) of the IMAGE_LENGTH_KEYS segments measured from the
    image: per frame, the segment's extent across the view is its image extent at the fitted
    depth of each end, its extent along the view MediaPipe's depth; weighted median over the
    frames where both ends are visible (>= MIN_SEGMENT_VISIBILITY) and inside the frame. Segments
    seen in fewer than MIN_SEGMENT_FRAMES frames are left out (the caller keeps its own)."""
    valid = np.asarray(tracks.pose_valid, bool) & np.isfinite(tracks.pose_world_m).all(axis=(1, 2))
    if valid.sum() < MIN_SEGMENT_FRAMES:
        return {}
    world = tracks.pose_world_m[valid][:, _LIFTED_IDX].astype(np.float64)
    image = tracks.pose_image[valid][:, _LIFTED_IDX].astype(np.float64)
    rays = np.nan_to_num(image_rays(image, tracks.image_size))
    weight = image_weight(image, tracks.pose_visibility[valid][:, _LIFTED_IDX].astype(np.float64))
    rot, t, ok = fit_pose_camera(world, rays, weight)
    turned = np.einsum("nij,nkj->nki", rot, world)
    across = rays * (turned[..., 2] + t[:, None, 2])[..., None]          # metres across the view
    out = {}
    for key in IMAGE_LENGTH_KEYS:
        lengths, weights = [], []
        for name, start, end in LENGTH_SEGMENTS:
            if name != key:
                continue
            a, b = LIFTED.index(start[0]), LIFTED.index(end[0])
            length = np.hypot(np.linalg.norm(across[:, b] - across[:, a], axis=-1), turned[:, b, 2] - turned[:, a, 2])
            w = np.minimum(weight[:, a], weight[:, b])
            use = ok & (w >= MIN_SEGMENT_VISIBILITY) & np.isfinite(length)
            lengths.append(length[use])
            weights.append(w[use])
        length, w = np.concatenate(lengths), np.concatenate(weights)
        if len(length) >= MIN_SEGMENT_FRAMES:
            out[key] = weighted_median(length, w)
    return out


def _two_state_path(unary: np.ndarray, switch: np.ndarray) -> np.ndarray:
    """(M,) bool: the cheapest sequence of two states (Viterbi) with per-frame costs unary (M, 2)
    and costs switch (M, 2) of entering each state at frame k from the other one at k - 1."""
    m = len(unary)
    if m == 0:
        return np.zeros(0, bool)
    cost, back = unary[0].copy(), np.zeros((m, 2), np.int64)
    for k in range(1, m):
        total = cost[:, None] + np.array([[0.0, switch[k, 1]], [switch[k, 0], 0.0]])  # (from, to)
        back[k] = total.argmin(0)
        cost = total.min(0) + unary[k]
    path = np.zeros(m, np.int64)
    path[-1] = int(cost.argmin())
    for k in range(m - 1, 0, -1):
        path[k - 1] = back[k, path[k]]
    return path.astype(bool)


def _mirrored_forearms(upper_arm: np.ndarray, forearm: np.ndarray, ahead: np.ndarray,
                       mirrored: np.ndarray) -> np.ndarray:
    """(M,) bool: frames whose forearm depth is to be mirrored about the elbow, from the upper arm
    and forearm vectors (M, 3) (glTF axes) and the forearm's component ahead of the upper arm
    (M,) as read and mirrored (see `_bend_elbows_forward`)."""
    flipped = forearm * DEPTH_MIRROR
    prefer = (np.einsum("nd,nd->n", _unit(upper_arm), _unit(flipped))
              - np.einsum("nd,nd->n", _unit(upper_arm), _unit(forearm)) - ELBOW_STRAIGHTER_COS)
    unary = np.stack([np.maximum(prefer, 0.0), np.maximum(-prefer, 0.0)], axis=1)
    unary[(ahead < 0.0) & (mirrored > ahead), 0] = BACKWARD_COST  # the hinge rule
    unary[(mirrored < 0.0) & (ahead >= 0.0), 1] = BACKWARD_COST
    readings = np.stack([_unit(forearm), _unit(flipped)], axis=1)  # (M, 2, 3)
    # The mirror keeps distances, so staying in either reading moves the forearm as much; a switch
    # costs the jump beyond that motion.
    stay = np.linalg.norm(readings[1:, 0] - readings[:-1, 0], axis=-1)
    switch = np.zeros((len(forearm), 2))
    switch[1:, 1] = np.linalg.norm(readings[1:, 1] - readings[:-1, 0], axis=-1) - stay  # into mirrored
    switch[1:, 0] = np.linalg.norm(readings[1:, 0] - readings[:-1, 1], axis=-1) - stay  # back
    return _two_state_path(unary, READING_SWITCH_COST * np.maximum(switch, 0.0))


def _bend_elbows_forward(points: np.ndarray) -> None:
    """Mirror, in place, the depth of a wrist about the elbow (the hand moving with it) where the
    elbow bends backward, or where both readings bend it forward and the mirrored one is the
    straighter: points (N, 33, 3) in the camera (MediaPipe's axes, metres), consecutive frames.

    An elbow is a hinge that bends the forearm forward of the upper arm (toward +Z in the upper
    arm's frame, which is the chest frame swung along the shortest arc from the T-pose's arm; its
    twist, about +-90 degrees, keeps the forearm in that half-space; on Pose2Sim's 4-camera
    reference the forearm's +Z component is 0.12 at least). A forearm behind it is MediaPipe
    reading its depth backward (camera 2 of the demo: 23 % of the frames of one arm); the image
    cannot tell the two apart, so the wrist's depth is mirrored about the elbow, which keeps the
    image and the length. Where the upper arm itself points along the view (a camera above or
    below the subject), both readings can bend the elbow forward; then the straighter one is
    preferred (by how much its cosine between upper arm and forearm is larger, beyond
    ELBOW_STRAIGHTER_COS): MediaPipe tends to bend such elbows toward the camera. On Pose2Sim's
    cam01 (looking down 30 degrees at a man whose left arm hangs nearly straight) it bent his left
    elbow by about 45 degrees toward the camera in 75 of 100 frames. The reading is chosen over
    the take (`_mirrored_forearms`, two states), so it does not flicker from frame to frame. The
    hand keeps its shape (mirroring it too would turn the palm, and the forearm's twist with it,
    by up to 155 degrees where the reading changes). Like the solve's knee rule
    (pipeline.body.limbs), it cannot tell a hand behind the back from one in front when MediaPipe
    reads it backward.
    """
    gltf = points * MP_TO_GLTF
    shoulders = gltf[:, [POSE["left_shoulder"], POSE["right_shoulder"]]]
    hips = gltf[:, [POSE["left_hip"], POSE["right_hip"]]]
    chest = _frame(_unit(shoulders[:, 0] - shoulders[:, 1]), _unit(shoulders.mean(1) - hips.mean(1)))
    for side, sign_x in (("left", 1.0), ("right", -1.0)):
        elbow, wrist = POSE[f"{side}_elbow"], POSE[f"{side}_wrist"]
        upper_arm = gltf[:, elbow] - gltf[:, POSE[f"{side}_shoulder"]]
        swing = _swing(np.array([sign_x, 0.0, 0.0]), chest.inv().apply(upper_arm))
        forearm = gltf[:, wrist] - gltf[:, elbow]
        ahead = (chest * swing).inv().apply(forearm)[:, 2]
        mirrored = (chest * swing).inv().apply(forearm * DEPTH_MIRROR)[:, 2]
        rows = np.flatnonzero(_mirrored_forearms(upper_arm, forearm, ahead, mirrored))
        shift = 2.0 * (points[rows, elbow, 2] - points[rows, wrist, 2])
        hand = [wrist] + [POSE[f"{side}_{part}"] for part in HAND_PARTS]
        points[rows[:, None], hand, 2] += shift[:, None]
