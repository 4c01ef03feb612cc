"""Texture completion measured against the face's own pixels: texels that were seen are hidden by
realistic occlusion masks, each fill completes them, and the fill is scored on them.

In:  FaceTexture items (pipeline.face.texture_dataset: (R, R, 3) uint8 RGB over the canonical UV
     layout with the seen mask), masks of pipeline.face.texture_masks, a GAN generator.
Out: one record per (face, mask) with each method's L1 (RGB 0-255, lower is better) and SSIM
     (higher is better) on the hidden texels. Used by benchmarks/bench_texture.py and the tests.

Methods, all given the same partial texture (ground truth minus the mask, plus what the face's
own views never saw): GAN (models.texture_gan.complete, no per-subject fine-tuning), Telea
(cv2.inpaint) and mirror (the texel's mirror about u = 0.5 where seen, Telea elsewhere).
"""
from __future__ import annotations

import time

import cv2
import numpy as np

from models.texture_fill import mirror_fill, telea_fill
from models.texture_gan import complete
from pipeline.face.texture_masks import KINDS, random_mask
from pipeline.face.texture_raster import face_region

METHODS = ("GAN", "Telea", "mirror")
MIN_HIDDEN_TEXELS = 50       # a mask hiding fewer seen face texels than this is no test
SSIM_C1, SSIM_C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2  # SSIM's constants for 0-255 values
SSIM_WINDOW, SSIM_SIGMA = (11, 11), 1.5


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(R, R) SSIM map of two (R, R, 3) images in 0-255, averaged over channels."""
    a, b = a.astype(np.float64), b.astype(np.float64)

    def blur(x):
        return cv2.GaussianBlur(x, SSIM_WINDOW, SSIM_SIGMA)
    mu_a, mu_b = blur(a), blur(b)
    va = blur(a * a) - mu_a ** 2
    vb = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)) / ((mu_a ** 2 + mu_b ** 2 + SSIM_C1) * (va + vb + SSIM_C2))
    return s.mean(-1)


def scores(pred: np.ndarray, gt: np.ndarray, known: np.ndarray, hidden: np.ndarray) -> tuple[float, float]:
    """(L1, SSIM) of `pred` on the hidden texels; the ground truth's never-seen texels take the
    prediction's own values so that they do not count."""
    l1 = float(np.abs(pred.astype(np.float64) - gt)[hidden].mean())
    ref = np.where(known[..., None], gt, pred)
    return l1, float(ssim_map(pred, ref)[hidden].mean())


def mask_cases(faces, size: int, masks_per_kind: int, seed: int) -> list:
    """[(face, kind, mask (R, R) bool)]: masks_per_kind masks of every kind per face (fixed seed),
    those hiding at least MIN_HIDDEN_TEXELS seen face texels."""
    region = face_region(size)
    rng = np.random.default_rng(seed)
    out = []
    for f in faces:
        for kind in KINDS:
            for _ in range(masks_per_kind):
                m = random_mask(rng, size, kind)
                if (f.mask & m & region).sum() >= MIN_HIDDEN_TEXELS:
                    out.append((f, kind, m))
    return out


def compare_fills(cases: list, generator, timings: dict | None = None, keep=None) -> list[dict]:
    """One record per case: face, person, kind, hidden texels, and each method's L1 and SSIM.
    timings: seconds per method are added to it; keep(face, kind, partial, preds, hidden) is
    called on every case (for pictures)."""
    rows = []
    for f, kind, occ in cases:
        gt, known = f.texture, f.mask
        hidden = known & occ & face_region(len(gt))
        seen = known & ~occ
        partial = gt.copy()
        partial[~seen] = 0
        preds = {}
        for meth, fn in (("GAN", lambda: complete(partial, seen, generator, feather=0.0)),
                         ("Telea", lambda: telea_fill(partial, seen)),
                         ("mirror", lambda: mirror_fill(partial, seen))):
            t0 = time.perf_counter()
            preds[meth] = fn()
            if timings is not None:
                timings[meth] = timings.get(meth, 0.0) + time.perf_counter() - t0
        rec = {"face": f.name, "person": f.person, "kind": kind, "hidden_texels": int(hidden.sum()),
               "hidden_share_of_face": round(float(hidden.sum() / face_region(len(gt)).sum()), 4),
               "mirror_seen_share": round(float((seen[:, ::-1] & hidden).sum() / hidden.sum()), 4)}
        for meth, p in preds.items():
            l1, s = scores(p, gt, known, hidden)
            rec[f"{meth}_L1"], rec[f"{meth}_SSIM"] = round(l1, 3), round(s, 4)
        rows.append(rec)
        if keep is not None:
            keep(f, kind, partial, preds, hidden)
    return rows


def summarise(rows: list[dict], groups=("all",) + tuple(KINDS)) -> dict:
    """Per group ("all" or a mask kind): cases, each method's mean L1 and SSIM, and the share of
    cases where the GAN has the lowest L1."""
    summary = {}
    for group in groups:
        sel = [r for r in rows if group == "all" or r["kind"] == group]
        if not sel:
            continue
        summary[group] = {"cases": len(sel)}
        for meth in METHODS:
            summary[group][f"{meth}_L1"] = round(float(np.mean([r[f"{meth}_L1"] for r in sel])), 3)
            summary[group][f"{meth}_SSIM"] = round(float(np.mean([r[f"{meth}_SSIM"] for r in sel])), 4)
        summary[group]["GAN_best_L1_share"] = round(float(np.mean(
            [r["GAN_L1"] <= min(r["Telea_L1"], r["mirror_L1"]) for r in sel])), 3)
    return summary
