"""Issue 16: a per-user neutral calibration and per-shape gains, batch and live. Measured on a real
take against frames the landmarks call relaxed (its expressive points nearest the take's median
face), not against the scores the calibration is made of."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from pipeline.core.errors import InputError
from pipeline.core.tracks import Tracks
from pipeline.face.calibration import (
    GAZE,
    MIN_SPAN,
    PEAK_QUANTILE,
    FaceCalibration,
    calibrate_face,
    live_calibration,
)
from pipeline.face.head_space import face_points_m
from pipeline.face.rig import EYE_LOWER, EYE_UPPER, LOWER_LIP, UPPER_LIP
from pipeline.face.weights import morph_weights
from pipeline.session.stages import ExpressionStage, calibrate_expression

EXPRESSIVE = sorted({*UPPER_LIP, *LOWER_LIP, *(i for s in ("Left", "Right") for i in EYE_UPPER[s] + EYE_LOWER[s])})
RELAXED_SHARE = 0.3       # the take's frames nearest its median face, by the landmarks
MIN_REST_DROP = 0.2       # share by which the weights at rest must fall
MIN_PEAK = 0.8            # the shapes the take shows reach at least this after calibration
LIVE_REST_S = 1.0
FILE_ROUNDING = 5e-3      # the saved file keeps 4 decimals of the neutral, 3 of the gains


def _relaxed(tracks: Tracks, frames: np.ndarray) -> np.ndarray:
    pts = face_points_m(tracks)[frames][:, EXPRESSIVE]
    dev = np.linalg.norm(pts - np.median(pts, axis=0), axis=2).mean(axis=1)
    return frames[dev <= np.quantile(dev, RELAXED_SHARE)]


@pytest.fixture(scope="module")
def carphone(processed):
    session, _ = processed("carphone")
    tracks = Tracks.load(session / "tracks.npz")
    return session, tracks, morph_weights(tracks.blendshapes, tracks.face_valid)


def test_calibration_quiets_a_relaxed_face_and_stretches_full_expressions(carphone):
    """Calibrated on the first half of carphone, on the second half: the weights of the frames the
    landmarks call relaxed fall, and the shapes the first half shows reach near 1."""
    _, tracks, w = carphone
    valid = np.flatnonzero(tracks.face_valid)
    first, second = valid[:len(valid) // 2], valid[len(valid) // 2:]
    cal = calibrate_face(w[first])
    after = cal.apply(w)
    rest = _relaxed(tracks, second)
    before_rest, after_rest = w[rest][:, ~GAZE].mean(), after[rest][:, ~GAZE].mean()
    shown = ~GAZE & (np.quantile(w[first], PEAK_QUANTILE, axis=0) - cal.neutral >= MIN_SPAN)
    peak = np.median(np.quantile(after[second][:, shown], PEAK_QUANTILE, axis=0))
    print(f"at rest {before_rest:.3f} -> {after_rest:.3f}; {shown.sum()} shapes shown, peak "
          f"{np.median(np.quantile(w[second][:, shown], PEAK_QUANTILE, axis=0)):.2f} -> {peak:.2f}")
    assert after_rest < (1 - MIN_REST_DROP) * before_rest
    assert shown.sum() >= 3 and peak > MIN_PEAK
    assert np.all(cal.apply(np.zeros(len(cal.neutral))) == 0) and np.all(cal.apply(np.ones(len(cal.neutral))) == 1)


def test_a_session_saves_its_calibration_and_applies_one_when_asked(carphone, tmp_path):
    """Every session writes face_calibration.json; "auto" or that file applied to the weights
    changes them as the calibration says; a file survives the round trip."""
    session, tracks, w = carphone
    saved = FaceCalibration.load(session / "face_calibration.json")
    assert saved.frames > 0
    stage = ExpressionStage(w, None)
    assert calibrate_expression(stage, tracks, None, tmp_path).weights is w
    auto = calibrate_expression(stage, tracks, "auto", tmp_path)
    measured = calibrate_face(w, tracks.face_valid)
    assert auto.calibration == "auto" and np.allclose(auto.weights, measured.apply(w), atol=1e-6)
    written = FaceCalibration.load(tmp_path / "face_calibration.json")  # the round trip
    assert np.allclose(written.apply(w), auto.weights, atol=FILE_ROUNDING)
    from_file = calibrate_expression(stage, tracks, session / "face_calibration.json", tmp_path)
    assert np.allclose(from_file.weights, saved.apply(w), atol=1e-6)


def test_live_stream_measures_the_resting_face_first(carphone):
    """Live: the first second passes unchanged while the resting face is measured, then the weights
    are calibrated; a saved file's gains come with SECONDS,FILE."""
    session, tracks, w = carphone
    live = live_calibration(str(LIVE_REST_S))
    out = np.array([live(w[k], float(tracks.t_s[k])) for k in range(tracks.n_frames)])
    early = tracks.t_s - tracks.t_s[0] < LIVE_REST_S
    assert np.allclose(out[early], w[early]) and live.calibration is not None
    assert np.all(out[~early][w[~early] < live.calibration.neutral] == 0)  # the resting face comes off
    both = live_calibration(f"{LIVE_REST_S},{session / 'face_calibration.json'}")
    assert both.saved is not None and both.calibration is None


def test_bad_calibrations_give_one_line_errors(tmp_path, sample):
    bad = tmp_path / "face_calibration.json"
    bad.write_text("{not json")
    for spec in ("0", "-3", str(tmp_path / "missing.json"), str(bad)):
        with pytest.raises(InputError):
            live_calibration(spec)
    for tool in ("pipeline.process", "pipeline.capture"):
        args = [sample("carphone"), "--out", tmp_path / "s"] if tool == "pipeline.process" else ["--cams", "0", "--vmc"]
        p = subprocess.run([sys.executable, "-m", tool, *map(str, args), "--face-calibration", str(bad), "--quiet"],
                           capture_output=True, text=True, timeout=120)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode != 0 and len(lines) == 1 and "face calibration" in lines[0], p.stderr
    assert not (tmp_path / "s").exists()
