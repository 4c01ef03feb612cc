"""Per-user expression calibration: the subject's resting face subtracted and a gain per shape, so a
relaxed face gives weights near 0 and the subject's full expressions reach 1 (what VTubing tools
call "calibrate").

In: morph weights (N, 51) in [0, 1] (ARKIT_NAMES order; MediaPipe's scores or the latent rig's)
and a validity flag per frame (N,). Out: `FaceCalibration`: neutral (51,) and gain (51,); its
`apply` maps weights through w' = clip((w - neutral) * gain, 0, 1). Saved as JSON
(`face_calibration.json` in a session folder) and loaded back for the same user's next take.

How (`calibrate_face`):
  * The resting face: the REST_SHARE of valid frames whose expression is quietest (smallest sum of
    the weights, gaze left out: looking around is not an expression); each shape's neutral is its
    REST_LEVEL quantile there (a dead zone a little above the median: a relaxed face flickers).
    A person at rest still shows a little of many shapes (MediaPipe reports some squint, some
    smile, some mouthClose on a relaxed face): that is what is subtracted.
  * The gain: a shape the take shows (its PEAK_QUANTILE weight at least MIN_SPAN above its
    neutral) is stretched so that peak reaches 1, by at most MAX_GAIN; the others only so that
    a weight of 1 stays 1 (a take without a full smile does not say how big the user's smile is).
  * Gaze (eyeLook*) keeps neutral 0 and gain 1: it is a direction, not an expression.
Live (`LiveCalibration`): the first seconds of the stream are the resting face (the user
relaxes), or a saved file's calibration applies from the start.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.atomic import write_text
from pipeline.core.errors import InputError
from pipeline.core.tracks import ARKIT_NAMES

REST_SHARE = 0.4       # share of the valid frames taken as the resting face
REST_LEVEL = 0.75     # a shape's neutral: this quantile of its weights at rest (a dead zone above the median)
PEAK_QUANTILE = 0.98    # a shape's peak: this quantile of its weights over the valid frames
MIN_SPAN = 0.2          # a shape whose peak is less above its neutral is not stretched
MAX_GAIN = 2.5          # nor stretched more than this
MIN_FRAMES = 30         # fewer valid frames do not calibrate (the identity)
MAX_REST_S = 60.0       # live: the resting face is measured over at most this long
GAZE = np.array([n.startswith("eyeLook") for n in ARKIT_NAMES])


@dataclass(frozen=True)
class FaceCalibration:
    """neutral (51,) and gain (51,) in ARKIT_NAMES order; frames: how many it was measured on
    (0: the identity)."""

    neutral: np.ndarray
    gain: np.ndarray
    frames: int = 0

    @classmethod
    def identity(cls) -> FaceCalibration:
        return cls(np.zeros(len(ARKIT_NAMES)), np.ones(len(ARKIT_NAMES)), 0)

    def apply(self, weights: np.ndarray) -> np.ndarray:
        """Weights (..., 51) mapped through the calibration, float32 in [0, 1]."""
        w = np.asarray(weights, np.float64)
        return np.clip((w - self.neutral) * self.gain, 0.0, 1.0).astype(np.float32)

    def summary(self) -> dict:
        return {"frames": self.frames,
                "neutral": {n: round(float(v), 4) for n, v in zip(ARKIT_NAMES, self.neutral)},
                "gain": {n: round(float(v), 3) for n, v in zip(ARKIT_NAMES, self.gain)}}

    def save(self, path: str | Path) -> Path:
        """Write the calibration as JSON (atomic); OutputError when refused."""
        return write_text(Path(path), json.dumps(self.summary(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> FaceCalibration:
        """A calibration saved by `save`; InputError (one line) when unreadable."""
        try:
            data = json.loads(Path(path).read_text())
            neutral = np.array([float(data["neutral"][n]) for n in ARKIT_NAMES])
            gain = np.array([float(data["gain"][n]) for n in ARKIT_NAMES])
            frames = int(data["frames"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(f"face calibration {path} is unreadable ({type(e).__name__}: {e})") from None
        if not (np.all((neutral >= 0) & (neutral < 1)) and np.all((gain >= 1) & (gain <= MAX_GAIN))):
            raise InputError(f"face calibration {path} holds values out of range")
        return cls(neutral, gain, frames)


def calibrate_face(weights: np.ndarray, valid: np.ndarray | None = None) -> FaceCalibration:
    """The calibration of a take's weights (N, 51) over its valid frames (see the module docstring)."""
    w = np.asarray(weights, np.float64)
    ok = np.isfinite(w).all(axis=1) & (np.ones(len(w), bool) if valid is None else np.asarray(valid, bool))
    w = w[ok]
    if len(w) < MIN_FRAMES:
        return FaceCalibration.identity()
    activity = w[:, ~GAZE].sum(axis=1)
    rest = w[activity <= np.quantile(activity, REST_SHARE)]
    neutral = np.where(GAZE, 0.0, np.quantile(rest, REST_LEVEL, axis=0))
    span = np.quantile(w, PEAK_QUANTILE, axis=0) - neutral
    return FaceCalibration(neutral, _gains(neutral, span), int(len(w)))


