"""Model files are checked before use; the canonical face is read from the real .task file."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from pipeline.core import assets
from pipeline.core.errors import AssetError
from pipeline.face.canonical import load_canonical_face


def test_models_verified():
    for name in (assets.FACE_MODEL, assets.POSE_MODEL):
        p = assets.model_path(name)
        assert assets.sha256_file(p) == assets.expected_sums()[name]


def test_corrupt_or_missing_model_is_refused(tmp_path, monkeypatch):
    shutil.copy(assets.model_path(assets.FACE_MODEL), tmp_path / assets.FACE_MODEL)
    data = bytearray((tmp_path / assets.FACE_MODEL).read_bytes())
    data[1000] ^= 0xFF
    (tmp_path / assets.FACE_MODEL).write_bytes(bytes(data))
    monkeypatch.setenv("DHCAP_MODEL_DIR", str(tmp_path))
    with pytest.raises(AssetError, match="SHA-256"):
        assets.model_path(assets.FACE_MODEL)
    with pytest.raises(AssetError, match="missing"):
        assets.model_path(assets.POSE_MODEL)
    # and the CLI says it in one line
    p = subprocess.run([sys.executable, "-m", "pipeline.assets", "check"], capture_output=True,
                       text=True, env={**__import__("os").environ, "DHCAP_MODEL_DIR": str(tmp_path)})
    assert p.returncode == AssetError.exit_code
    assert len(p.stderr.strip().splitlines()) == 1 and "SHA-256" in p.stderr


def test_retrained_checkpoint_is_recorded_and_others_still_refused(tmp_path, monkeypatch):
    """A training command writing the committed checkpoint records its new SHA-256 (the product
    then loads it); a file changed any other way is still refused."""
    models = tmp_path / "assets" / "models"
    models.mkdir(parents=True)
    shutil.copy(assets.ASSETS_DIR / "models" / "SHA256SUMS", models / "SHA256SUMS")
    for name in assets.CHECKPOINTS:
        shutil.copy(assets.model_path(name), models / name)
    monkeypatch.setattr(assets, "ASSETS_DIR", tmp_path / "assets")
    monkeypatch.setattr(assets, "BUNDLED_DIR", models)
    monkeypatch.setenv("DHCAP_MODEL_DIR", str(models))
    retrained = models / assets.EXPRESSION_VAE
    retrained.write_bytes(retrained.read_bytes() + b"retrained")
    with pytest.raises(AssetError, match="SHA-256"):
        assets.model_path(assets.EXPRESSION_VAE)
    assert assets.record_checkpoint(retrained)
    assert assets.model_path(assets.EXPRESSION_VAE) == retrained
    assert not assets.record_checkpoint(tmp_path / assets.EXPRESSION_VAE)  # not the committed one
    other = models / assets.TEXTURE_GAN
    other.write_bytes(other.read_bytes()[:-1])
    with pytest.raises(AssetError, match="SHA-256"):
        assets.model_path(assets.TEXTURE_GAN)


def test_canonical_face_mesh():
    c = load_canonical_face()
    assert c.vertices_m.shape == (468, 3) and c.triangles.shape == (898, 3)
    assert c.triangles.min() == 0 and c.triangles.max() == 467
    assert (c.uv >= 0).all() and (c.uv <= 1).all()
    # metric: an adult face, outer eye corners (33, 263) about 9 cm apart, symmetric about x = 0
    assert 0.08 < np.linalg.norm(c.vertices_m[33] - c.vertices_m[263]) < 0.10
    assert c.vertices_m[263, 0] > 0 > c.vertices_m[33, 0]  # the subject's left is +X
    # UVs are image-style: forehead (10) near the top (v small), chin (152) near the bottom
    assert c.uv[10, 1] < 0.2 and c.uv[152, 1] > 0.8
    # the triangles face +Z (out of the face)
    v = c.vertices_m[c.triangles]
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]).sum(0)
    assert n[2] > 0
    assert len(c.procrustes_ids) == len(c.procrustes_weights) > 10
