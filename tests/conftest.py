"""Shared fixtures: real sample media (downloaded once, cached outside the repo), sessions processed
once per test run, and glbcheck (Khronos validator + Blender + three.js) on exported files."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GLBCHECK_CANDIDATES = [os.environ.get("GLBCHECK", ""), str(ROOT / ".cache" / "glbcheck" / "glbcheck")]


@pytest.fixture(scope="session")
def sample():
    """sample("wolfgang") -> Path of a real media file (see pipeline/samples.py)."""
    from pipeline.core.samples import fetch
    return fetch


@pytest.fixture(scope="session")
def tracked():
    """tracked("carphone") -> the raw MediaPipe tracks of a sample (or a framing source, see
    tests/framing_clips.py), tracked once per test run; tests must not change them in place."""
    from framing_clips import tracked_source
    return tracked_source


def unavailable(what: str):
    """A sample or tool the test needs is missing: a failure under CI (setup.sh and the sample cache
    must provide it), a skip elsewhere (an offline machine without the cache)."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must have it: ./setup.sh installs tools, samples download on first use)")
    pytest.skip(what)


def _find_glbcheck() -> str | None:
    for c in GLBCHECK_CANDIDATES:
        if c and Path(c).is_file() and (Path(c).parent / "node_modules").is_dir():
            return c
    return shutil.which("glbcheck")


@pytest.fixture(scope="session")
def glbcheck(tmp_path_factory):
    """glbcheck(path) -> its JSON report (dict). Fails in CI when glbcheck is not installed
    (setup.sh installs it from ../shared); skips elsewhere."""
    exe = _find_glbcheck()
    if exe is None:
        unavailable("glbcheck not installed (run ./setup.sh next to ../shared/tools/glbcheck)")
    out_dir = tmp_path_factory.mktemp("glbcheck")

    def run(path: Path, *args: str) -> dict:
        report = out_dir / (Path(path).stem + f"_{len(list(out_dir.iterdir()))}.json")
        p = subprocess.run([exe, str(path), "--json", str(report), *args], capture_output=True,
                           text=True, timeout=600)
        data = json.loads(report.read_text())
        data["_stdout"] = p.stdout
        data["_returncode"] = p.returncode
        return data
    return run


@pytest.fixture(scope="session")
def processed(tmp_path_factory, sample):
    """processed("wolfgang") -> (session dir, manifest); each sample is processed once a run."""
    from pipeline.session.single_camera import process_video
    cache: dict[str, tuple[Path, dict]] = {}

    def get(name: str):
        if name not in cache:
            out = tmp_path_factory.mktemp(f"session_{name}")
            cache[name] = (out, process_video(sample(name), out, progress=False))
        return cache[name]
    return get
