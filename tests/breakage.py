"""Break one stage on purpose, to see that the tests catch it (a pytest plugin, off by default).

    .venv/bin/python -m pytest -p tests.breakage --break body_joints tests/test_body.py -k solvepnp

Each breakage wraps one stage's function before the tests import it, so every caller gets the
broken stage. The tests that must fail for each are listed in BREAKS (run `--break NAME` with them;
the closing note of issue 14 records what failed).
"""
from __future__ import annotations

import numpy as np
import pytest

_patch = pytest.MonkeyPatch()


def _body_joints():
    """The body solve's joint rotations handed to the next joint (a shuffle of the skeleton)."""
    import pipeline.body.solve as solve
    real = solve.solve_body

    def broken(*a, **k):
        m = real(*a, **k)
        m.local_rotations = np.roll(m.local_rotations, 1, axis=1)
        return m
    _patch.setattr(solve, "solve_body", broken)


def _texture_flip():
    """The GAN's completed texture upside down."""
    import models.texture_gan as gan
    real = gan.complete
    _patch.setattr(gan, "complete", lambda *a, **k: np.ascontiguousarray(real(*a, **k)[::-1]))


def _expression_columns():
    """The expression stage's ARKit columns in reverse order (the latent rig's weights, and
    MediaPipe's scores taken as they are when there is too little face for the rig)."""
    import pipeline.face.latent_rig as latent_rig
    import pipeline.face.weights as weights
    real_weights, real_latent = weights.morph_weights, latent_rig.latent_expression

    def latent(*a, **k):
        track = real_latent(*a, **k)
        track.weights = np.ascontiguousarray(track.weights[:, ::-1])
        return track
    _patch.setattr(weights, "morph_weights", lambda *a, **k: np.ascontiguousarray(real_weights(*a, **k)[:, ::-1]))
    _patch.setattr(latent_rig, "latent_expression", latent)


def _calibration_distortion():
    """The calibration's lens distortion dropped: every camera solved as an ideal pinhole."""
    import pipeline.multicam.calibration_solver as solver
    real = solver._store_solution

    def broken(cams, *a, **k):
        out = real(cams, *a, **k)
        for c in cams:
            c.dist = np.zeros_like(c.dist)
        return out
    _patch.setattr(solver, "_store_solution", broken)


def _camera_order():
    """The multi-camera fusion takes the first two cameras' calibrations in each other's place."""
    import pipeline.multicam.fusion as fusion
    real = fusion.fuse_views

    def broken(tracks, calibration, cameras=None, *a, **k):
        order = list(range(len(tracks)) if cameras is None else cameras)
        order[0], order[1] = order[1], order[0]
        return real(tracks, calibration, order, *a, **k)
    _patch.setattr(fusion, "fuse_views", broken)


BREAKS = {  # name: (breakage, the tests that must then fail)
    "body_joints": (_body_joints, "tests/test_body.py -k solvepnp; tests/test_framing.py -k reference"),
    "texture_flip": (_texture_flip, "tests/test_texture.py -k never_saw"),
    "expression_columns": (_expression_columns, "tests/test_process.py -k morph_weights"),
    "calibration_distortion": (_calibration_distortion, "tests/test_calibration.py -k stereo"),
    "camera_order": (_camera_order, "tests/test_triangulation.py -k fourth_cameras"),
}


def pytest_addoption(parser):
    parser.addoption("--break", dest="break_stage", choices=sorted(BREAKS),
                     help="break one stage on purpose (tests/breakage.py)")


def pytest_configure(config):
    stage = config.getoption("break_stage")
    if stage:
        BREAKS[stage][0]()


def pytest_unconfigure(config):
    _patch.undo()
