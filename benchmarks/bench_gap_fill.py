"""Gap filling variants against linear interpolation, on the protocol of bench_expression.py
(same held-out videos, same removed spans of 0.2 to 1 s, the VAE fine-tuned without any frame of
the gap zones). A study for issue 5, where the pipeline's latent fill loses to linear
interpolation: which part of it loses, and what would win.

    .venv/bin/python benchmarks/bench_gap_fill.py [--samples wolfgang carphone ...]

Variants (error on the removed frames against the removed raw scores, as a ratio to linear):
  linear            linear interpolation of the raw scores across the gap (the baseline).
  pchip             monotone cubic (PCHIP) through 3 raw frames on each side, no VAE.
  vae (pipeline)    latent_expression(): the smoothed latent track, linear across the gap, decoded.
  vae linear z_fit  the per-frame latent fits (not smoothed), linear across the gap, decoded.
  vae pchip z_fit   the same with a monotone cubic through 3 latents on each side.
  ... + residual    plus the decoder's residual at the gap's two ends (raw score minus decoded
                    fit), interpolated linearly across the gap, so the fill meets the raw scores.
Results: stdout, benchmarks/results/gap_fill.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.interpolate import PchipInterpolator

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from bench_expression import GAP_SPANS_S, SAMPLES, gap_phases, linear_fill, raw_of, remove_spans, tracked  # noqa: E402

from models.expression_latent import decode, fit_latent  # noqa: E402
from pipeline.core.tracks import gap_spans  # noqa: E402
from pipeline.face.latent_rig import _stack_cameras, latent_expression, load_model  # noqa: E402

SIDE = 3  # frames on each side of a gap for the cubic


def interpolate(t: np.ndarray, x: np.ndarray, observed: np.ndarray, kind: str) -> np.ndarray:
    """x (N, D) with its unobserved interior spans filled by `kind` ("linear" or "pchip")."""
    x = x.copy()
    for s, e in gap_spans(observed):
        if s == 0 or e >= len(t):
            continue
        if kind == "linear":
            w = ((t[s:e] - t[s - 1]) / (t[e] - t[s - 1]))[:, None]
            x[s:e] = (1 - w) * x[s - 1] + w * x[e]
        else:
            idx = np.r_[max(s - SIDE, 0):s, e:min(e + SIDE, len(t))]
            idx = idx[observed[idx]]
            x[s:e] = PchipInterpolator(t[idx], x[idx], axis=0)(t[s:e])
    return x


def variants(model, y: np.ndarray, obs: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    scores = np.where(obs[:, None], y, np.nan)
    out = {"linear": linear_fill(y, obs, t),
           "pchip": np.clip(interpolate(t, np.where(obs[:, None], y, 0.0), obs, "pchip"), 0, 1),
           "vae (pipeline)": latent_expression(model, [scores], t).weights}
    Y = _stack_cameras([scores], len(t))
    z_fit = np.nan_to_num(fit_latent(model, Y))
    residual = np.where(obs[:, None], y - decode(model, z_fit), 0.0)
    residual = interpolate(t, residual, obs, "linear")
    for kind in ("linear", "pchip"):
        dec = decode(model, interpolate(t, z_fit, obs, kind))
        out[f"vae {kind} z_fit"] = dec
        out[f"vae {kind} z_fit + residual"] = np.clip(dec + residual, 0, 1)
    return out


def run(samples: list[str]) -> dict:
    torch.set_num_threads(1)
    base = load_model()
    sums: dict = {}
    for name in samples:
        tr = tracked(name)
        y, ok = raw_of(tr)
        t, fps = tr.t_s, tr.fps
        for zones, model in gap_phases(t, ok, y, base):
            for span in GAP_SPANS_S:
                obs, gap, _ = remove_spans(t, ok, zones, span, fps)
                if not gap.any():
                    continue
                for method, w in variants(model, y, obs, t).items():
                    acc = sums.setdefault((span, method), [0.0, 0])
                    acc[0] += float(np.abs(w[gap] - y[gap]).sum())
                    acc[1] += int(gap.sum()) * y.shape[1]
        print(f"{name} done", flush=True)
    return sums


def markdown(sums: dict, samples: list[str]) -> str:
    methods = list(dict.fromkeys(m for _, m in sums))
    lines = ["| span s | linear (x 1000) | " + " | ".join(m for m in methods if m != "linear") + " |",
             "| --- | --- | " + " | ".join("---" for m in methods if m != "linear") + " |"]
    for span in GAP_SPANS_S:
        lin = sums[(span, "linear")][0] / sums[(span, "linear")][1]
        ratios = [sums[(span, m)][0] / sums[(span, m)][1] / lin for m in methods if m != "linear"]
        lines.append(f"| {span} | {1000 * lin:.2f} | " + " | ".join(f"{r:.3f}" for r in ratios) + " |")
    return (f"# Gap filling variants (error / linear interpolation's; below 1 beats it)\n\n"
            f"`.venv/bin/python benchmarks/bench_gap_fill.py`; videos: {', '.join(samples)}; "
            f"pooled over all removed frames and the 51 weights.\n\n" + "\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", nargs="+", default=SAMPLES)
    a = ap.parse_args(argv)
    md = markdown(run(a.samples), a.samples)
    out = ROOT / "results" / "gap_fill.md"
    out.write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
