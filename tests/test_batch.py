"""Batch processing: several real takes in parallel worker processes, one failing, one summary."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from pipeline.session.batch_runner import expand_inputs, session_dirs, summary_table


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
