"""Batch processing: several real takes in parallel worker processes, one failing, one summary."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from pipeline.core.session_folder import STAGING_TAG
from pipeline.session.batch_runner import (
    EXIT_WORKER_DIED,
    MAX_ATTEMPTS,
    TakeResult,
    _local,
    expand_inputs,
    session_dirs,
    summary_table,
)

KILL_WAIT_S = 120  # how long the killed-worker test waits for a worker to begin a take
POLL_S = 0.05      # its polling interval


def test_expand_inputs_files_folders_globs(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/one.mp4", "a/two.MOV", "a/notes.txt", "three.webm"):
        (tmp_path / name).write_bytes(b"x")
    got = expand_inputs([tmp_path / "a", str(tmp_path / "*.webm"), tmp_path / "a" / "one.mp4",
                         tmp_path / "missing.mp4"])
    assert [p.name for p in got] == ["one.mp4", "two.MOV", "three.webm", "missing.mp4"]
    dirs = session_dirs([tmp_path / "x" / "take.mp4", tmp_path / "y" / "take.mp4"], tmp_path / "out")
    assert [d.name for d in dirs] == ["take", "take_2"]


def test_batch_of_real_takes(sample, tmp_path):
    videos = [sample("single_face"), sample("carphone"), sample("no_face"), tmp_path / "missing.mp4"]
    out = tmp_path / "sessions"
    p = subprocess.run([sys.executable, "-m", "pipeline.batch", *map(str, videos), "--out", str(out),
                        "--workers", "2"], capture_output=True, text=True, timeout=600)
    print(p.stdout)
    assert p.returncode == 1, p.stderr  # some takes failed
    rows = json.loads((out / "batch_summary.json").read_text())
    assert [r["take"] for r in rows] == ["single_face", "carphone_pristine", "no_face", "missing"]
    assert [r["status"] for r in rows] == ["ok", "ok", "failed", "failed"]
    ok = rows[:2]
    for r in ok:
        assert (out / r["take"] / "avatar.glb").is_file() and (out / r["take"] / "manifest.json").is_file()
        m = json.loads((out / r["take"] / "manifest.json").read_text())
        assert r["frames"] == m["input"]["frames"] and r["face_frames"] == m["tracking"]["face_frames"]
        assert r["rig_error_mm"] == m["face_rig"]["heldout_landmark_error_mm"] and r["seconds"] > 0
    assert rows[0]["frames"] == 72 and rows[1]["frames"] == 120
    assert "no face and no person" in rows[2]["error"] and rows[2]["exit_code"] == 4
    assert "no such file" in rows[3]["error"] and rows[3]["exit_code"] == 3
    assert not (out / "no_face").exists()  # no empty folder left for a failed take
    # one table, one line per take, printed after all of them
    table = p.stdout.strip().splitlines()
    assert table[0].split()[:3] == ["take", "frames", "duration"]
    assert len(table) == 2 + 4 + 1 and table[-1] == "2 of 4 takes processed, 2 failed"
    for line, r in zip(table[2:6], rows):
        assert line.startswith(r["take"]) and r["status"] in line.split()
    assert "no face and no person" in table[4]
    assert (out / "batch_summary.csv").read_text().count("\n") == 5
    assert summary_table(rows).splitlines() == table


@pytest.mark.parametrize("executor", ["dask", "ray"])
def test_cluster_executor_missing_is_one_line(executor, tmp_path):
    if importlib.util.find_spec(executor) is not None:
        pytest.skip(f"{executor} is installed")
    (tmp_path / "take.mp4").write_bytes(b"not a video")
    p = subprocess.run([sys.executable, "-m", "pipeline.batch", str(tmp_path / "take.mp4"), "--out",
                        str(tmp_path / "o"), "--executor", executor, "--quiet"],
                       capture_output=True, text=True, timeout=120)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: ") and executor in lines[0]


def _stand_in(video, out, *_):
    """Stands in for run_take in a worker process: takes named die* kill their worker every time,
    once* only on their first attempt (a marker file says it was tried); each leaves a temporary
    session folder behind as a killed take would."""
    name = Path(video).stem
    marker = Path(out + ".tried")
    if name.startswith("die") or (name.startswith("once") and not marker.exists()):
        marker.touch()
        (Path(out + STAGING_TAG + "dead")).mkdir()
        os.kill(os.getpid(), signal.SIGKILL)
    return asdict(TakeResult(name, video, out))


def test_dead_worker_loses_only_its_take(tmp_path):
    names = ["ok1", "once", "die", "ok2"]
    jobs = [(str(tmp_path / f"{n}.mp4"), str(tmp_path / n)) for n in names]
    deaths = []

    def died(job, why, retry):
        deaths.append((job[0], why, retry))
    results = {r["take"]: r for r in _local(jobs, 2, target=_stand_in, on_worker_death=died)}
    assert set(results) == set(names)  # every take came back, the lost one too
    assert all(results[n]["status"] == "ok" and results[n]["attempts"] == 1 for n in ("ok1", "ok2"))
    assert results["once"]["status"] == "ok" and results["once"]["attempts"] == MAX_ATTEMPTS
    assert results["once"]["worker_died"] == "killed by SIGKILL"
    lost = results["die"]
    assert lost["status"] == "failed" and lost["attempts"] == MAX_ATTEMPTS and lost["exit_code"] == EXIT_WORKER_DIED
    assert lost["error"] == ("worker process died while processing it (killed by SIGKILL; then killed by SIGKILL); "
                             "tried 2 times")
    assert sorted((Path(v).stem, why, retry) for v, why, retry in deaths) == [
        ("die", "killed by SIGKILL", False), ("die", "killed by SIGKILL", True), ("once", "killed by SIGKILL", True)]
    assert not list(tmp_path.glob(f"*{STAGING_TAG}*"))  # what the dead workers began is gone
    table = summary_table([results[n] for n in names])
    assert "tried again: its first worker was killed by SIGKILL" in table.splitlines()[3]
    assert table.splitlines()[-1] == "3 of 4 takes processed, 1 failed"


def _workers(pid: int) -> list[int]:
    """Process ids of the batch's worker processes: children of `pid` started by multiprocessing's
    spawn (not its resource tracker), from /proc."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmdline:
            out.append(int(stat.parent.name))
    return out


