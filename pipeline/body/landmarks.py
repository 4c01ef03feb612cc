"""The body solve's working data: which landmarks are seen, and the joint rotations being solved.

Inputs: conditioned MediaPipe landmarks of N frames (pipeline.body.conditioning: image (N, 33, 3)
normalised, visibility (N, 33), valid (N,) bool) and, once levelled, the world landmarks (N, 33, 3)
metres in the glTF frame (pipeline.body.rotations). Outputs: `Landmarks` (positions, smoothed
visibility and "seen" weights per landmark) and `SolvedPose` (per joint: N local and global
rotations, confidence and whether the rotation was solved from view).

A landmark counts as seen in a frame when MediaPipe calls it visible AND it lies inside the image
(INSIDE_MARGIN) AND its frame holds a body that passed screening (pipeline.body.screening: rejected
frames are not valid). The product is low-pass filtered like the visibility (zero-phase,
VISIBILITY_TAU_S), so a limb leaving the frame fades out over a few frames instead of popping, and a
bone follows its landmarks with the weight SEEN_VIS_LO -> SEEN_VIS_HI of the smallest seen value of
the landmarks that drive it. MediaPipe's guesses for landmarks outside the image (the hips of a
head-and-shoulders shot: visibility 0, image y about 2) never drive a bone.

SEEN_VIS_LO/HI are much lower than the old visibility ramp (0.5 -> 0.7): a limb hidden behind the
body but inside the image is MediaPipe's inference from the silhouette, and it beats a held or rest
pose. Pose2Sim's cam03 sees the man from behind: his right elbow, wrist, knee and ankle have
visibility 0.16-0.94 (right wrist: 5th/25th/50th percentile 0.16/0.21/0.63); against the 4-camera
triangulation (PA-MPJPE of 12 joints, as `benchmarks/bench_body.py` measures it) the solve is 85.2 mm
with the ramp 0.3 -> 0.5, 84.6 with 0.2 -> 0.4, 82.5 with 0.1 -> 0.3 and 82.7 following every
landmark inside the image; MediaPipe's own landmarks are 83.9. Outside the image nothing is
followed, whatever its visibility (MediaPipe's guesses there have visibility 0.0-0.35 on
wolfgang and face_noface, at image y 1.1-2.3).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.body.filters import VISIBILITY_TAU_S, _hold, _lowpass_runs
from pipeline.body.rotations import _ramp
from pipeline.core.tracks import POSE

SEEN_VIS_LO, SEEN_VIS_HI = 0.1, 0.3  # seen-weight ramp: below LO a bone takes its default, above HI its landmarks
INSIDE_MARGIN = 0.02                 # normalised image units a landmark may lie outside the frame and count as inside
# The hand's orientation (wrist -> knuckles, a few pixels long in full-body shots) needs its
# landmarks clearly visible: with the low ramp the hands of Sports2D's small figures turn by 64-70
# degrees per frame (99th percentile) against 33 with this one.
HAND_SEEN_RAMP = (0.5, 0.7)
SEEN = 0.5                           # a bone's weight at least this: `from_view` (solved from view)
# The hips decide the torso's lean, so they must be clearly in view: MediaPipe places hips that are
# below the frame's bottom edge inside it with visibility 0.6-0.9 (p2s_seated: truly 5-25 % of the
# crop's height below the edge, reported at image y 0.8-0.95, both-hips visibility median 0.73),
# while hips in view have 0.91 and up (1st percentile over both hips, in p2s_cam01-04, p2s_half_body,
# Sports2D, s2d_walk_in_out, p2s_multi_cam03). Their visibility is mapped through this ramp
# before it counts as seen (weight 0.5 at about 0.87).
HIPS_VISIBILITY_RAMP = (0.85, 0.95)
# A landmark outside the image is never seen, whatever the low-pass carries over from the frames
# around it; when it comes back in, its evidence rises linearly from 0 to all of it over this long
# (seconds), so the bone eases from its held or rest pose toward the view (and catches up at a
# bounded rate: pipeline.body.rotations.CATCH_UP_DEG_PER_S). Without the gate, the low-pass leaked
# the in-view frames' evidence into the out-of-view ones: s2d_seated's arms in jumping jacks
# followed MediaPipe's guesses outside the crop (seen 0.3-0.4) and moved away from rest by up to
# 7-15 degrees a frame. Landmarks in view from the take's first frame with a body are not entering.
ENTRY_S = 0.3
HIPS = (POSE["left_hip"], POSE["right_hip"])


def inside_image(image: np.ndarray) -> np.ndarray:
    """(N, 33) bool: the landmarks (N, 33, 3) normalised image coordinates lie inside the image
    (with INSIDE_MARGIN); NaN counts as outside."""
    with np.errstate(invalid="ignore"):
        xy = image[..., :2]
        return ((xy > -INSIDE_MARGIN) & (xy < 1.0 + INSIDE_MARGIN)).all(axis=-1)


def seen_evidence(image: np.ndarray, visibility: np.ndarray, valid: np.ndarray, fps: float) -> np.ndarray:
    """(N, 33) in [0, 1]: MediaPipe's visibility (the hips' through HIPS_VISIBILITY_RAMP) where the
    landmark is inside the image of a valid frame (else 0), low-pass filtered over each run of valid
    frames, times `_entry_gate` (0 outside the image, easing in after it comes into view), and held
    across frames without a body (as the landmarks are)."""
    vis = np.nan_to_num(visibility).copy()
    vis[:, HIPS] = _ramp(vis[:, HIPS], *HIPS_VISIBILITY_RAMP)
    in_view = inside_image(image) & valid[:, None]
    raw = np.where(in_view, vis, 0.0)
    if not valid.any():
        return raw
    smooth = np.clip(_lowpass_runs(raw, valid, fps, VISIBILITY_TAU_S), 0.0, 1.0)
    return _hold(smooth * _entry_gate(in_view, valid, fps), valid)


def _entry_gate(in_view: np.ndarray, valid: np.ndarray, fps: float) -> np.ndarray:
    """(N, 33) in [0, 1]: 0 where a landmark is out of view (in_view (N, 33) bool), rising linearly
    to 1 over ENTRY_S from the frame it comes into view (1 from the start for landmarks in view in
    the take's first frame with a body); frames without a body (valid (N,) False) keep the last
    value."""
    step = 1.0 / (max(fps, 1e-6) * ENTRY_S)  # share of the way per frame
    gate = np.zeros(in_view.shape)
    state = None
    for k in range(len(valid)):
        if valid[k]:
            rising = np.minimum(step + (0.0 if state is None else state), 1.0)
            state = in_view[k].astype(float) if state is None else np.where(in_view[k], rising, 0.0)
        gate[k] = 0.0 if state is None else state
    return gate


@dataclass(eq=False)
class Landmarks:
    """The solve's input: levelled pose landmarks of N frames.

    points_m:   (N, 33, 3) float64, glTF axes, metres, hip-centred, levelled; frames without a body
                hold the last tracked frame.
    visibility: (N, 33) float64 in [0, 1], MediaPipe's visibility, smoothed and held like points_m.
    seen:       (N, 33) float64 in [0, 1], visibility inside the image (see the module docstring),
                smoothed and held like points_m.
    """

    points_m: np.ndarray
    visibility: np.ndarray
    seen: np.ndarray

    def mean(self, *names: str) -> np.ndarray:
        """(N, 3) mean position of the named landmarks."""
        return self.points_m[:, [POSE[k] for k in names]].mean(axis=1)

    def confidence(self, *names: str) -> np.ndarray:
        """(N,) smallest seen value of the named landmarks."""
        return self.seen[:, [POSE[k] for k in names]].min(axis=1)

    def weight(self, *names: str, ramp: tuple[float, float] = (SEEN_VIS_LO, SEEN_VIS_HI)) -> np.ndarray:
        """(N,) in [0, 1]: how far a bone driven by the named landmarks follows them rather than
        its default (the seen ramp, by default SEEN_VIS_LO -> SEEN_VIS_HI)."""
        return _ramp(self.confidence(*names), *ramp)


@dataclass(eq=False)
class SolvedPose:
    """Joint rotations of N frames, filled in parent before child.

    local_rot:  joint name -> N local rotations (relative to the parent, rest frame).
    global_rot: joint name -> N global rotations (relative to the rest pose, world frame).
    confidence: (N, J) float64, the seen value of the landmarks driving each joint (see BodyMotion).
    from_view:  (N, J) bool, the joint's rotation was solved from landmarks seen in that frame.
    clock_s:    (N,) seconds that advance only in frames with a body: how long a bone has been
                unseen (frames without a body hold the pose, so they do not count).
    """

    local_rot: dict[str, Rotation]
    global_rot: dict[str, Rotation]
    confidence: np.ndarray
    from_view: np.ndarray
    clock_s: np.ndarray

    def attach(self, skel, name: str, parent: str, local: Rotation, confidence: np.ndarray,
               weight: np.ndarray | None = None) -> None:
        """Set joint `name`'s local rotation, its global one (parent's global * local), its
        confidence (N,) and, from the bone's seen weight (N,) (None: none), whether it was solved
        from view."""
        self.local_rot[name] = local
        self.global_rot[name] = self.global_rot[parent] * local
        j = skel.index(name)
        self.confidence[:, j] = confidence
        self.from_view[:, j] = False if weight is None else weight >= SEEN
