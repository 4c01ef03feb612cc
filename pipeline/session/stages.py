"""Recorded video -> session folder with tracks, manifest and an animated avatar.glb.

    python -m pipeline.process VIDEO [--out DIR]

The session folder holds:
  tracks.npz     per-frame MediaPipe face and pose tracks (see pipeline/tracks.py for every array)
  avatar.glb     textured head with 51 ARKit morph targets on a humanoid skeleton, one take
  texture.png    the head's base colour (1024 x 1024; avatar.glb embeds it as JPEG, quality 95)
  preview.png    contact sheet: video frames with landmarks beside the avatar at the same instant
  manifest.json  what went in, what came out, what was filled or missing, measured errors
"""
from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.threads import torch_threads
from pipeline.core.errors import AssetError, InputError, NothingTrackedError, PipelineError

UPRIGHT_TILT_DEG = 45.0  # a body that is never within this of upright, with no face, is not a person


@dataclass
class Stopwatch:
    times: dict = field(default_factory=dict)

    def lap(self, name: str, t0: float) -> float:
        self.times[name] = round(time.perf_counter() - t0, 3)
        return time.perf_counter()


def check_trackable(tracks) -> list[str]:
    """Raise NothingTrackedError when there is no face and no person; return warnings otherwise."""
    from pipeline.tracking.tracker import torso_tilt_deg

    n = tracks.n_frames
    faces = int(tracks.face_valid.sum())
    bodies = int(tracks.pose_valid.sum())
    if faces == 0:
        tilt = torso_tilt_deg(tracks.pose_world_m[tracks.pose_valid]) if bodies else np.array([])
        if bodies == 0 or not (tilt < UPRIGHT_TILT_DEG).any():
            # MediaPipe's pose detector sometimes reports a lying "body" in text or clouds; a take
            # with no face and never an upright body has no person in it.
            raise NothingTrackedError(f"{tracks.source}: no face and no person found in {n} frames")
    warnings = []
    if faces == 0:
        warnings.append("no face tracked in any frame: the head uses the generic face and "
                        "its expression stays neutral")
    if bodies == 0:
        warnings.append("no body tracked in any frame: the skeleton has default proportions "
                        "and stays in its rest pose")
    return warnings


