"""ARKit blendshapes -> the expression vocabularies of engines and VTuber tools.

Three uses, each a documented, deliberately simple mapping (ARKit has no visemes or emotions, so
any mapping is a heuristic; the 51 ARKit shapes themselves are always exported unchanged too):

* `PRESET_BINDS`: what each VRM 1.0 preset expression shows on our avatar, as morph-target weights
  of the ARKit targets (the `morphTargetBinds` of `avatar.vrm`). E.g. `blink` closes both eyelids
  (eyeBlinkLeft + eyeBlinkRight), `aa` opens the jaw, `happy` smiles and squints.
* `preset_weights`: per-frame weights of the VRM presets computed from ARKit scores, for avatars
  that only have presets (a `.vrma` written with preset expressions, VMC streams to VRM 0.x
  models). Blinks are split so that blink + blinkLeft reproduces eyeBlinkLeft exactly.
* `VRM0_NAMES`: VRM 1.0 preset -> VRM 0.x BlendShapeClip preset name (VMC receivers built on
  UniVRM 0.x: A, I, U, E, O, Blink, Joy, ...).
"""
from __future__ import annotations

import numpy as np

from pipeline.core.tracks import ARKIT_NAMES

VRM_PRESETS = ("happy", "angry", "sad", "relaxed", "surprised", "aa", "ih", "ou", "ee", "oh",
               "blink", "blinkLeft", "blinkRight", "lookUp", "lookDown", "lookLeft", "lookRight",
               "neutral")

_LR = ("Left", "Right")


def _both(shape: str, w: float) -> dict[str, float]:
    return {f"{shape}{s}": w for s in _LR}


# VRM preset -> {ARKit target: bind weight}. "Left" is the avatar's own left (+X), as in ARKit.
PRESET_BINDS: dict[str, dict[str, float]] = {
    "happy": {**_both("mouthSmile", 1.0), **_both("cheekSquint", 0.6), **_both("eyeSquint", 0.4)},
    "angry": {**_both("browDown", 1.0), **_both("noseSneer", 0.5), **_both("mouthPress", 0.5),
              **_both("eyeSquint", 0.3)},
    "sad": {"browInnerUp": 0.8, **_both("mouthFrown", 1.0), "mouthShrugLower": 0.3},
    "relaxed": {**_both("mouthSmile", 0.5), **_both("eyeSquint", 0.5)},
    "surprised": {"browInnerUp": 1.0, **_both("browOuterUp", 1.0), **_both("eyeWide", 1.0),
                  "jawOpen": 0.4},
    "aa": {"jawOpen": 0.8, **_both("mouthLowerDown", 0.3)},
    "ih": {"jawOpen": 0.2, **_both("mouthStretch", 0.5), **_both("mouthSmile", 0.3)},
    "ou": {"mouthPucker": 1.0, "mouthFunnel": 0.3, "jawOpen": 0.1},
    "ee": {"jawOpen": 0.4, **_both("mouthStretch", 0.6)},
    "oh": {"mouthFunnel": 0.8, "jawOpen": 0.5},
    "blink": _both("eyeBlink", 1.0),
    "blinkLeft": {"eyeBlinkLeft": 1.0},
    "blinkRight": {"eyeBlinkRight": 1.0},
    "lookUp": _both("eyeLookUp", 1.0),
    "lookDown": _both("eyeLookDown", 1.0),
    # looking toward the avatar's own left: the left eye looks out, the right eye looks in
    "lookLeft": {"eyeLookOutLeft": 1.0, "eyeLookInRight": 1.0},
    "lookRight": {"eyeLookInLeft": 1.0, "eyeLookOutRight": 1.0},
}

VRM0_NAMES = {"aa": "A", "ih": "I", "ou": "U", "ee": "E", "oh": "O", "blink": "Blink",
              "blinkLeft": "Blink_L", "blinkRight": "Blink_R", "happy": "Joy", "angry": "Angry",
              "sad": "Sorrow", "relaxed": "Fun", "lookUp": "LookUp", "lookDown": "LookDown",
              "lookLeft": "LookLeft", "lookRight": "LookRight", "neutral": "Neutral"}

# Presets whose weights preset_weights computes (the look* presets are gaze, which VRM carries as
# lookAt / eye bones; relaxed and neutral are not observable from ARKit scores).
FRAME_PRESETS = ("blink", "blinkLeft", "blinkRight", "aa", "ih", "ou", "ee", "oh",
                 "happy", "angry", "sad", "surprised")


def preset_weights(weights: np.ndarray) -> dict[str, np.ndarray]:
    """{VRM preset: (N,) weight in [0, 1]} from (N, 51) ARKit weights (ARKIT_NAMES order).

    blink = min(eyeBlinkLeft, eyeBlinkRight); blinkLeft/Right = the rest of each eye (so a model
    with all three reproduces each eyelid exactly); aa = jawOpen; ih = mouthStretch (mean of both
    sides); ou = mouthPucker; ee = mouthLowerDown; oh = mouthFunnel; happy = mouthSmile;
    angry = browDown; sad = mouthFrown; surprised = mean(browInnerUp, eyeWide).
    """
    w = np.asarray(weights, np.float64)
    if w.ndim == 1:
        w = w[None]
    c = {n: w[:, i] for i, n in enumerate(ARKIT_NAMES)}

    def mean(shape: str) -> np.ndarray:
        return 0.5 * (c[f"{shape}Left"] + c[f"{shape}Right"])

    blink = np.minimum(c["eyeBlinkLeft"], c["eyeBlinkRight"])
    out = {
        "blink": blink, "blinkLeft": c["eyeBlinkLeft"] - blink, "blinkRight": c["eyeBlinkRight"] - blink,
        "aa": c["jawOpen"], "ih": mean("mouthStretch"), "ou": c["mouthPucker"],
        "ee": mean("mouthLowerDown"), "oh": c["mouthFunnel"],
        "happy": mean("mouthSmile"), "angry": mean("browDown"), "sad": mean("mouthFrown"),
        "surprised": 0.5 * (c["browInnerUp"] + mean("eyeWide")),
    }
    return {k: np.clip(v, 0.0, 1.0) for k, v in out.items()}


def perfect_sync_name(arkit: str) -> str:
    """ARKit name -> the capitalised "perfect sync" / Live Link Face name (eyeBlinkLeft -> EyeBlinkLeft)."""
    return arkit[:1].upper() + arkit[1:]
