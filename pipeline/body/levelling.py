"""Levelling a single camera's body: which way is up in MediaPipe's camera-aligned world landmarks.

Input: the body solve's `Landmarks` of N frames (pipeline.body.landmarks: glTF axes, metres,
hip-centred, not yet levelled; "seen" weights per landmark) and the frames with a body (N,) bool.
Output (`level_from_legs`): the Rotation that takes the camera-aligned frame to a level one (the
take's up direction becomes +Y; yaw is left alone).

MediaPipe's world landmarks turn with the camera, so a camera looking down at the subject makes an
upright person lean toward it. The up direction is taken from what carries the body: a person
standing, walking or crouching keeps the hips above the feet (balance puts the body's centre of
mass over its base of support), so over a take the median direction from the middle of the ankles
to the middle of the hips is the vertical. The torso itself is no guide: people lean forward for
real (Pose2Sim's man by up to 43 degrees), and making the take's median torso upright took that lean
away (spine tilt 22-33 degrees off the 4-camera reference, median 18-21).

Measured on Pose2Sim's demo, one camera at a time against the 4-camera triangulation (the
torso's tilt from vertical, |single camera - reference|, median / max over 100 frames, degrees):
  cameras 1-4   median torso upright: 21.7/33.6, 19.3/25.1, 18.1/24.8, 21.1/31.8
                camera's own vertical (no levelling): 9.6/21.3, 5.1/18.9, 8.8/12.9, 19.1/29.5
                hips over the ankles: 5.9/14.6, 2.4/8.8, 8.3/15.3, 6.6/16.5
                (the body's centre of mass over the ankles: 8.4/18.2 ... 9.8/20.2; shoulders over
                the ankles: 11.0/21.4 ... 12.3/22.8)
so the hips over the ankles level the take. Seated frames (the ankles ahead of the hips, knees
bent near 90 degrees) say nothing about up and are left out (SEATED_KNEE_DEG). A take whose legs
are never seen (a desk webcam, a half-body shot) keeps the camera's own vertical: desk webcams and
hand-held phones are held roughly level, and MediaPipe's guesses for unseen legs never tilt it.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.body.landmarks import SEEN, Landmarks
from pipeline.body.rotations import _arc, _unit

# A knee bent more than this (degrees between thigh and shin) is seated or kneeling, not standing
# on the leg: Pose2Sim's man crouching bends his knees up to 61 degrees (90th percentile over the
# 4 cameras), a seated person's are near 90.
SEATED_KNEE_DEG = 75.0
MIN_LEVEL_FRAMES = 10     # fewer frames standing on seen legs: keep the camera's vertical
LEG_LANDMARKS = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")


def _knee_bend_deg(marks: Landmarks) -> np.ndarray:
    """(N,) the larger of the two knees' bends (angle between thigh and shin), degrees."""
    bends = []
    for side in ("left", "right"):
        thigh = _unit(marks.mean(f"{side}_knee") - marks.mean(f"{side}_hip"))
        shin = _unit(marks.mean(f"{side}_ankle") - marks.mean(f"{side}_knee"))
        bends.append(np.degrees(np.arccos(np.clip((thigh * shin).sum(-1), -1.0, 1.0))))
    return np.maximum(*bends)


def standing_frames(marks: Landmarks, valid: np.ndarray) -> np.ndarray:
    """(N,) bool: frames with a body whose hips, knees and ankles are all seen (weight >= SEEN) and
    whose knees bend less than SEATED_KNEE_DEG: the body stands on its legs."""
    with np.errstate(invalid="ignore"):
        return np.asarray(valid, bool) & (marks.weight(*LEG_LANDMARKS) >= SEEN) \
            & (_knee_bend_deg(marks) < SEATED_KNEE_DEG)


def level_from_legs(marks: Landmarks, valid: np.ndarray) -> Rotation:
    """Rotation (glTF axes) making the take's median ankles -> hips direction +Y (see the module
    docstring); identity (the camera's own vertical) with fewer than MIN_LEVEL_FRAMES standing
    frames. marks: N frames, camera-aligned; valid: (N,) bool frames with a body."""
    standing = standing_frames(marks, valid)
    if standing.sum() < MIN_LEVEL_FRAMES:
        return Rotation.identity()
    legs = marks.mean("left_hip", "right_hip")[standing] - marks.mean("left_ankle", "right_ankle")[standing]
    up = _unit(np.median(_unit(legs), axis=0)[None])
    return _arc(up, np.array([[0.0, 1.0, 0.0]]))[0]
