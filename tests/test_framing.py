"""Every common framing gives a sensible avatar (issue 12), on real media: a close-up face, the desk
webcam (head and shoulders), seated, half body, full body, walking into and out of the frame, the
back to the camera, several people, a person on a screen, nobody, a cartoon.

The clips are real footage or cropped from it (tests/framing_clips.py says exactly how each is
made). Each is processed once per run by the real pipeline (`process_video`, or the CLI for
`--subject`), with two stages these tests never look at made cheap (`_light_stages`: the head's
texture is skipped and the expression takes MediaPipe's scores as they are, as the product does
for a take with too little face; together 40-60 % of a clip's time here), and what a user gets is
checked: avatar.glb read back and posed by forward
kinematics (`framing_clips.read_motion`), tracks.npz and manifest.json. Pose2Sim's demo takes are
also compared with their 4-camera triangulation (`framing_clips.ReferenceTake`).
Thresholds say where they come from; run with -s to see the measured figures.

To check sessions made elsewhere instead of processing the clips here (e.g. another checkout's,
made by benchmarks/bench_body.py): DHCAP_FRAMING_SESSIONS=<work>/<label> and
DHCAP_FRAMING_REFERENCE=<work>/reference.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pytest
from conftest import unavailable
from framing_clips import (
    JOINTS_12,
    LANDMARKS_12,
    SCREEN_BOX,
    WALK_NOBODY_SOURCE_FRAMES,
    AvatarMotion,
    ReferenceTake,
    angle_from_up_deg,
    clip_path,
    clip_plan,
    eye_line_deg,
    facing_toward_camera,
    key_steps,
    neck_head_tilt_deg,
    read_motion,
    read_tracks,
    sole_heights_m,
    spine_tilt_deg,
)
from scipy.spatial.transform import Rotation

from pipeline.core.errors import InputError, NothingTrackedError
from pipeline.core.samples import fetch
from pipeline.core.tracks import POSE, Tracks
from pipeline.face.head_texture import TextureResult
from pipeline.face.weights import morph_weights
from pipeline.session import stages
from pipeline.session.multi_camera import process_multiview
from pipeline.session.single_camera import process_video

# Limits, each with where it comes from.
UPRIGHT_DEG = 20.0        # the figure for a person standing or sitting upright
REFERENCE_TILT_DEG = 20.0  # the same margin around the 4-camera reference's own torso tilt
MAX_LEAN_DEG = 50.0       # Pose2Sim's man leans forward by up to 43.2 deg (4-camera reference) + 7
EYE_LINE_DEG = 10.0       # the desk webcam man's eye line is 2.4-3.5 deg from level in the image + 6.5
NECK_HEAD_DEG = 20.0      # neck to head of an upright sitter: anatomy leans it forward ~10 deg, + 10
HEAD_VS_FACE_DEG = 10.0   # the figure: avatar head vs the face landmarker's head transform
WEBCAM_LEVEL_DEG = 20.0   # levelling of a desk webcam: they look at most ~15 deg up or down, + 5
LEG_REST_DEG = 10.0       # legs never seen: at most this from their rest (straight, standing) rotation
STILL_DEG = 0.5           # a key that changes less than this a frame is not animating anything
STILL_ROOT_M = 0.001      # and a root that moves less than 1 mm
EASE_S = 0.5              # a body may ease to rest for this long after its person leaves
SLIDE_M = 0.02            # the figure: no planted foot slides more than 2 cm in a frame
BELOW_FLOOR_M = 0.01      # 1 cm of slack: the sole points measured sit below the ankle and the ball
SUBJECT_JUMP = 0.06       # of the image diagonal a frame: people here move <= 2.8 %, MediaPipe's swaps 16-30 %
FACING_AWAY_SHARE = 0.9   # the men of cam03/cam04 show their back in every frame (checked by eye)
SWAPPED_SHARE = 0.05      # frames fitting the reference better with left and right swapped
PA_MPJPE_TARGET_MM = 60.0  # the target for every camera
ARM_POP_DEG = 30.0        # a frame: the solve of Sports2D's jumping jacks turns an arm bone <= 23 (raw: 160)
ARM_EASE_SLACK_DEG = 2.0  # an arm bone out of view may move away from rest this much a frame
MIN_FACE_SHARE = 0.25     # full-body take: the face found in at least this share of body frames
FRAMINGS = ("no_person", "face_only", "close_up", "head_and_shoulders", "upper_body", "seated", "full_body")
SHARED_WITH_OTHER_TESTS = ("p2s_cam01", "sports2d")  # through conftest.processed (test_process.py: p2s_cam01)
LEG_JOINTS = ("leftUpperLeg", "leftLowerLeg", "leftFoot", "rightUpperLeg", "rightLowerLeg", "rightFoot")


def OPEN(reason: str):
    """A check of issue 12 that the product does not meet yet: expected to fail (strict, so the
    day it passes the mark must go), with what is missing."""
    return pytest.mark.xfail(strict=True, reason=f"issue 12 open: {reason}")


# Framing shares the tracker does not reach yet (test_manifest_reports_the_framing).
KNOWN_SHARE_MISSES = {
    "p2s_head_shoulders": "shoulders tracked in 0.75 of the frames: no pose found in the first 10, "
                          "the shoulders placed outside the image in 15 more",
    "s2d_walk_in_out": "parts tracked in 0.43-0.48 of the frames: the woman walking side-on is lost "
                       "by the subject tracker's colour check",
}


@dataclass
class Session:
    """One processed clip: its folder and manifest, or the error that ended it."""

    name: str
    out: Path
    manifest: dict | None
    error: Exception | None = None

    @cached_property
    def motion(self) -> AvatarMotion:
        assert self.error is None, f"{self.name}: {self.error}"
        return read_motion(self.out)

    @cached_property
    def tracks(self) -> Tracks:
        return read_tracks(self.out)


def _sessions_made_elsewhere(name: str) -> Session | None:
    """A session of `name` under $DHCAP_FRAMING_SESSIONS (e.g. the folder of a checkout's sessions made
    by benchmarks/bench_body.py, `--work DIR/<label>`), when that variable is set and it is there."""
    root = os.environ.get("DHCAP_FRAMING_SESSIONS")
    if not root or not (Path(root) / name / "run.json").is_file():
        return None
    out = Path(root) / name
    if (out / "manifest.json").is_file():
        return Session(name, out, json.loads((out / "manifest.json").read_text()))
    code = json.loads((out / "run.json").read_text())["exit_code"]
    return Session(name, out, None, NothingTrackedError(f"exit code {code}"))


@pytest.fixture(scope="session")
def framed(tmp_path_factory, processed):
    """framed("p2s_seated") -> Session; each clip is processed once a run (the registered samples
    other tests process too through conftest's `processed`)."""
    cache: dict[str, Session] = {}

    def get(name: str) -> Session:
        if name not in cache:
            cache[name] = _sessions_made_elsewhere(name) or _process(name, tmp_path_factory, processed)
        return cache[name]
    return get


def _process(name: str, tmp_path_factory, processed) -> Session:
    """Process one clip with this tree's pipeline."""
    if name in SHARED_WITH_OTHER_TESTS:
        return Session(name, *processed(name))
    try:
        video = clip_path(name)
    except InputError as e:  # offline without a cached copy
        unavailable(f"{name} unavailable: {e}")
    out = tmp_path_factory.mktemp(f"framing_{name}")
    with pytest.MonkeyPatch.context() as patch:
        _light_stages(patch)
        try:
            return Session(name, out, process_video(video, out, progress=False))
        except NothingTrackedError as e:
            return Session(name, out, None, e)


def _light_stages(patch: pytest.MonkeyPatch) -> None:
    """Make the session's head texture and latent expression rig, which nothing here checks,
    cheap: no texture (the head keeps vertex colours, as when texturing fails) and MediaPipe's
    blendshape scores as the morph weights (the product's own path for takes with little face).
    Tracking, screening, the body solve, the export and the manifest run as they are."""
    patch.setattr(stages, "texture_head", lambda *a, **k: TextureResult(
        None, None, None, None, {}, skipped="not made by the framing tests"))
    patch.setattr(stages, "solve_expression", lambda tracks, *a, **k: stages.ExpressionStage(
        morph_weights(tracks.blendshapes, tracks.face_valid), None))


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> ReferenceTake:
    """Pose2Sim's demo seen by its 4 calibrated cameras, triangulated by the multi-camera path."""
    made = os.environ.get("DHCAP_FRAMING_REFERENCE")
    if made:
        return ReferenceTake(made)
    out = tmp_path_factory.mktemp("p2s_reference")
    with pytest.MonkeyPatch.context() as patch:
        _light_stages(patch)  # only its triangulated body is used
        try:
            videos = [fetch(f"p2s_cam0{k}") for k in range(1, 5)]
            process_multiview(videos, fetch("p2s_calib"), out, progress=False)
        except InputError as e:
            unavailable(f"Pose2Sim demo unavailable: {e}")
    return ReferenceTake(out)


def _person_frames(name: str, n: int) -> np.ndarray:
    """(n,) bool: frames of a clip with a person in view (see framing_clips)."""
    if name == "face_noface":
        return np.arange(n) < 72  # then the cartoon title
    if name == "s2d_walk_in_out":
        source, _ = clip_plan(name)
        nobody = np.zeros(len(source), bool)
        for a, b in WALK_NOBODY_SOURCE_FRAMES:
            nobody |= (source >= a) & (source <= b)
        return ~nobody[:n]
    if name in ("no_face", "bigbuckbunny"):
        return np.zeros(n, bool)
    return np.ones(n, bool)


def _settled_nobody(person: np.ndarray, fps: float) -> np.ndarray:
    """Frames with nobody, EASE_S after the last frame with a person."""
    out = ~person
    for i in np.flatnonzero(person):
        out[i + 1:i + 1 + int(round(EASE_S * fps))] = False
    return out


def _fps(m: AvatarMotion) -> float:
    return 1.0 / float(np.median(np.diff(m.t_s)))


# ---------------------------------------------------------------------------------------------
# Upright


@pytest.mark.parametrize("name", ["face_noface", "webcam_close_up", "screen_background", "s2d_seated",
                                  "s2d_walk_in_out"])
def test_upright_person_gets_an_upright_spine(name, framed):
    """People sitting or standing upright (the desk webcam man, Sports2D's jumping jacks, the
    walking woman): the avatar's spine within UPRIGHT_DEG of vertical in every frame with them."""
    m = framed(name).motion
    tilt = spine_tilt_deg(m)[_person_frames(name, len(m.t_s))]
    print(f"{name}: spine tilt median {np.median(tilt):.1f}, max {tilt.max():.1f} deg")
    assert tilt.max() <= UPRIGHT_DEG


@pytest.mark.parametrize("name", ["p2s_head_shoulders", "p2s_seated"])
def test_hips_never_seen_stay_upright(name, framed, reference):
    """Pose2Sim's man leans forward by up to 43 degrees; with his hips out of the frame the avatar
    keeps its torso upright (the issue: torso from the shoulders and the head) and never lies."""
    tilt = spine_tilt_deg(framed(name).motion)
    print(f"{name}: spine tilt max {tilt.max():.1f} deg (his torso: up to {reference.tilt_deg.max():.1f})")
    assert tilt.max() <= MAX_LEAN_DEG
    assert np.median(tilt) <= UPRIGHT_DEG


@pytest.mark.parametrize("name", ["p2s_cam01", pytest.param("p2s_half_body", marks=OPEN(
    "no legs in view: the camera's own vertical is kept, and this camera looks down (torso up to "
    "28.8 deg off at the start of the take)")), "p2s_cam03"])
def test_seen_torso_follows_the_reference(name, framed, reference):
    """Hips in view: the avatar's spine tilt within REFERENCE_TILT_DEG of the triangulated torso's
    in every frame (frames of these clips are the reference's)."""
    tilt = spine_tilt_deg(framed(name).motion)
    n = min(len(tilt), len(reference.tilt_deg))
    err = np.abs(tilt[:n] - reference.tilt_deg[:n])
    print(f"{name}: spine tilt error vs the reference median {np.median(err):.1f}, max {err.max():.1f} deg")
    assert err.max() <= REFERENCE_TILT_DEG


# ---------------------------------------------------------------------------------------------
# The desk webcam's head


@pytest.mark.parametrize("name", ["face_noface", "webcam_close_up", "screen_background"])
def test_desk_webcam_head_is_upright(name, framed):
    """The issue's webcam clip: the head lay on its side (eye line 85 deg, neck to head 106 deg)."""
    m = framed(name).motion
    person = _person_frames(name, len(m.t_s))
    eyes, neck = eye_line_deg(m)[person], neck_head_tilt_deg(m)[person]
    print(f"{name}: eye line max {eyes.max():.1f} deg, neck to head max {neck.max():.1f} deg")
    assert eyes.max() <= EYE_LINE_DEG
    assert neck.max() <= NECK_HEAD_DEG


def _face_rotations(tr: Tracks) -> tuple[np.ndarray, Rotation]:
    """(frames with a tracked face, their rotations from the face landmarker's transform)."""
    ok = np.flatnonzero(tr.face_valid & ~tr.face_filled & np.isfinite(tr.face_matrix).all(axis=(1, 2)))
    m = tr.face_matrix[ok, :3, :3].astype(float)
    u, _, vt = np.linalg.svd(m)
    return ok, Rotation.from_matrix(u @ vt)


@pytest.mark.parametrize("name", ["face_noface", "webcam_close_up"])
def test_head_follows_the_face_landmarker(name, framed):
    """The avatar's head rotation within HEAD_VS_FACE_DEG of the face landmarker's head transform
    in every frame with a face, up to one constant rotation (the levelling of the camera; both
    frames have Y up and the face toward +Z), and that levelling no more than a desk webcam's
    tilt (today's 91 degrees laid the head on its side)."""
    s = framed(name)
    m = s.motion
    ok, face = _face_rotations(s.tracks)
    keep = (ok < len(m.t_s)) & _person_frames(name, s.tracks.n_frames)[ok]  # not a "face" in the cartoon
    head = Rotation.from_quat(m.glob_xyzw[ok[keep], m.index("head")])
    offset = head * face[np.flatnonzero(keep)].inv()
    mean = offset.mean()
    err = np.degrees((mean.inv() * offset).magnitude())
    print(f"{name}: head vs face {np.median(err):.1f} median, {err.max():.1f} max deg; "
          f"constant offset {np.degrees(mean.magnitude()):.1f} deg")
    assert err.max() <= HEAD_VS_FACE_DEG
    assert np.degrees(mean.magnitude()) <= WEBCAM_LEVEL_DEG


# ---------------------------------------------------------------------------------------------
# Unseen legs, arms leaving the frame


@pytest.mark.parametrize("name", ["face_noface", "webcam_close_up", "p2s_head_shoulders", "p2s_seated",
                                  "s2d_seated", "screen_background"])
def test_legs_never_seen_stay_at_rest(name, framed):
    """Hips and legs never in the frame: the legs keep their rest (standing) rotation all take,
    whatever MediaPipe guesses for them (visibility ~0, image y ~2)."""
    m = framed(name).motion
    legs = [m.index(j) for j in LEG_JOINTS]
    from_rest = np.degrees(Rotation.from_quat(m.local_xyzw[:, legs].reshape(-1, 4)).magnitude())
    knees = np.array([angle_from_up_deg(m.p(f"{s}UpperLeg") - m.p(f"{s}LowerLeg"))
                      - angle_from_up_deg(m.p(f"{s}LowerLeg") - m.p(f"{s}Foot")) for s in ("left", "right")])
    print(f"{name}: leg joints from rest max {from_rest.max():.1f} deg, knee bend max {np.abs(knees).max():.1f}")
    assert from_rest.max() <= LEG_REST_DEG


def _out_of_view(name: str, source: Tracks, landmark: str) -> np.ndarray:
    """(N,) bool: frames of a crop where a landmark of the subject (tracked on the whole source
    frames) is outside the crop box."""
    frames, boxes = clip_plan(name)
    w, h = source.image_size
    p = source.pose_image[frames, POSE[landmark], :2].astype(float) * [w, h]
    inside = (p[:, 0] >= boxes[:, 0]) & (p[:, 0] < boxes[:, 2]) & (p[:, 1] >= boxes[:, 1]) & (p[:, 1] < boxes[:, 3])
    return np.isfinite(p).all(1) & ~inside


def _arm_angles(m: AvatarMotion, side: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per arm bone, (N-1,) its change of direction a frame (degrees) and (N,) how far it is from
    its relaxed pose (degrees): the upper arm from the chest's down axis (relaxed arms hang there),
    the forearm from the upper arm's direction (a relaxed elbow is straight)."""
    joints = [m.p(f"{side}{j}") for j in ("UpperArm", "LowerArm", "Hand")]
    upper, fore = joints[1] - joints[0], joints[2] - joints[1]
    down = Rotation.from_quat(m.glob_xyzw[:, m.index("chest")]).apply([0.0, -1.0, 0.0])

    def angle(a, b):
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return {"upper arm": (angle(upper[1:], upper[:-1]), angle(upper, down)),
            "forearm": (angle(fore[1:], fore[:-1]), angle(fore, upper))}


@pytest.mark.parametrize("name,source", [("s2d_seated", "sports2d"), ("p2s_half_body", "p2s_cam01")])
def test_arms_leaving_the_frame_ease_to_rest(name, source, framed):
    """While a hand (the forearm) or an elbow (the upper arm) is out of the crop, known from the
    whole source frame, that bone never pops (ARM_POP_DEG a frame: on the whole frames, the solved
    jumping jacks at 30 fps turn a bone by at most 23 deg a frame, MediaPipe's raw guesses by up to
    160) and moves toward its relaxed pose, never away from it (ARM_EASE_SLACK_DEG a frame)."""
    m = framed(name).motion
    whole = framed(source).tracks
    for side in ("left", "right"):
        bones = _arm_angles(m, side)
        for bone, landmark in (("upper arm", "elbow"), ("forearm", "wrist")):
            out = _out_of_view(name, whole, f"{side}_{landmark}")[: len(m.t_s)]
            step, from_rest = bones[bone]
            around, both = out[1:] | out[:-1], out[1:] & out[:-1]
            if not around.any():
                continue
            away = np.diff(from_rest)[both]
            print(f"{name} {side} {bone}: out of view in {out.mean():.0%} of the frames; step max "
                  f"{step[around].max():.1f} deg; away from rest while out, max {away.max(initial=0):.1f} deg/frame")
            assert step[around].max() <= ARM_POP_DEG
            assert away.max(initial=0.0) <= ARM_EASE_SLACK_DEG


def test_solved_from_view_flags(framed):
    """tracks.npz keeps per-joint "solved from view" flags, named in its meta: for the desk webcam
    the head and shoulders are solved from view while the man is there, the legs never are."""
    tr = framed("face_noface").tracks
    flags = getattr(tr, "joint_from_view", None)
    assert flags is not None and flags.dtype == bool and flags.shape[0] == tr.n_frames
    names = tr.meta["joint_names"]
    assert len(names) == flags.shape[1]
    person = _person_frames("face_noface", tr.n_frames)
    legs = [names.index(j) for j in LEG_JOINTS]
    print("face_noface: solved from view share per joint", dict(zip(names, flags.mean(0).round(2))))
    assert not flags[:, legs].any()
    assert flags[person, names.index("head")].mean() >= 0.9
    assert not flags[~person].any()


# ---------------------------------------------------------------------------------------------
# Nobody in view


@pytest.mark.parametrize("name", ["face_noface", "s2d_walk_in_out", "no_face", "bigbuckbunny"])
def test_no_body_motion_without_a_person(name, framed):
    """Spans with nobody in view (a cartoon title MediaPipe sees a lying "person" in, an empty
    window, a cartoon rabbit): no body key moves after EASE_S. A take with nobody at all may end
    with 'no face and no person' (exit code 4)."""
    s = framed(name)
    if s.error is not None:
        assert name in ("no_face", "bigbuckbunny"), s.error
        return
    m = s.motion
    person = _person_frames(name, len(m.t_s))
    quiet = _settled_nobody(person, _fps(m))[1:]
    rot, root = key_steps(m)
    print(f"{name}: {quiet.sum()} settled frames with nobody; key change max {rot[quiet].max():.2f} deg, "
          f"root {root[quiet].max() * 1000:.1f} mm")
    assert rot[quiet].max() <= STILL_DEG
    assert root[quiet].max() <= STILL_ROOT_M


@OPEN("the subject tracker's colour check loses the woman walking side-on (solved in 62 % of her frames)")
def test_walking_in_and_out_is_solved_only_in_view(framed):
    """The woman walks into the window, out, and back in (reversed): her body is solved from view in
    most frames where she is there (she is partly cut at the edges while entering and leaving) and
    in none where she is wholly outside."""
    tr = framed("s2d_walk_in_out").tracks
    flags = getattr(tr, "joint_from_view", None)
    assert flags is not None
    solved = flags.any(1)
    person = _person_frames("s2d_walk_in_out", tr.n_frames)
    print(f"s2d_walk_in_out: solved in {solved[person].mean():.0%} of the frames with her, "
          f"{solved[~person].mean():.0%} without")
    assert solved[person].mean() >= 0.8
    assert not solved[~person].any()


@pytest.mark.parametrize("name", ["no_face", "bigbuckbunny"])
def test_no_person_take_says_so(name, framed):
    """No real person: either exit code 4 (neither face nor person) or a manifest that says so."""
    s = framed(name)
    if s.error is not None:
        assert isinstance(s.error, NothingTrackedError)
        return
    framing = s.manifest.get("framing", {})
    print(name, framing)
    assert framing.get("framing") in ("no_person", "face_only")
    assert framing["parts_tracked_share"]["shoulders"] == 0.0


# ---------------------------------------------------------------------------------------------
# The manifest's framing

# clip: (accepted framing names, {part: (lowest share, highest share)})
EXPECTED_FRAMING = {
    "webcam_close_up": ({"close_up", "face_only"}, {"face": (0.9, 1), "hips": (0, 0.05), "ankles": (0, 0.05)}),
    # the man in 72 of 169 frames (43 %), then the cartoon whose lying "person" must not count
    "face_noface": ({"head_and_shoulders"}, {"face": (0.35, 0.5), "shoulders": (0.35, 0.5), "hips": (0, 0.05)}),
    "p2s_head_shoulders": ({"head_and_shoulders"}, {"shoulders": (0.8, 1), "hips": (0, 0.05),
                                                    "knees": (0, 0.05), "ankles": (0, 0.05)}),
    "p2s_seated": ({"head_and_shoulders", "upper_body", "seated"}, {"shoulders": (0.8, 1), "hips": (0, 0.1),
                                                                    "knees": (0, 0.05), "ankles": (0, 0.05)}),
    "p2s_half_body": ({"upper_body"}, {"shoulders": (0.8, 1), "hips": (0.8, 1), "ankles": (0, 0.05)}),
    "p2s_cam01": ({"full_body"}, {p: (0.9, 1) for p in ("shoulders", "elbows", "hips", "knees", "ankles")}),
    "s2d_seated": ({"head_and_shoulders", "upper_body"}, {"shoulders": (0.8, 1), "hips": (0, 0.05),
                                                          "knees": (0, 0.05), "ankles": (0, 0.05)}),
    # the woman is wholly out of the window in 23 % of its frames
    "s2d_walk_in_out": ({"full_body"}, {p: (0.5, 0.85) for p in ("shoulders", "hips", "ankles")}),
    "screen_background": ({"head_and_shoulders"}, {"face": (0.9, 1), "hips": (0, 0.05), "ankles": (0, 0.05)}),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=OPEN(KNOWN_SHARE_MISSES[n])) if n in KNOWN_SHARE_MISSES
                                  else n for n in EXPECTED_FRAMING])
