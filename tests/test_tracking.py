"""MediaPipe tracking on real video, gap handling, and the 'is anyone there' decision."""
from __future__ import annotations

import numpy as np
import pytest

from capture.video import probe
from pipeline.core.errors import InputError, NothingTrackedError
from pipeline.core.tracks import Tracks, fill_short_gaps, gap_spans
from pipeline.session.stages import check_trackable
from pipeline.tracking import tracker as tracker_module
from pipeline.tracking.video import track_video


def _track(path):
    return track_video(path, progress=False)


@pytest.fixture(scope="module")
def single_face(sample):
    return _track(sample("single_face"))


def test_face_and_pose_on_real_video(single_face, tmp_path):
    tr = single_face
    assert tr.n_frames == 72 and tr.face_valid.all()
    assert tr.face_landmarks.shape == (72, 478, 3)
    lm = tr.face_landmarks[0]
    assert (lm[:, :2] > 0).all() and (lm[:, :2] < 1).all()
    assert ((tr.blendshapes >= 0) & (tr.blendshapes <= 1)).all()
    R = tr.face_matrix[:, :3, :3].astype(np.float64)
    assert np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-3)  # rigid
    assert tr.pose_valid.mean() > 0.9
    shoulders = np.linalg.norm(tr.pose_world_m[:, 11] - tr.pose_world_m[:, 12], axis=1)
    assert 0.25 < np.nanmedian(shoulders) < 0.5  # metres
    tr.save(tmp_path / "t.npz")
    back = Tracks.load(tmp_path / "t.npz")
    assert np.array_equal(back.face_landmarks, tr.face_landmarks) and back.fps == tr.fps


def test_face_beside_the_body_gives_the_tracks_of_running_them_in_turn(sample, monkeypatch):
    """`FaceBodyTracker(parallel=True)` (the default) runs the one-face landmarker on a second thread
    beside the body's while the last frame's face came from it: the tracks are bit for bit those
    of running the two in turn, and it did run ahead (every frame after the first)."""
    path = sample("single_face")
    beside = track_video(path, progress=False)
    orig = tracker_module.FaceBodyTracker.__init__
    monkeypatch.setattr(tracker_module.FaceBodyTracker, "__init__",
                        lambda self, **kw: orig(self, **{**kw, "parallel": False}))
    in_turn = track_video(path, progress=False)
    runs = beside.meta["subject"]["landmarker_runs"]["face"]
    assert runs["one_ahead"] == runs["one"] - 1
    assert "one_ahead" not in in_turn.meta["subject"]["landmarker_runs"]["face"]
    for name in ("face_valid", "pose_valid", "face_landmarks", "blendshapes", "face_matrix", "pose_world_m",
                 "pose_image"):
        assert np.array_equal(getattr(beside, name), getattr(in_turn, name), equal_nan=True), name


def test_short_gaps_filled_and_flagged_long_gaps_kept(single_face):
    tr = single_face
    holed = fill_short_gaps(tr)  # copy
    for name in ("face_landmarks", "blendshapes", "face_matrix"):
        getattr(holed, name)[10:13] = np.nan   # 0.1 s gap: filled
        getattr(holed, name)[30:60] = np.nan   # 1 s gap: kept
    holed.face_valid[10:13] = False
    holed.face_valid[30:60] = False
    out = fill_short_gaps(holed, max_gap_s=0.25)
    assert out.face_valid[10:13].all() and out.face_filled[10:13].all()
    assert not out.face_valid[30:60].any() and np.isnan(out.blendshapes[30:60]).all()
    assert gap_spans(out.face_valid) == [(30, 60)]
    # the filled values are between their neighbours (linear in time)
    mid = out.face_landmarks[11]
    assert np.allclose(mid, 0.5 * (tr.face_landmarks[9] + tr.face_landmarks[13]), atol=1e-5)
    R = out.face_matrix[11, :3, :3].astype(np.float64)
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-4)


def test_face_leaving_the_view_is_marked_not_invented(sample):
    tr = _track(sample("face_noface"))
    assert 0 < tr.face_valid.sum() < tr.n_frames
    assert np.isnan(tr.face_landmarks[~tr.face_valid]).all()
    check_trackable(tr)  # a face part of the time is fine


def test_nobody_in_view(sample):
    tr = _track(sample("no_face"))
    assert tr.face_valid.sum() == 0
    with pytest.raises(NothingTrackedError, match="no face and no person"):
        check_trackable(tr)


def test_unreadable_inputs(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        probe(tmp_path / "nope.mp4")
    (tmp_path / "x.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(InputError, match="not a readable video|no decodable frames"):
        probe(tmp_path / "x.mp4")
