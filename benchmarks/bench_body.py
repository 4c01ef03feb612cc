"""Benchmark of the body motion (issue 12): a single camera against a 4-camera reference, and every
common framing, before and after a change.

    .venv/bin/python benchmarks/bench_body.py [--before CHECKOUT] [--work DIR] [--reuse [--redo after]]

Each take is processed by the command users run, `python -m pipeline.process VIDEO --out DIR`, in a
fresh process of this venv whose `PYTHONPATH` is the checkout being measured: this tree ("after")
and, with `--before`, another checkout of the project, e.g. the commit before the change:
`git worktree add ../dhcap_before 39a7b21` (or `git clone` + `git checkout`), then
`--before ../dhcap_before` (its missing model files are taken from this tree's assets/models).
Sessions go to `--work` (default ~/.cache/dhcap/bench_body/<label>/<take>); `--reuse` keeps the
sessions already there (`--redo after`: all but this tree's). Everything is then measured here,
from the files users get: avatar.glb read back and posed by forward kinematics
(tests/framing_clips.py `read_motion`) and tracks.npz.
Results: benchmarks/results/body.json and body.md.

(a) Reference comparison. Pose2Sim's demo (`p2s_cam01..04`, 100 frames at 60 fps) seen by its 4
calibrated cameras and triangulated (`python -m pipeline.process cam01..04 --calib p2s_calib`, run
by the before checkout when given, else this one, so both are measured against the same reference)
is the reference for each camera processed alone. Protocol of the issue's baseline (frame i of a
camera against frame i of the reference; reference joints triangulated from >= 2 cameras):
  * PA-MPJPE (mm): per frame, the 12 joints (shoulders, elbows, wrists, hips, knees, ankles; in
    the avatar: upper arm, lower arm, hand, upper leg, lower leg, foot joints) aligned to the
    reference by a similarity transform (Procrustes with scale), mean distance; mean over frames.
  * bone direction (deg): the angle between each of the 8 limb bones (upper arms, forearms, thighs,
    shins) after that alignment and the reference's, mean over bones and frames.
  * swapped frames (%): frames whose joints fit the reference better with left and right swapped.
  * upright error (deg): |tilt of the spine - tilt of the reference's torso| (hips to neck against
    mid-hips to mid-shoulders, from vertical), mean over frames.
  * foot skate (cm): horizontal travel of the avatar's ankle (foot joint) over the frame steps in
    which the reference's foot is planted (framing_clips.ReferenceTake.planted: its sole, the lower
    of heel and toe landmarks, within 3 cm of the floor, the take's median lowest sole, in both
    frames, and its ankle moving under 5 mm), summed over the take, mean of the two feet.
  * ground penetration (mm): depth below the floor (Y = 0) of the avatar's soles (framing_clips.
    sole_heights_m: the floor points below the ankle and the ball of the rest pose, carried by the
    foot and toes joints), mean over frames and feet (the max too).
  * jitter (m/s^2): mean |second difference| x fps^2 of the 12 joints relative to the hips' centre,
    against the reference's own.
  "raw" is MediaPipe's world landmarks of that camera (the reference session's views/camNN.npz):
  they have no floor nor root motion, so no foot figures.
(b) Framings. The real clips of tests/framing_clips.py and registered samples (close-up, desk webcam,
head and shoulders, seated, half and full body, walking in and out, back to the camera, several
people, a person on a screen, no person, a cartoon): share of frames with the body solved from view
(tracks.npz `joint_from_view`, any joint; a checkout without it: `pose_valid`), the same share over
the frames where nobody is in view (should be 0), upright error (deg: against the reference's torso
where the hips are in view of a Pose2Sim take, else against vertical, over frames with a person),
foot skate (as above for the clips whose frames are the reference's; otherwise over the steps in
which the avatar's own sole is within CONTACT_M of the floor in both frames), jitter (all body
joints relative to the hips, m/s^2), and the largest key change in nobody's frames (deg per frame,
EASE_S after a person leaves excluded: should be 0).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import framing_clips as fc  # noqa: E402

from pipeline.core.tracks import POSE, Tracks  # noqa: E402

CAMS = ("cam01", "cam02", "cam03", "cam04")
LANDMARKS_12, JOINTS_12 = fc.LANDMARKS_12, fc.JOINTS_12
SWAP_12 = np.array([1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10])  # left <-> right in that order
BONES_12 = ((0, 2), (2, 4), (1, 3), (3, 5), (6, 8), (8, 10), (7, 9), (9, 11))  # the 8 limb bones
MIN_ALIGN_JOINTS = 6  # a frame needs this many reference joints for a similarity alignment
CONTACT_M = 0.03      # a sole within 3 cm of the floor is in contact (foot skate)
EASE_S = 0.5          # s after a person leaves during which the avatar may still ease to rest
MM, CM = 1000.0, 100.0
DEFAULT_WORK = Path.home() / ".cache" / "dhcap" / "bench_body"
RESULTS = ROOT / "benchmarks" / "results"

# The framing clips: name -> (what, how the truth is known). "upright": the person is upright in
# every frame (truth: vertical); "reference": a Pose2Sim single-person take whose frames are the
# reference's ("hips": the hips are in view, so the truth is the reference's torso; else vertical).
# "nobody": frames with nobody in view (a function of the frame count), None: a person throughout.
FRAMINGS = {
    "webcam_close_up": ("close-up face", "upright", None),
    "face_noface": ("desk webcam, then a cartoon (frames 72-168)", "upright", lambda n: np.arange(n) >= 72),
    "p2s_head_shoulders": ("head and shoulders", "reference", None),
    "p2s_seated": ("seated (head to mid-torso)", "reference", None),
    "p2s_half_body": ("half body", "reference-hips", None),
    "p2s_cam01": ("full body", "reference-hips", None),
    "s2d_seated": ("head to chest, hands leaving the frame", "upright", None),
    "s2d_walk_in_out": ("walking into and out of the frame", "upright", "walk"),
    "p2s_cam03": ("back to the camera", "reference-hips", None),
    "p2s_multi_cam03": ("back to the camera, two people", None, None),
    "p2s_multi_cam01": ("three people in view", None, None),
    "sports2d": ("full body, small face; a second person walks in", None, None),
    "screen_background": ("a person on a screen behind the subject", "upright", None),
    "no_face": ("no person (animated title)", None, lambda n: np.ones(n, bool)),
    "bigbuckbunny": ("cartoon rabbit, no person", None, lambda n: np.ones(n, bool)),
}


# ---------------------------------------------------------------------------------------------
# Running the pipeline of a checkout

def _git(checkout: Path, *args: str) -> str:
    """Output of a read-only git command in a checkout ('' when it is not a git checkout)."""
    p = subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else ""


def describe(checkout: Path) -> str:
    """Commit of a checkout, '+changes' when its tree differs from it."""
    commit = _git(checkout, "rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if _git(checkout, "status", "--porcelain", "--untracked-files=no") else "")


def run_process(checkout: Path, videos: list[Path], out: Path, reuse: bool, calib: Path | None = None) -> dict:
    """`python -m pipeline.process VIDEOS --out OUT` with the checkout's code; {exit_code, wall_s}."""
    if reuse and (out / "run.json").is_file():
        return json.loads((out / "run.json").read_text())
    # pipeline.process writes a session folder whole (and refuses a folder holding anything
    # else): it gets a fresh OUT, and the run's log and exit code join it afterwards
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.parent / f"{out.name}.run.log"
    env = dict(os.environ, PYTHONPATH=str(checkout))
    if not list((checkout / "assets" / "models").glob("*.task")):
        env.setdefault("DHCAP_MODEL_DIR", str(ROOT / "assets" / "models"))
    cmd = [sys.executable, "-m", "pipeline.process", *map(str, videos), "--out", str(out), "--quiet"]
    cmd += ["--calib", str(calib)] if calib else []
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        rc = subprocess.run(cmd, cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    run = {"exit_code": rc, "wall_s": round(time.perf_counter() - t0, 1)}
    out.mkdir(exist_ok=True)
    shutil.move(log_path, out / "run.log")
    (out / "run.json").write_text(json.dumps(run))
    return run


# ---------------------------------------------------------------------------------------------
# Measures

def similarity_align(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x (K, 3) moved onto y (K, 3) by the best rotation, scale and translation (Umeyama)."""
    mx, my = x.mean(0), y.mean(0)
    x0, y0 = x - mx, y - my
    u, s, vt = np.linalg.svd(x0.T @ y0)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    r = u @ d @ vt
    scale = (s * np.diag(d)).sum() / (x0 ** 2).sum()
    return scale * x0 @ r + my


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between vectors (..., 3), degrees."""
    cos = (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def compare_to_reference(pred: np.ndarray, ref: np.ndarray, ok: np.ndarray) -> dict:
    """PA-MPJPE (mm), bone direction error (deg) and swapped frames (%) of pred (N, 12, 3) against
    ref (N, 12, 3), ok (N, 12) where the reference is triangulated."""
    errors, bones, swapped = [], [], []
    for i in range(min(len(pred), len(ref))):
        m = ok[i] & np.isfinite(pred[i]).all(1) & np.isfinite(ref[i]).all(1)
        if m.sum() < MIN_ALIGN_JOINTS:
            continue
        aligned = np.full_like(pred[i], np.nan)
        aligned[m] = similarity_align(pred[i][m], ref[i][m])
        errors.append(np.linalg.norm(aligned[m] - ref[i][m], axis=1).mean())
        alt = pred[i][SWAP_12]
        ms = m & np.isfinite(alt).all(1)
        swapped.append(np.linalg.norm(similarity_align(alt[ms], ref[i][ms]) - ref[i][ms], axis=1).mean()
                       < np.linalg.norm(similarity_align(pred[i][ms], ref[i][ms]) - ref[i][ms], axis=1).mean())
        for a, b in BONES_12:
            if m[a] and m[b]:
                bones.append(_angle_deg(aligned[b] - aligned[a], ref[i][b] - ref[i][a]))
    return {"pa_mpjpe_mm": _r(np.mean(errors) * MM), "bone_direction_deg": _r(np.mean(bones)),
            "swapped_frames_pct": _r(100.0 * np.mean(swapped)), "frames": len(errors)}


def jitter(points: np.ndarray, centre: np.ndarray, fps: float) -> float:
    """Mean |second difference| x fps^2 (m/s^2) of points (N, K, 3) relative to centre (N, 3)."""
    rel = points - centre[:, None]
    acc = np.linalg.norm(rel[2:] - 2 * rel[1:-1] + rel[:-2], axis=-1) * fps ** 2
    return _r(float(np.nanmean(acc)) if np.isfinite(acc).any() else np.nan)


def foot_figures(sole_h: np.ndarray, ankles_xz: np.ndarray, planted: np.ndarray | None = None) -> dict:
    """Foot skate (cm, mean of the feet; the largest slide in one frame too) and ground penetration
    (mm) from sole heights (N, 2) above the floor (m) and the ankles' horizontal positions (N, 2, 2)
    m. planted (N-1, 2): the frame steps in which each foot stands still (the reference's); without
    it, the steps in which the sole is within CONTACT_M of the floor in both frames."""
    if planted is None:
        contact = sole_h < CONTACT_M
        planted = contact[1:] & contact[:-1]
    n = min(len(planted), len(ankles_xz) - 1)
    step = np.linalg.norm(np.diff(ankles_xz[: n + 1], axis=0), axis=-1)
    slid = np.where(planted[:n] & np.isfinite(step), step, 0.0)
    depth = np.clip(-sole_h, 0.0, None)
    return {"foot_skate_cm": _r(slid.sum(0).mean() * CM), "slide_max_cm": _r(slid.max() * CM),
            "planted_steps_pct": _r(100.0 * np.mean(planted[:n])),
            "penetration_mm": _r(np.nanmean(depth) * MM), "penetration_max_mm": _r(np.nanmax(depth) * MM)}


def _r(x, nd: int = 1):
    """x rounded for the results; None when missing or not finite."""
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


# ---------------------------------------------------------------------------------------------
# (a) The reference comparison

class Reference(fc.ReferenceTake):
    """The reference take (tests/framing_clips.py) and its own figures."""

    def own_figures(self) -> dict:
        hips = self.joints_m[:, 6:8].mean(1)
        feet = foot_figures(self.sole_h_m, self.ankles_xz_m, self.planted())
        return {"jitter_ms2": jitter(self.joints_m, hips, self.fps), "planted_steps_pct": feet["planted_steps_pct"],
                "penetration_mm": feet["penetration_mm"]}


def solved_figures(session: Path, ref: Reference) -> dict:
    """The avatar of a single-camera session against the reference (see the module docstring)."""
    if not (session / "avatar.glb").is_file():
        return {"error": "no avatar"}
    m = fc.read_motion(session)
    pred = m.pos_m[:, [m.index(j) for j in JOINTS_12]]
    n = min(len(pred), len(ref.joints_m))
    out = compare_to_reference(pred[:n], ref.joints_m[:n], ref.ok[:n])
    out["upright_error_deg"] = _r(np.nanmean(np.abs(fc.spine_tilt_deg(m)[:n] - ref.tilt_deg[:n])))
    out["jitter_ms2"] = jitter(pred, m.p("hips"), 1.0 / np.median(np.diff(m.t_s)))
    ankles = np.stack([m.p("leftFoot"), m.p("rightFoot")], axis=1)[..., [0, 2]]
    return out | foot_figures(fc.sole_heights_m(m), ankles, ref.planted())


def raw_figures(view: Path, ref: Reference) -> dict:
    """MediaPipe's world landmarks of one camera against the reference (no feet: no floor)."""
    tr = Tracks.load(view)
    pred = tr.pose_world_m[:, [POSE[n] for n in LANDMARKS_12]].astype(float)
    n = min(len(pred), len(ref.joints_m))
    out = compare_to_reference(pred[:n], ref.joints_m[:n], ref.ok[:n])
    out["jitter_ms2"] = jitter(pred, pred[:, 6:8].mean(1), tr.fps)
    return out


# ---------------------------------------------------------------------------------------------
# (b) Framings

def nobody_frames(name: str, n: int) -> np.ndarray:
    """(n,) bool: frames of a framing clip with nobody in view (see FRAMINGS)."""
    spec = FRAMINGS[name][2]
    if spec is None:
        return np.zeros(n, bool)
    if spec == "walk":
        source, _ = fc.clip_plan(name)
        out = np.zeros(len(source), bool)
        for a, b in fc.WALK_NOBODY_SOURCE_FRAMES:
            out |= (source >= a) & (source <= b)
        return out[:n]
    return spec(n)


def settled(nobody: np.ndarray, fps: float) -> np.ndarray:
    """The nobody frames (N,) bool that come at least EASE_S after the last frame with a person."""
    out = nobody.copy()
    ease = int(round(EASE_S * fps))
    for i in np.flatnonzero(~nobody):
        out[i + 1:i + 1 + ease] = False
    return out


def truth_tilt_deg(name: str, n: int, ref: Reference | None) -> np.ndarray | None:
    """(n,) the true torso tilt of a framing clip's person (degrees), None when not known."""
    kind = FRAMINGS[name][1]
    if kind in ("upright", "reference"):  # upright, or hips never in view: the avatar stays upright
        return np.zeros(n)
    if kind == "reference-hips" and ref is not None:
        t = np.full(n, np.nan)
        k = min(n, len(ref.tilt_deg))
        t[:k] = ref.tilt_deg[:k]
        return t
    return None


def framing_figures(name: str, session: Path, ref: Reference | None) -> dict:
    """The per-framing figures of one session (see the module docstring)."""
    run = json.loads((session / "run.json").read_text())
    out = {"exit_code": run["exit_code"], "wall_s": run["wall_s"]}
    if not (session / "avatar.glb").is_file():
        return out | {"solved_pct": 0.0, "solved_nobody_pct": 0.0, "nobody_motion_deg": 0.0}
    m, tr = fc.read_motion(session), fc.read_tracks(session)
    manifest = json.loads((session / "manifest.json").read_text())
    n = len(m.t_s)
    fps = 1.0 / float(np.median(np.diff(m.t_s)))
    flags = getattr(tr, "joint_from_view", None)
    solved = (flags.any(1) if flags is not None else tr.pose_valid)[:n]
    nobody = nobody_frames(name, n)
    steps_deg, _ = fc.key_steps(m)
    quiet = settled(nobody, fps)[1:]
    out |= {"framing": (manifest.get("framing") or {}).get("framing"), "frames": n,
            "solved_pct": _r(100.0 * solved.mean()),
            "solved_nobody_pct": _r(100.0 * solved[nobody].mean()) if nobody.any() else None,
            "nobody_motion_deg": _r(steps_deg[quiet].max(), 2) if quiet.any() else None}
    truth = truth_tilt_deg(name, n, ref)
    tilt = fc.spine_tilt_deg(m)
    person = ~nobody
    if truth is not None and person.any():
        err = np.abs(tilt - truth)[person]
        out |= {"upright_error_deg": _r(np.nanmean(err)), "upright_error_max_deg": _r(np.nanmax(err))}
    else:
        out |= {"spine_tilt_deg": _r(np.nanmean(tilt[person])) if person.any() else None}
    body = [j for j, jn in enumerate(m.names) if jn not in fc.EYE_JOINTS]
    ankles = np.stack([m.p("leftFoot"), m.p("rightFoot")], axis=1)[..., [0, 2]]
    planted = ref.planted() if ref is not None and FRAMINGS[name][1] in ("reference", "reference-hips") else None
    feet = foot_figures(fc.sole_heights_m(m), ankles, planted)
    return out | {"jitter_ms2": jitter(m.pos_m[:, body], m.p("hips"), fps), "foot_skate_cm": feet["foot_skate_cm"],
                  "skate_from": "reference" if planted is not None else "height"}


# ---------------------------------------------------------------------------------------------
# Running it all

def run_sessions(checkouts: dict[str, Path], ref_checkout: Path, work: Path, reuse: bool,
                 redo: tuple[str, ...] = ()) -> None:
    """Every session the benchmark measures: the reference, each camera alone, each framing clip;
    with reuse, those already in work/ are kept, apart from the labels in redo."""
    cams = [fc.source_path(f"p2s_{c}") for c in CAMS]
    print(f"reference: 4 cameras with {ref_checkout}", flush=True)
    run_process(ref_checkout, cams, work / "reference", reuse and "reference" not in redo,
                calib=fc.source_path("p2s_calib"))
    takes = {f"p2s_{c}": v for c, v in zip(CAMS, cams)} | {n: None for n in FRAMINGS}
    for label, checkout in checkouts.items():
        for name, video in takes.items():
            run = run_process(checkout, [video or fc.clip_path(name)], work / label / name,
                              reuse and label not in redo)
            print(f"{label:6s} {name:20s} exit {run['exit_code']}  {run['wall_s']:6.1f} s", flush=True)


def measure(labels: list[str], work: Path) -> dict:
    """Figures of every session under work/ (see the module docstring)."""
    ref = Reference(work / "reference")
    reference = {"reference_own": ref.own_figures()}
    for c in CAMS:
        reference[c] = {"raw": raw_figures(work / "reference" / "views" / f"{c}.npz", ref)}
        for label in labels:
            reference[c][label] = solved_figures(work / label / f"p2s_{c}", ref)
    framing = {n: {"what": FRAMINGS[n][0]} | {label: framing_figures(n, work / label / n, ref) for label in labels}
               for n in FRAMINGS}
    return {"reference": reference, "framing": framing}


def _cell(d: dict, key: str, labels=("before", "after")) -> str:
    """'before / after' of one figure (— where missing)."""
    vals = [d.get(lb, {}).get(key) for lb in labels if lb in d]
    return " / ".join("—" if v is None else str(v) for v in vals)


def markdown(results: dict) -> str:
    """The results as markdown tables."""
    meta, ref, fr = results["meta"], results["reference"], results["framing"]
    labels = [lb for lb in ("before", "after") if lb in meta["checkouts"]]
    head = " / ".join(labels)
    lines = [
        "# Body motion: single camera against a 4-camera reference, and every framing", "",
        f"Made by `python benchmarks/bench_body.py` ({meta['date']}, {meta['machine']}); "
        + ", ".join(f"{lb} = {meta['checkouts'][lb]}" for lb in labels)
        + f"; reference triangulated by {meta['reference_by']}. Definitions: the docstring of "
        "`benchmarks/bench_body.py`.", "",
        "## Pose2Sim demo, each camera alone against the 4-camera triangulation", "",
        f"| camera | PA-MPJPE mm: raw / {head} | bone direction deg: raw / {head} | swapped frames %: raw / {head}"
        f" | upright error deg: {head} | foot skate cm: {head} | largest slide cm: {head} | penetration mm: {head}"
        f" | jitter m/s²: raw / {head} |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in CAMS:
        d = ref[c]
        both = ("raw", *labels)
        lines.append(f"| {c} | {_cell(d, 'pa_mpjpe_mm', both)} | {_cell(d, 'bone_direction_deg', both)} | "
                     f"{_cell(d, 'swapped_frames_pct', both)} | {_cell(d, 'upright_error_deg', labels)} | "
                     f"{_cell(d, 'foot_skate_cm', labels)} | {_cell(d, 'slide_max_cm', labels)} | "
                     f"{_cell(d, 'penetration_mm', labels)} | "
                     f"{_cell(d, 'jitter_ms2', both)} |")
    own = ref["reference_own"]
    lines += ["", f"The reference's own jitter: {own['jitter_ms2']} m/s² (triangulated, not smoothed); its feet "
              f"are planted in {own['planted_steps_pct']} % of the frame steps (foot skate is the avatar's ankle "
              f"travel in those), its soles {own['penetration_mm']} mm below its floor on average.",
              "", f"## Framings ({head})", "",
              "| clip | what | framing found | exit code | solved % | solved with nobody in view % | upright error "
              "deg (mean) | (max) | foot skate cm | jitter m/s² | key motion with nobody, deg/frame |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n, d in fr.items():
        up = _cell(d, "upright_error_deg", labels)
        if set(up.split(" / ")) == {"—"}:
            up = "tilt " + _cell(d, "spine_tilt_deg", labels)
        lines.append(f"| {n} | {d['what']} | {_cell(d, 'framing', labels)} | {_cell(d, 'exit_code', labels)} | "
                     f"{_cell(d, 'solved_pct', labels)} | {_cell(d, 'solved_nobody_pct', labels)} | {up} | "
                     f"{_cell(d, 'upright_error_max_deg', labels)} | {_cell(d, 'foot_skate_cm', labels)} | "
                     f"{_cell(d, 'jitter_ms2', labels)} | {_cell(d, 'nobody_motion_deg', labels)} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Body motion: one camera against a 4-camera reference, and every "
                                             "framing, before and after (see the module docstring)")
    ap.add_argument("--before", type=Path, help="another checkout of the project to measure as 'before'")
    ap.add_argument("--after", type=Path, default=ROOT, help="the checkout measured as 'after' (default: this one)")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="folder of the sessions")
    ap.add_argument("--reuse", action="store_true", help="keep sessions already made in --work")
    ap.add_argument("--redo", nargs="+", default=[], choices=["before", "after", "reference"],
                    help="with --reuse: make these sessions again (e.g. --redo after once the tree changed)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder of body.json and body.md")
    a = ap.parse_args(argv)
    checkouts = {"before": a.before.resolve()} if a.before else {}
    checkouts["after"] = a.after.resolve()
    ref_checkout = checkouts.get("before", checkouts["after"])
    run_sessions(checkouts, ref_checkout, a.work, a.reuse, tuple(a.redo))
    results = {"meta": {"date": datetime.date.today().isoformat(),
                        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                        "checkouts": {lb: describe(p) for lb, p in checkouts.items()},
                        "reference_by": describe(ref_checkout), "work": str(a.work)}}
    results |= measure(list(checkouts), a.work)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "body.json").write_text(json.dumps(results, indent=1))
    (a.out / "body.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