def test_batch_survives_a_killed_worker(sample, tmp_path):
    """Three real takes, two workers, one worker killed with SIGKILL while it processes a take:
    the other takes finish, the lost one runs again, the summary says which and why."""
    takes = tmp_path / "takes"
    takes.mkdir()
    for n in ("a", "b", "c"):
        shutil.copy(sample("single_face"), takes / f"{n}.mp4")  # copies: links count as one video
    out = tmp_path / "sessions"
    p = subprocess.Popen([sys.executable, "-m", "pipeline.batch", str(takes), "--out", str(out), "--workers", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + KILL_WAIT_S
    while not list(out.glob(f"*{STAGING_TAG}*")) and time.monotonic() < deadline:
        time.sleep(POLL_S)  # a worker has begun a take
    workers = _workers(p.pid)
    assert workers, "no worker process found"
    os.kill(workers[0], signal.SIGKILL)
    stdout, stderr = p.communicate(timeout=600)
    print(stdout, stderr)
    assert p.returncode == 0, stderr
    rows = json.loads((out / "batch_summary.json").read_text())
    assert [r["status"] for r in rows] == ["ok"] * 3
    retried = [r for r in rows if r["attempts"] == 2]
    assert len(retried) == 1 and retried[0]["worker_died"] == "killed by SIGKILL"
    assert f"worker process killed by SIGKILL while processing {takes / retried[0]['take']}.mp4; trying it again" \
        in stderr and "Traceback" not in stderr
    for r in rows:  # every session whole, nothing half-written beside them
        assert json.loads((out / r["take"] / "manifest.json").read_text())["input"]["frames"] == 72
    assert sorted(q.name for q in out.iterdir()) == ["a", "b", "batch_summary.csv", "batch_summary.json", "c"]
    line = next(ln for ln in stdout.splitlines() if ln.startswith(retried[0]["take"] + " "))
    assert "killed by SIGKILL" in line