def make_session_dir(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create session folder {out}: {e.strerror}") from None
    return out


def finish_session(raw, out: Path, take_name: str, frame_at, sw: Stopwatch, max_gap_s: float = 0.25,
                   input_info: dict | None = None, tool: str = "pipeline.process",
                   texture_cameras: list | None = None, expression_views: list | None = None) -> dict:
    """Every stage after tracking, shared by batch and live capture: check, fill gaps, save the
    tracks, fit the face rig and head, texture the head, solve the body, export avatar.glb, draw
    preview.png and write manifest.json. `frame_at(i)` returns frame i of the take (BGR) or None,
    for the texture and the preview. texture_cameras: for fused multi-camera tracks, each
    camera's own [(tracks, frame_at), ...] (see pipeline.head_texture.build_head_texture).
    expression_views: for fused multi-camera tracks, each camera's own (N, 52) blendshape scores
    on the take's timeline (NaN where it does not see the face well), which the latent rig fuses
    by encoding each view; without it, the tracks' own scores.
    """
    import cv2

    from pipeline.body.mesh import build_body_mesh
    from pipeline.body.skeleton import build_skeleton
    from pipeline.body.solve import solve_body
    from pipeline.core.tracks import ARKIT_NAMES, fill_short_gaps, gap_spans
    from pipeline.export.avatar import build_take, head_part
    from pipeline.export.gltf import build_gltf, write_glb
    from pipeline.export.preview import contact_sheet
    from pipeline.face import latent_rig
    from pipeline.face.head_mesh import build_head, extend_deltas
    from pipeline.face.head_space import face_points_m
    from pipeline.face.head_texture import TextureResult, build_head_texture
    from pipeline.face.rig import fit_face_rig
    from pipeline.face.weights import morph_weights

    t0 = time.perf_counter()
    warnings = check_trackable(raw)
    tracks = fill_short_gaps(raw, max_gap_s)
    tracks.save(out / "tracks.npz")

    points = face_points_m(tracks)
    rig = fit_face_rig(points, tracks.blendshapes, tracks.face_valid, tracks.t_s)
    head = build_head(rig.neutral_m)
    head_deltas = extend_deltas(head, rig.deltas_m[:, :468])
    t0 = sw.lap("face_rig", t0)

    try:
        tex = build_head_texture(tracks, frame_at, head, cameras=texture_cameras)
    except AssetError:
        raise                    # a missing or corrupt model file: the user must fix the install
    except Exception as e:       # the texture is not worth losing the take's avatar over
        tex = TextureResult(None, None, None, None, {}, skipped=f"texture failed ({type(e).__name__}: {e})")
    if tex.image is not None:
        try:
            tex.save(out / "texture.png")
        except OSError as e:
            raise PipelineError(f"cannot write {out / 'texture.png'}: {e}") from None
    else:
        warnings.append(f"the head is untextured (vertex colours): {tex.skipped}")
    t0 = sw.lap("texture", t0)

    skel = build_skeleton(tracks, eye_centres_face_m=head.eye_centres_m)
    motion = solve_body(skel, tracks)
    body = build_body_mesh(skel)
    t0 = sw.lap("body_solve", t0)

    lt = None
    views = list(expression_views) if expression_views is not None else [latent_rig.observed_scores(tracks)]
    if sum(int(np.isfinite(v).all(1).sum()) for v in views) >= 2:
        # Expression through the latent rig: the VAE fine-tuned on this take, smoothed without lag,
        # short face losses filled in latent space, several cameras fused by one latent per frame
        # explaining every view; the head is driven by the decoded weights.
        with torch_threads(1):  # small models: more threads only fight MediaPipe's (5x slower at 2)
            vae = latent_rig.finetune(latent_rig.load_model(), views)
            lt = latent_rig.latent_expression(vae, views, tracks.t_s, latent_rig.LatentParams())
        lt.save(out / "latent.npz")
        weights = lt.weights.astype(np.float32)
    else:
        weights = morph_weights(tracks.blendshapes, tracks.face_valid)  # no face: neutral
    t0 = sw.lap("expression", t0)
    take = build_take(take_name, tracks.t_s, tracks.duration_s, weights, motion, skel)
    meshes = [body, head_part(head, head_deltas, skel, tex.image)]
    gltf, blob = build_gltf(
        skel.names, skel.parents, skel.rest_local_m, meshes, take,
        extras={"dhcap": {"source": take_name, "fps": tracks.fps, "duration_s": tracks.duration_s}})
    glb = out / "avatar.glb"
    try:
        write_glb(glb, gltf, blob)
    except OSError as e:
        raise PipelineError(f"cannot write {glb}: {e.strerror or e}") from None
    t0 = sw.lap("export", t0)
    from pipeline.export.formats import export_formats
    engine = export_formats(out)  # avatar.vrm, take.vrma, take.bvh, take_blendshapes.csv
    t0 = sw.lap("engine_export", t0)

    cv2.imwrite(str(out / "preview.png"), contact_sheet(frame_at, tracks, glb))
    sw.lap("preview", t0)

    body_err = bone_direction_error_deg(skel, motion, tracks)
    manifest = {
        "tool": f"dhcap {tool}",
        "python": platform.python_version(),
        "input": {**(input_info or {}), "fps": round(tracks.fps, 4), "frames": tracks.n_frames,
                  "duration_s": round(tracks.duration_s, 4)},
        "outputs": {"tracks": "tracks.npz", "avatar": "avatar.glb", "preview": "preview.png",
                    "manifest": "manifest.json", **engine["files"],
                    **({"texture": "texture.png"} if tex.image is not None else {}),
                    **({"latent": "latent.npz"} if lt is not None else {})},
        "tracking": {
            "face_frames": int(raw.face_valid.sum()), "body_frames": int(raw.pose_valid.sum()),
            "face_filled_frames": int(tracks.face_filled.sum()),
            "body_filled_frames": int(tracks.pose_filled.sum()),
            "max_filled_gap_s": max_gap_s,
            "face_missing_spans_s": _spans_s(tracks, gap_spans(tracks.face_valid)),
            "body_missing_spans_s": _spans_s(tracks, gap_spans(tracks.pose_valid)),
        },
        "expression": lt.summary() if lt is not None else None,
        "face_rig": {"personalised": rig.personalised, "fit_frames": rig.n_frames,
                     "heldout_landmark_error_mm": _r(rig.heldout_error_mm),
                     "heldout_error_neutral_only_mm": _r(rig.heldout_error_neutral_mm),
                     "morph_targets": list(ARKIT_NAMES)},
        "texture": {**tex.stats, "skipped": tex.skipped or None},
        "body": {"joints": list(skel.names), "mean_bone_direction_error_deg": body_err,
                 "height_m": _r(skel.height_m)},
        "animation": {"keys": int(len(take.times_s)), "duration_s": round(float(take.times_s[-1]), 6),
                      "interpolation": "LINEAR"},
        "avatar": {"file": "avatar.glb", "bytes": glb.stat().st_size,
                   "head_vertices": int(len(head.positions_m)), "body_vertices": int(len(body.positions))},
        "timings_s": sw.times,
        "warnings": warnings,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def _r(x: float, nd: int = 3):
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def _spans_s(tracks, spans) -> list[list[float]]:
    t = tracks.t_s
    return [[round(float(t[s]), 3), round(float(t[e - 1]), 3)] for s, e in spans]


def bone_direction_error_deg(skel, motion, tracks) -> dict:
    """Mean angle between each solved limb bone and the tracked landmark direction, degrees,
    over frames where both ends are visible (visibility >= 0.8) and not filled."""
    from pipeline.core.tracks import POSE
    pairs = {"leftUpperArm": ("left_shoulder", "left_elbow"), "leftLowerArm": ("left_elbow", "left_wrist"),
             "rightUpperArm": ("right_shoulder", "right_elbow"), "rightLowerArm": ("right_elbow", "right_wrist"),
             "leftUpperLeg": ("left_hip", "left_knee"), "leftLowerLeg": ("left_knee", "left_ankle"),
             "rightUpperLeg": ("right_hip", "right_knee"), "rightLowerLeg": ("right_knee", "right_ankle")}
    child = {"leftUpperArm": "leftLowerArm", "leftLowerArm": "leftHand", "rightUpperArm": "rightLowerArm",
             "rightLowerArm": "rightHand", "leftUpperLeg": "leftLowerLeg", "leftLowerLeg": "leftFoot",
             "rightUpperLeg": "rightLowerLeg", "rightLowerLeg": "rightFoot"}
    from scipy.spatial.transform import Rotation

    pos = motion.forward_kinematics(skel)
    world = tracks.pose_world_m * np.array([1, -1, -1], np.float32)  # MediaPipe -> glTF axes
    world = Rotation.from_quat(motion.level_xyzw).apply(world.reshape(-1, 3)).reshape(world.shape)
    out = {}
    for bone, (a, b) in pairs.items():
        ia, ib = POSE[a], POSE[b]
        ok = (tracks.pose_valid & ~tracks.pose_filled
              & (tracks.pose_visibility[:, ia] >= 0.8) & (tracks.pose_visibility[:, ib] >= 0.8))
        if ok.sum() == 0:
            continue
        d_track = world[ok, ib] - world[ok, ia]
        d_solve = pos[ok, skel.index(child[bone])] - pos[ok, skel.index(bone)]
        cos = (d_track * d_solve).sum(1) / (np.linalg.norm(d_track, axis=1) * np.linalg.norm(d_solve, axis=1))
        out[bone] = round(float(np.degrees(np.arccos(np.clip(cos, -1, 1))).mean()), 2)
    return out


