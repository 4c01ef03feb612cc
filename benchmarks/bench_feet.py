"""Benchmark of the planted feet (issue 12, pipeline.body.feet): the body solve with and without its
last step, planting the feet, on the same tracks.

    .venv/bin/python benchmarks/bench_feet.py --multi SESSION [--takes SESSION ...]

--multi: a 4-camera session of Pose2Sim's demo (`python -m pipeline.process cam01.mp4 .. cam04.mp4
--calib Calib.qca.txt --out SESSION`, the samples p2s_cam01..04 and p2s_calib): its tracks.npz (the
triangulation) is the reference and its views/camNN.npz (each camera's own tracks) are solved alone.
--takes: single-camera sessions (`python -m pipeline.process VIDEO --out SESSION`; e.g. Sports2D's
demo and p2s_cam01), solved from their tracks.npz. Tracks get short gaps filled as the session does.
"Before" is `solve_body_unplanted` (the solve without its last step); "after" is that planted.

Figures (avatar: glTF world, metres, floor Y = 0; the reference's level pose frame, y down):
  * PA-MPJPE (mm): per frame the 12 joints (shoulders, elbows, wrists, hips, knees, ankles) aligned
    to the reference by a similarity transform, mean distance over joints (triangulated from >= 2
    cameras) and frames: the protocol of the issue's baseline.
  * foot skate (cm): per contact, the largest horizontal distance of the foot's ball (toes joint)
    from where it was at the contact's first frame; mean and max over contacts. "ref" contacts are
    the reference's (toe landmark within REF_CONTACT_M of its floor, slower than REF_STILL_MPS,
    runs of at least REF_MIN_FRAMES); "det" contacts are the planting's own (foot_contacts of the
    solve without it), the same frames for before and after.
  * ground penetration (mm): the lowest sole point (heel, under the ball, toe tip) below the floor.
  * planted sole (mm): height of the lower of heel and toe tip in the "det" contact frames, median
    and 90th percentile (0 = the planted foot touches the floor).
  * jitter (m/s^2): mean |second difference| x fps^2 of the 12 joints relative to the hips' centre.
  * upright error (deg): |spine tilt - the reference torso's tilt|, mean over frames.
Results: stdout, benchmarks/results/feet.md and feet.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.signal import savgol_filter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.body import solve  # noqa: E402
from pipeline.body.feet import sole_points  # noqa: E402
from pipeline.body.foot_contacts import clean_runs, foot_contacts, frames_per_second, runs_of  # noqa: E402
from pipeline.body.kinematics import forward_kinematics  # noqa: E402
from pipeline.body.skeleton import build_skeleton  # noqa: E402
from pipeline.core.tracks import POSE, Tracks, fill_short_gaps  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
LANDMARKS_12 = ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
JOINTS_12 = ("leftUpperArm", "rightUpperArm", "leftLowerArm", "rightLowerArm", "leftHand", "rightHand",
             "leftUpperLeg", "rightUpperLeg", "leftLowerLeg", "rightLowerLeg", "leftFoot", "rightFoot")
REF_CONTACT_M = 0.04    # reference toe within this of its floor (the 90th percentile of its height) ...
REF_STILL_MPS = 0.3     # ... and slower than this horizontally (13-frame cubic Savitzky-Golay, 60 fps)
REF_MIN_FRAMES = 9      # runs of at least this many frames (gaps up to 6 frames closed)
REF_SMOOTH_FRAMES = 13
FEET = ("left", "right")


def solve_both(tracks: Tracks):
    """(skeleton, motion before its feet are planted, motion after, the det contacts (N, 2) bool)."""
    skel = build_skeleton(tracks)
    unplanted = solve.solve_body_unplanted(skel, tracks)
    before = unplanted.motion
    return skel, before, unplanted.planted(skel), foot_contacts(skel, before, unplanted.foot_speed_mps)


def soles(skel, motion):
    """FK joints (N, J, 3) and per foot (heel sole point, ball, toe tip sole point, the sole point
    under the ball), each (N, 3)."""
    pos, glob = forward_kinematics(skel.parents, skel.rest_local_m, motion.local_rotations,
                                   motion.root_translation_m)
    soles = [sole_points(skel, side, pos, glob) for side in FEET]
    return pos, [(s["heel"], s["ball"], s["tip"], s["under_ball"]) for s in soles]


def skate_cm(feet, contact: np.ndarray) -> tuple[float, float]:
    """Mean and max over contacts of the ball's largest distance from its first-frame place (cm)."""
    d = [np.linalg.norm(feet[k][1][a:b, [0, 2]] - feet[k][1][a, [0, 2]], axis=1).max()
         for k in range(2) for a, b in runs_of(contact[:, k])]
    return (100 * float(np.mean(d)), 100 * float(np.max(d))) if d else (float("nan"), float("nan"))


def pa_mpjpe_mm(pred: np.ndarray, ref: np.ndarray, ok: np.ndarray) -> float:
    errs = []
    for i in range(min(len(pred), len(ref))):
        m = ok[i] & np.isfinite(pred[i]).all(1)
        if m.sum() < 6:
            continue
        x, y = pred[i][m], ref[i][m]
        mx, my = x.mean(0), y.mean(0)
        u, s, vt = np.linalg.svd((x - mx).T @ (y - my))
        d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
        scale = (s * np.diag(d)).sum() / ((x - mx) ** 2).sum()
        errs.append(np.linalg.norm(scale * (x - mx) @ (u @ d @ vt) + my - y, axis=1).mean())
    return 1000 * float(np.mean(errs))