def test_manifest_reports_the_framing(name, framed):
    """manifest.json: the framing found and the share of frames each body part was tracked."""
    framing = framed(name).manifest.get("framing")
    assert framing is not None, "manifest.json has no 'framing' section"
    print(name, framing)
    names, parts = EXPECTED_FRAMING[name]
    assert framing["framing"] in FRAMINGS and framing["framing"] in names
    shares = framing["parts_tracked_share"]
    assert set(shares) == {"face", "head", "shoulders", "elbows", "wrists", "hips", "knees", "ankles"}
    for part, (lo, hi) in parts.items():
        assert lo <= shares[part] <= hi, (part, shares[part])


# ---------------------------------------------------------------------------------------------
# Several people, the back to the camera


def _torso_centre_px(tr: Tracks) -> np.ndarray:
    """(N, 2) the subject's mid-shoulders and mid-hips centre in pixels (NaN without a body)."""
    idx = [POSE[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    c = tr.pose_image[:, idx, :2].astype(float).mean(1) * tr.image_size
    c[~tr.pose_valid] = np.nan
    return c


def _largest_jump(tr: Tracks) -> float:
    """The subject's largest frame-to-frame torso jump as a share of the image diagonal."""
    c = _torso_centre_px(tr)
    step = np.linalg.norm(np.diff(c, axis=0), axis=1)
    return float(np.nanmax(step, initial=0.0) / np.hypot(*tr.image_size))


@pytest.mark.parametrize("name", ["p2s_multi_cam01", "p2s_multi_cam03", "sports2d", "screen_background"])
def test_one_subject_kept(name, framed):
    """Two or more people in view: one subject, kept through the take (no jump from one person to
    another; in Sports2D's demo MediaPipe alone jumps from the man to the walking woman at ~5.5 s)."""
    s = framed(name)
    tr = s.tracks
    jump = _largest_jump(tr)
    people = tr.people_in_view if getattr(tr, "people_in_view", None) is not None else None
    print(f"{name}: largest torso jump {jump:.1%} of the diagonal; people in view max "
          f"{None if people is None else int(people.max())}; subject {tr.meta.get('subject')}")
    assert jump <= SUBJECT_JUMP
    assert "subject" in tr.meta
    if name != "screen_background":
        assert people is not None and people.max() >= 2
    else:  # the person on the screen is never the subject
        c = _torso_centre_px(tr)
        x0, y0, x1, y1 = SCREEN_BOX
        assert not ((c[:, 0] >= x0) & (c[:, 0] <= x1) & (c[:, 1] >= y0) & (c[:, 1] <= y1)).any()


def test_subject_option_picks_the_nth_person_from_the_left(tmp_path):
    """`--subject 1` on Pose2Sim's multi-person camera 3: the woman on the left (the man is right of
    her in the first frame), kept through the take even where he passes in front of her."""
    out = tmp_path / "subject1"
    p = subprocess.run([sys.executable, "-m", "pipeline.process", str(clip_path("p2s_multi_cam03")),
                        "--subject", "1", "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    tr = read_tracks(out)
    c = _torso_centre_px(tr) / tr.image_size
    first = np.flatnonzero(np.isfinite(c).all(1))[0]
    print(f"--subject 1: torso x {c[first, 0]:.2f} in the first frame, largest jump {_largest_jump(tr):.1%}")
    assert c[first, 0] < 0.45  # the woman stands at x ~0.3, the man at ~0.6
    assert _largest_jump(tr) <= SUBJECT_JUMP


@pytest.mark.parametrize("name", ["p2s_multi_cam03", "p2s_multi_cam04", "p2s_cam03"])
def test_back_to_the_camera(name, framed):
    """The man seen from behind: the avatar turns its back to the camera (not mirrored to face it)
    and stays on its feet (his forward lean stays under MAX_LEAN_DEG)."""
    s = framed(name)
    m = s.motion
    body = s.tracks.pose_valid[: len(m.t_s)]
    away = facing_toward_camera(m)[body] < 0
    tilt = spine_tilt_deg(m)[body]
    print(f"{name}: back to the camera in {away.mean():.0%} of {body.sum()} body frames; tilt max {tilt.max():.1f}")
    assert away.mean() >= FACING_AWAY_SHARE
    assert tilt.max() <= MAX_LEAN_DEG


# ---------------------------------------------------------------------------------------------
# Against the 4-camera reference: accuracy, mirroring, feet


def _similarity_error(x: np.ndarray, y: np.ndarray) -> float:
    """Mean distance after moving x (K, 3) onto y by rotation, scale and translation."""
    mx, my = x.mean(0), y.mean(0)
    u, s, vt = np.linalg.svd((x - mx).T @ (y - my))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    scale = (s * np.diag(d)).sum() / ((x - mx) ** 2).sum()
    return float(np.linalg.norm(scale * (x - mx) @ (u @ d @ vt) + my - y, axis=1).mean())


@pytest.mark.parametrize("name", ["p2s_cam01", pytest.param("p2s_cam03", marks=OPEN(
    "seen from behind: 63.8 mm against the 60 mm target (depth signs of shins and upper arms "
    "from MediaPipe's world landmarks; see benchmarks/results/body.md)"))])
def test_single_camera_against_the_reference(name, framed, reference):
    """PA-MPJPE of the avatar's 12 limb joints (per-frame similarity alignment) at most
    PA_MPJPE_TARGET_MM and below MediaPipe's own world landmarks; left and right not swapped."""
    m = framed(name).motion
    pred = m.pos_m[:, [m.index(j) for j in JOINTS_12]]
    raw = framed(name).tracks.pose_world_m[:, [POSE[n] for n in LANDMARKS_12]].astype(float)
    swap = [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10]
    errs, raw_errs, swapped = [], [], []
    for i in range(min(len(pred), len(reference.joints_m))):
        ok = reference.ok[i]
        if ok.sum() < 6:
            continue
        y = reference.joints_m[i][ok]
        errs.append(_similarity_error(pred[i][ok], y))
        swapped.append(_similarity_error(pred[i][swap][ok], y) < errs[-1])
        if np.isfinite(raw[i][ok]).all():
            raw_errs.append(_similarity_error(raw[i][ok], y))
    mm, raw_mm = 1000 * np.mean(errs), 1000 * np.mean(raw_errs)
    print(f"{name}: PA-MPJPE {mm:.1f} mm (MediaPipe's world landmarks {raw_mm:.1f}); swapped {np.mean(swapped):.0%}")
    assert np.mean(swapped) <= SWAPPED_SHARE
    assert mm <= PA_MPJPE_TARGET_MM and mm < raw_mm


def test_planted_feet_do_not_slide_or_sink(framed, reference):
    """Pose2Sim cam01: where the reference's foot is planted (`ReferenceTake.planted`: sole within
    3 cm of the floor, ankle moving under 5 mm a frame), the avatar's ankle slides at most SLIDE_M
    a frame; no sole goes below the floor (BELOW_FLOOR_M of slack)."""
    m = framed("p2s_cam01").motion
    n = min(len(m.t_s), len(reference.sole_h_m))
    ankles = np.stack([m.p("leftFoot"), m.p("rightFoot")], axis=1)[:n, :, [0, 2]]
    slide = np.linalg.norm(np.diff(ankles, axis=0), axis=-1)
    planted = reference.planted()[: n - 1]
    soles = sole_heights_m(m)
    print(f"planted foot-frames {planted.sum()}; avatar slide there max {slide[planted].max() * 100:.1f} cm; "
          f"lowest sole {soles.min() * 100:.1f} cm")
    assert planted.sum() >= 20  # the man stands on one foot or both most of the take
    assert slide[planted].max() <= SLIDE_M
    assert soles.min() >= -BELOW_FLOOR_M


# ---------------------------------------------------------------------------------------------
# Full body: the face on an upscaled crop


def test_full_body_take_gets_a_face(framed):
    """Sports2D's man is full body and his face too small for the face landmarker on the whole
    frame: tracked on an upscaled crop around the pose's head, it is found in at least
    MIN_FACE_SHARE of the frames with a body, and the crop is recorded."""
    tr = framed("sports2d").tracks
    share = tr.face_valid[tr.pose_valid].mean()
    crops = getattr(tr, "face_crop_px", None)
    print(f"sports2d: face in {share:.0%} of the body frames")
    assert share >= MIN_FACE_SHARE
    assert crops is not None and np.isfinite(crops[tr.face_valid]).all(1).mean() > 0.5
