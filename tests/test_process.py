"""End to end on real video: python -m pipeline.process, then the .glb through real consumers."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pygltflib
import pytest
from gltf_reader import read_accessor

from capture.video import probe
from pipeline.core.tracks import ARKIT_NAMES, BLENDSHAPE_NAMES, Tracks

SAMPLES = ["carphone", "wolfgang", "p2s_cam01"]
HUMANOID = {"hips", "spine", "chest", "neck", "head", "leftShoulder", "leftUpperArm", "leftLowerArm",
            "leftHand", "rightShoulder", "rightUpperArm", "rightLowerArm", "rightHand", "leftUpperLeg",
            "leftLowerLeg", "leftFoot", "leftToes", "rightUpperLeg", "rightLowerLeg", "rightFoot",
            "rightToes", "leftEye", "rightEye"}


def _weights_track(glb_path):
    g = pygltflib.GLTF2().load(str(glb_path))
    anim = g.animations[0]
    (ch,) = [c for c in anim.channels if c.target.path == "weights"]
    s = anim.samplers[ch.sampler]
    times = read_accessor(g, s.input)
    names = g.meshes[g.nodes[ch.target.node].mesh].extras["targetNames"]
    return g, times, read_accessor(g, s.output).reshape(len(times), len(names)), names


@pytest.mark.parametrize("name", SAMPLES)
def test_session_folder_and_glbcheck(name, processed, glbcheck, sample):
    out, manifest = processed(name)
    info = probe(sample(name))
    for f in ("tracks.npz", "manifest.json", "avatar.glb", "preview.png"):
        assert (out / f).is_file(), f
    assert json.loads((out / "manifest.json").read_text()) == manifest
    tracks = Tracks.load(out / "tracks.npz")
    assert tracks.n_frames == info.frame_count
    assert tracks.face_landmarks.shape[1:] == (478, 3) and tracks.blendshapes.shape[1] == 52
    assert tracks.pose_world_m.shape[1:] == (33, 3)
    assert np.all(np.diff(tracks.t_s) > 0)
    # nothing invented: invalid frames hold NaN, filled frames are flagged and valid
    assert np.isnan(tracks.blendshapes[~tracks.face_valid]).all()
    assert not (tracks.face_filled & ~tracks.face_valid).any()

    report = glbcheck(out / "avatar.glb")
    print(report["_stdout"])
    assert report["exit_code"] == 0, report["_stdout"]
    assert report["verdicts"] == {"validator": "PASS", "blender": "PASS", "three": "PASS", "crosscheck": "PASS"}
    val = report["consumers"]["validator"]["report"]["issues"]
    assert val["numErrors"] == 0
    # Blender: the head with all named shape keys, the armature with its action
    bl = report["consumers"]["blender"]
    (head,) = [m for m in bl["meshes"] if m["mesh"] == "Head"]
    assert head["shape_keys"] == list(ARKIT_NAMES)
    (arm,) = bl["armatures"]
    assert set(arm["bone_names"]) == HUMANOID
    kinds = {a["id_root"] for a in bl["actions"]}
    assert kinds == {"OBJECT", "KEY"}
    # three.js: morph dictionary in file order, one clip as long as the video
    th = report["consumers"]["three"]["summary"]
    (thead,) = [m for m in th["meshes"] if m["name"] == "Head"]
    assert thead["morphTargetDictionary"] == list(ARKIT_NAMES)
    (clip,) = th["animations"]
    assert clip["duration"] == pytest.approx(info.duration_s, abs=0.5 / info.fps)
    assert clip["duration"] == pytest.approx(manifest["input"]["duration_s"], abs=1e-4)

    # the head's texture reaches its material in both consumers (a take with a usable face)
    if manifest["texture"]["skipped"] is None:
        assert cv2.imread(str(out / "texture.png")).shape == (1024, 1024, 3)
        texs = [t for mat in head["materials"] for t in mat["image_textures"]]
        assert texs and texs[0]["has_data"] and "Principled BSDF:Base Color" in texs[0]["linked_to"]
        assert thead["materials"][0]["maps"]["map"]["decoded"]
    else:  # Pose2Sim's camera sees the face too small to texture (a crash would name itself instead)
        assert name == "p2s_cam01" and not (out / "texture.png").exists()
        assert manifest["texture"]["skipped"].startswith(("no frame shows a usable face", "the frames show only"))
        assert any("untextured" in w for w in manifest["warnings"])


@pytest.mark.parametrize("name", ["carphone", "wolfgang"])
def test_morph_weights_follow_mediapipe(name, processed):
    out, manifest = processed(name)
    tracks = Tracks.load(out / "tracks.npz")
    g, times, w, names = _weights_track(out / "avatar.glb")
    assert list(names) == list(ARKIT_NAMES)
    n = tracks.n_frames
    assert np.allclose(times[:n], tracks.t_s - tracks.t_s[0], atol=1e-4)
    assert times[-1] == pytest.approx(tracks.duration_s, abs=1e-4)
    ok = tracks.face_valid & ~tracks.face_filled
    for shape, least in MIN_CORRELATION.items():
        score = tracks.blendshapes[ok, BLENDSHAPE_NAMES.index(shape)]
        weight = w[:n][ok, names.index(shape)]
        if score.std() < 0.01:
            continue
        r = np.corrcoef(score, weight)[0, 1]
        print(f"{name} {shape}: correlation {r:.4f}")
        assert r > least


# Measured 2026-12-05 (carphone / wolfgang): jawOpen 0.994 / 0.985, mouthSmileRight 0.980 /
# 0.999, eyeBlinkLeft 0.873 / 0.998. Blinks: carphone's are one or two frames long and the batch latent smoothing halves
# them (score peaks 0.57 and 0.22 come out 0.20 and 0.14; correlation 0.87), a known weakness of
# the latent rig on fast events, stated in the README; the bound keeps it from getting worse.
MIN_CORRELATION = {"jawOpen": 0.95, "mouthSmileRight": 0.95, "eyeBlinkLeft": 0.8}


@pytest.mark.parametrize("name", ["carphone", "wolfgang"])
def test_face_rig_reconstructs_heldout_landmarks(name, processed):
    _, m = processed(name)
    rig = m["face_rig"]
    print(f"{name}: held-out landmark error {rig['heldout_landmark_error_mm']} mm "
          f"(neutral face alone {rig['heldout_error_neutral_only_mm']} mm)")
    assert rig["personalised"]
    assert rig["heldout_landmark_error_mm"] < 0.6 * rig["heldout_error_neutral_only_mm"]
    assert rig["heldout_landmark_error_mm"] < 3.0


def test_self_consistency_manifest_bone_directions(processed):
    """Self-consistency: the manifest's bone-direction figure is against the solver's own input."""
    _, m = processed("p2s_cam01")
    err = m["body"]["mean_bone_direction_error_deg"]
    print("p2s_cam01 mean bone direction error (deg):", err)
    assert {"leftUpperArm", "rightUpperArm", "leftUpperLeg", "rightUpperLeg"} <= set(err)
    # The manifest's figure is against MediaPipe's own landmarks, which the single-camera lift
    # (pipeline.body.image_lift) corrects where they are wrong: cam01's left forearm, which MediaPipe
    # bends toward the camera in 75 of 100 frames against the 4-camera reference, comes out about 19
    # degrees from them. Against the reference itself: tests/test_framing.py, tests/test_image_lift.py.
    assert np.mean(list(err.values())) < 10.0 and max(err.values()) < 25.0
    assert m["tracking"]["face_frames"] == 0 and m["warnings"]  # far away: no face, said so


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.process", *map(str, args), "--quiet"],
                          capture_output=True, text=True, timeout=300)


def _one_line_error(p):
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    return lines[0]


def test_bad_inputs_give_one_line_errors(tmp_path, sample):
    assert "no such file" in _one_line_error(_cli(tmp_path / "missing.mp4", "--out", tmp_path / "a"))
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 100)
    assert "not a readable video" in _one_line_error(_cli(text, "--out", tmp_path / "b"))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert "empty" in _one_line_error(_cli(empty, "--out", tmp_path / "c"))
    # a real container with a header and no frames
    import cv2
    zero = tmp_path / "zero.avi"
    vw = cv2.VideoWriter(str(zero), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 64))
    vw.release()
    assert _cli(zero, "--out", tmp_path / "d").returncode != 0
    _one_line_error(_cli(zero, "--out", tmp_path / "d"))
    msg = _one_line_error(_cli(sample("no_face"), "--out", tmp_path / "e"))
    assert "no face and no person" in msg
    assert not (tmp_path / "e" / "avatar.glb").exists()


def test_cli_several_cameras_of_one_take(tmp_path, sample, glbcheck):
    cams = [sample(f"p2s_cam0{i}") for i in (1, 2, 3)]
    p = _cli(*cams, "--calib", sample("p2s_calib"), "--out", tmp_path / "mv")
    assert p.returncode == 0, p.stderr
    m = json.loads((tmp_path / "mv" / "manifest.json").read_text())
    assert [c["name"] for c in m["multiview"]["cameras"]] == ["cam01", "cam02", "cam03"]
    assert m["tracking"]["body_frames"] == 100
    assert glbcheck(tmp_path / "mv" / "avatar.glb")["exit_code"] == 0
    # several videos without a calibration are a batch of separate takes
    p = _cli(*cams[:2], "--out", tmp_path / "x")
    assert p.returncode == 0 and (tmp_path / "x" / "cam01" / "avatar.glb").is_file(), p.stderr