def figures(skel, motion, det: np.ndarray, fps: float, ref: dict | None) -> dict:
    """The figures of one motion (see the module docstring)."""
    pos, feet = soles(skel, motion)
    joints = pos[:, [skel.index(j) for j in JOINTS_12]]
    hips = pos[:, [skel.index("leftUpperLeg"), skel.index("rightUpperLeg")]].mean(1, keepdims=True)
    acc = np.linalg.norm(np.diff(joints - hips, 2, axis=0), axis=-1).mean() * fps ** 2
    low = min(min(h[:, 1].min(), t[:, 1].min(), u[:, 1].min()) for h, _, t, u in feet)
    touch = np.concatenate([np.minimum(feet[k][0][:, 1], feet[k][2][:, 1])[det[:, k]] for k in range(2)])
    out = {"skate_det_cm": skate_cm(feet, det), "penetration_mm": round(max(0.0, -1000 * low), 2),
           "planted_sole_mm": (1000 * float(np.median(touch)), 1000 * float(np.percentile(touch, 90)))
           if len(touch) else None, "jitter_mps2": float(acc)}
    if ref is not None:
        spine = pos[:, skel.index("neck")] - pos[:, skel.index("hips")]
        tilt = np.degrees(np.arccos(spine[:, 1] / np.linalg.norm(spine, axis=1)))
        n = min(len(tilt), len(ref["tilt_deg"]))
        out.update(pa_mpjpe_mm=pa_mpjpe_mm(joints, ref["joints"], ref["ok"]),
                   skate_ref_cm=skate_cm(feet, ref["contact"][:len(motion.t_s)]),
                   upright_err_deg=float(np.abs(tilt[:n] - ref["tilt_deg"][:n]).mean()))
    return out


def reference(session: Path) -> dict:
    """The 4-camera triangulation: 12 joints (N, 12, 3) and their ok flags, contacts, torso tilt."""
    tr = Tracks.load(session / "tracks.npz")
    world = tr.pose_world_m.astype(float) + tr.pose_root_m.astype(float)[:, None]
    contact = np.zeros((tr.n_frames, 2), bool)
    for k, side in enumerate(FEET):
        toe = world[:, POSE[f"{side}_foot_index"]]
        y = savgol_filter(toe[:, 1], REF_SMOOTH_FRAMES, 3)
        v = savgol_filter(toe[:, [0, 2]], REF_SMOOTH_FRAMES, 3, deriv=1, axis=0) * tr.fps
        low = (np.percentile(y, 90) - y) < REF_CONTACT_M  # y down: the floor is the largest y
        contact[:, k] = clean_runs(low & (np.linalg.norm(v, axis=1) < REF_STILL_MPS), REF_MIN_FRAMES, 6)
    torso = (world[:, [POSE["left_shoulder"], POSE["right_shoulder"]]].mean(1)
             - world[:, [POSE["left_hip"], POSE["right_hip"]]].mean(1))
    return {"joints": world[:, [POSE[n] for n in LANDMARKS_12]],
            "ok": tr.pose_n_views[:, [POSE[n] for n in LANDMARKS_12]] >= 2, "contact": contact,
            "tilt_deg": np.degrees(np.arccos(-torso[:, 1] / np.linalg.norm(torso, axis=1)))}


def run_take(name: str, tracks_path: Path, ref: dict | None) -> dict:
    tracks = fill_short_gaps(Tracks.load(tracks_path))
    skel, before, after, det = solve_both(tracks)
    fps = frames_per_second(before.t_s)
    row = {"frames": tracks.n_frames, "contacts": [runs_of(det[:, k]) for k in range(2)],
           "before": figures(skel, before, det, fps, ref), "after": figures(skel, after, det, fps, ref)}
    print(name, json.dumps(row, default=lambda x: round(float(x), 2)))
    return row


def markdown(rows: dict) -> str:
    def f(x, nd=1):
        if x is None:
            return "-"
        if isinstance(x, (tuple, list)):
            return " / ".join(f"{v:.{nd}f}" for v in x)
        return f"{x:.{nd}f}"
    keys = [("pa_mpjpe_mm", "PA-MPJPE mm"), ("skate_ref_cm", "skate on ref contacts, cm (mean / max)"),
            ("skate_det_cm", "skate on detected contacts, cm (mean / max)"), ("penetration_mm", "penetration mm"),
            ("planted_sole_mm", "planted sole mm (median / p90)"), ("jitter_mps2", "jitter m/s^2"),
            ("upright_err_deg", "upright error deg")]
    lines = ["| take | " + " | ".join(label for _, label in keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, row in rows.items():
        cells = [f"{f(row['before'].get(k))} -> {f(row['after'].get(k))}" if k in row["before"] else "-"
                 for k, _ in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--multi", type=Path, help="4-camera session of Pose2Sim's demo (reference + views/)")
    ap.add_argument("--takes", type=Path, nargs="*", default=[], help="single-camera sessions")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    rows = {}
    if args.multi:
        ref = reference(args.multi)
        for view in sorted((args.multi / "views").glob("cam*.npz")):
            rows[f"p2s {view.stem} (alone)"] = run_take(view.stem, view, ref)
    for take in args.takes:
        rows[take.name] = run_take(take.name, take / "tracks.npz", None)
    md = "Planted feet (pipeline.body.feet), before -> after (benchmarks/bench_feet.py)\n\n" + markdown(rows)
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "feet.md").write_text(md)
    (args.out / "feet.json").write_text(json.dumps(rows, indent=1, default=lambda x: round(float(x), 3)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