def _gains(neutral: np.ndarray, span: np.ndarray | None = None) -> np.ndarray:
    """(51,) gains: a weight of 1 stays 1 (1 / (1 - neutral)); a shape shown over `span` above its
    neutral is stretched so that span reaches 1; at most MAX_GAIN."""
    keep_full = 1.0 / np.maximum(1.0 - neutral, 1e-6)
    stretch = keep_full if span is None else np.where(span >= MIN_SPAN, 1.0 / np.maximum(span, 1e-6), keep_full)
    return np.where(GAZE, 1.0, np.clip(np.maximum(stretch, keep_full), 1.0, MAX_GAIN))


class LiveCalibration:
    """The live stream's calibration. With `rest_s`, the first rest_s seconds of the stream pass
    unchanged while the resting face is measured (the user relaxes; each shape's neutral is the
    REST_LEVEL quantile of those frames), then every frame is calibrated with that neutral and the
    gains of `saved` (else those keeping a weight of 1 at 1). With only `saved`, it applies from the first frame.
    `calibration` is the one in use (None while measuring). Calls must come in time order."""

    def __init__(self, rest_s: float | None = None, saved: FaceCalibration | None = None):
        self.rest_s = rest_s
        self.saved = saved
        self.calibration = saved if rest_s is None else None
        self._t0: float | None = None
        self._rest: list[np.ndarray] = []

    def __call__(self, weights: np.ndarray, t_s: float, face_seen: bool = True) -> np.ndarray:
        """The frame's weights (51,) calibrated (unchanged while the resting face is measured)."""
        self._t0 = t_s if self._t0 is None else self._t0
        if self.calibration is None and t_s - self._t0 >= self.rest_s and self._rest:
            neutral = np.where(GAZE, 0.0, np.quantile(np.array(self._rest), REST_LEVEL, axis=0))
            gain = np.maximum(self.saved.gain, _gains(neutral)) if self.saved is not None else _gains(neutral)
            self.calibration = FaceCalibration(neutral, gain, len(self._rest))
        if self.calibration is not None:
            return self.calibration.apply(weights).astype(np.float64)
        if face_seen:
            self._rest.append(np.asarray(weights, np.float64))
        return np.asarray(weights, np.float64)


def live_calibration(spec: str | None) -> LiveCalibration | None:
    """`--face-calibration`'s value for a live take: SECONDS (of resting face at the start), FILE
    (a face_calibration.json) or SECONDS,FILE (the resting face measured now, the file's gains);
    None: no calibration. InputError (one line) for anything else or an unreadable file."""
    if not spec:
        return None
    rest_s, saved = None, None
    for part in str(spec).split(","):
        try:
            rest_s = float(part)
        except ValueError:
            saved = FaceCalibration.load(part)
            continue
        if not 0 < rest_s <= MAX_REST_S:
            raise InputError(f"--face-calibration: the resting face is measured over 0-{MAX_REST_S:.0f} s, "
                             f"not {part}")
    return LiveCalibration(rest_s, saved)
