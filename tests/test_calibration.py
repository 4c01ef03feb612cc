"""Camera calibration: file formats, board detection, intrinsics, extrinsics, floor, diagnostics.

Real data: Pose2Sim's Demo_SinglePerson (Qualisys calibration of 4 cameras and a checkerboard
photographed by each) and OpenCV's stereo chessboards (left01..14 / right01..14), fetched from the
package registries (pipeline.core.samples). Synthetic: a ChArUco board drawn, pixel by pixel, into four
cameras of known poses and lenses (tests/synthetic_rig.py). Run with -s to see the figures.
"""
from __future__ import annotations

import copy
import json

import cv2
import numpy as np
import pytest
import tomllib
from synthetic_rig import BoardRenderer, board_poses, rig

from pipeline.board import main as board_main
from pipeline.calibrate import main as calibrate_main
from pipeline.core import samples
from pipeline.core.errors import InputError
from pipeline.multicam.calibration import Calibration, CalibrationError, Camera, load_calibration, load_toml, save_toml
from pipeline.multicam.calibration_board import BoardSpec, Detection, detect
from pipeline.multicam.calibration_solver import calibrate_intrinsics, calibrate_rig


def _angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    return float(np.degrees(np.linalg.norm(cv2.Rodrigues(Ra @ Rb.T)[0])))


@pytest.fixture(scope="module")
def qca() -> Calibration:
    return load_calibration(samples.fetch("p2s_calib"))


# ---------------------------------------------------------------------------------------------
# Files


def test_qualisys_file_read_as_pose2sim_converts_it(qca):
    assert qca.names == ["cam01", "cam02", "cam03", "cam04"]
    assert qca.up.tolist() == [0.0, 0.0, 1.0]
    for cam in qca.cameras:
        assert cam.size == (1088, 1920)
        assert np.allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-9) and np.linalg.det(cam.R) > 0
    # Pose2Sim's calib_qca_fun, written out: K in 1/64 pixels, R = transform rows, the camera
    # centre = transform x y z in mm, then half a turn about the camera's X.
    c1 = qca.cameras[0]
    assert np.isclose(c1.K[0, 0], 107599.671875 / 64) and np.isclose(c1.K[1, 2], 60680.792969 / 64)
    assert np.allclose(c1.centre_m, [1.4602323709212087, -1.9091590482454608, 1.8965058524092062])
    M = np.array([[0.5536380477336265, 0.8046719867383512, 0.2144479094331626],
                  [-0.4345300743838753, 0.05946489349975602, 0.8986921279821063],
                  [0.7104002579937896, -0.5907342212870501, 0.3825762057979294]])
    assert np.allclose(c1.R, np.diag([1, -1, -1]) @ M, atol=1e-8)
    # Distortion as in the file (see pipeline/multicam/calibration.py on Pose2Sim's division by 64).
    assert np.allclose(c1.dist[:4], [-0.046183, 0.139983, 0.000608, 0.00069])
    # Every camera looks at the treadmill in the middle of the room, above the floor.
    for cam in qca.cameras:
        uv = cam.project(np.array([0.0, 0.0, 0.9]))
        assert 0 < uv[0] < 1088 and 0 < uv[1] < 1920
        assert 1.5 < cam.centre_m[2] < 2.2


def test_toml_round_trip_in_the_anipose_pose2sim_layout(qca, tmp_path):
    path = tmp_path / "calib.toml"
    qca = copy.deepcopy(qca)
    qca.cameras[1].error_px = 0.44
    save_toml(qca, path)
    raw = tomllib.loads(path.read_text())
    assert list(raw) == ["cam_1", "cam_2", "cam_3", "cam_4", "metadata"]
    cam = raw["cam_1"]
    assert set(cam) == {"name", "size", "matrix", "distortions", "rotation", "translation", "fisheye"}
    assert cam["name"] == "cam01" and cam["size"] == [1088.0, 1920.0] and cam["fisheye"] is False
    assert np.asarray(cam["matrix"]).shape == (3, 3) and len(cam["rotation"]) == 3
    assert raw["metadata"]["dhcap_up"] == [0.0, 0.0, 1.0]
    back = load_toml(path)
    assert back.names == qca.names and np.allclose(back.up, qca.up)
    for a, b in zip(back.cameras, qca.cameras):
        assert np.allclose(a.K, b.K) and np.allclose(a.dist, b.dist)
        assert np.allclose(a.R, b.R, atol=1e-12) and np.allclose(a.t, b.t)
    assert np.allclose([c.error_px for c in back.cameras], [c.error_px for c in qca.cameras])


def test_anipose_file_without_our_metadata_has_unknown_up(tmp_path):
    # aniposelib's CameraGroup.dump: [cam_0].. with the first camera at the origin, [metadata].
    text = """[cam_0]
name = "A"
size = [ 1280, 720,]
matrix = [ [ 1000.0, 0.0, 640.0,], [ 0.0, 1000.0, 360.0,], [ 0.0, 0.0, 1.0,],]
distortions = [ -0.1, 0.01, 0.0, 0.0, 0.0,]
rotation = [ 0.0, 0.0, 0.0,]
translation = [ 0.0, 0.0, 0.0,]

[cam_1]
name = "B"
size = [ 1280, 720,]
matrix = [ [ 1000.0, 0.0, 640.0,], [ 0.0, 1000.0, 360.0,], [ 0.0, 0.0, 1.0,],]
distortions = [ -0.1, 0.01, 0.0, 0.0, 0.0,]
rotation = [ 0.0, 0.5, 0.0,]
translation = [ -1.0, 0.0, 0.2,]

[metadata]
adjusted = true
error = 0.4
"""
    p = tmp_path / "anipose.toml"
    p.write_text(text)
    cal = load_calibration(p)
    assert cal.names == ["A", "B"] and cal.up is None and len(cal.cameras[0].dist) == 5


@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    ("[cam_1]\nname = 'x'\nsize = [10, 10]\n", "has no 'matrix'"),
    ("[cam_1\nname=", "not a valid TOML"),
    ("[metadata]\nerror = 0\n", "no cameras"),
    ("[cam_1]\nname='x'\nsize=[10,10]\nmatrix=[[1,0,0],[0,1,0]]\nrotation=[0,0,0]\ntranslation=[0,0,0]\n",
     "malformed"),
    ("<calibration><cameras><camera model='none' serial='c1'></camera></cameras></calibration>", "malformed"),
    ("<calibration", "not a valid Qualisys"),
])
def test_corrupt_calibration_files_give_one_line_errors(tmp_path, content, message):
    p = tmp_path / ("bad.qca.txt" if content.startswith("<") else "bad.toml")
    p.write_text(content)
    with pytest.raises(InputError) as e:
        load_calibration(p)
    assert message in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(InputError, match="no such calibration file"):
        load_calibration(tmp_path / "missing.toml")


# ---------------------------------------------------------------------------------------------
# Boards


def test_board_cli_writes_a_detectable_picture_and_its_description(tmp_path):
    assert board_main(["--out", str(tmp_path / "b.png")]) == 0
    for ext in ("png", "pdf", "json"):
        assert (tmp_path / f"b.{ext}").stat().st_size > 0
    board = BoardSpec.parse(str(tmp_path / "b.json"))
    assert board == BoardSpec.parse("charuco:7x5:32mm:24mm:DICT_5X5_100")
    d = detect(board, cv2.imread(str(tmp_path / "b.png")))
    assert d is not None and len(d) == board.n_corners
    # A square spans 32 mm at 300 dpi.
    step = np.linalg.norm(d.corners_px[1] - d.corners_px[0])
    assert abs(step - 32 / 25.4 * 300) < 1.0
    assert board_main(["--board", "charuco:7x5:32mm:40mm", "--out", str(tmp_path / "x.png")]) == 3


def test_checkerboard_detections_agree_on_corner_zero():
    """A 9x6 checkerboard turned half a turn is found with corner 0 on the same physical corner."""
    board = BoardSpec.parse("checkerboard:9x6:25mm")
    img = board.image(40)
    img = cv2.copyMakeBorder(img, 60, 60, 60, 60, cv2.BORDER_CONSTANT, value=255)
    d0 = detect(board, img)
    d1 = detect(board, cv2.rotate(img, cv2.ROTATE_180))
    h, w = img.shape
    flipped = np.c_[w - 1 - d1.corners_px[:, 0], h - 1 - d1.corners_px[:, 1]]  # back in img's pixels
    assert np.abs(flipped - d0.corners_px).max() < 0.5


# ---------------------------------------------------------------------------------------------
# Intrinsics on real photographs


def test_pose2sim_checkerboard_intrinsics_close_to_qualisys(qca):
    cfg = tomllib.loads(samples.fetch("p2s_config").read_text())["calibration"]["calculate"]["intrinsics"]
    board = BoardSpec("checkerboard", *cfg["intrinsics_corners_nb"], cfg["intrinsics_square_size"] / 1000)
    files = samples.fetch_set("p2s_checkerboards")
    print()
    for q in qca.cameras:
        views = [detect(board, cv2.imread(str(f))) for f in files if f.parent.name == f"int_{q.name}_img"]
        cam, used = calibrate_intrinsics(board, views, q.size, q.name)
        df = (cam.K[0, 0] - q.K[0, 0]) / q.K[0, 0]
        dc = cam.K[:2, 2] - q.K[:2, 2]
        print(f"{q.name}: {used} views, RMS {cam.error_px:.3f} px, fx {cam.K[0, 0]:.1f} vs Qualisys "
              f"{q.K[0, 0]:.1f} ({100 * df:+.2f} %), principal point {cam.K[0, 2]:.1f},{cam.K[1, 2]:.1f} vs "
              f"{q.K[0, 2]:.1f},{q.K[1, 2]:.1f}, k1 {cam.dist[0]:+.4f} vs {q.dist[0]:+.4f}")
        assert used >= 5 and cam.error_px < 0.5
        assert abs(df) < 0.01                               # focal length within 1 %
        assert abs(cam.K[0, 0] - cam.K[1, 1]) / cam.K[0, 0] < 0.005
        assert np.all(np.abs(dc) < 0.05 * q.size[0])        # principal point within 5 % of the width
        assert abs(cam.dist[0] - q.dist[0]) < 0.015         # k1 as Qualisys found it (not /64)


def test_opencv_stereo_chessboards_below_half_a_pixel():
    files = samples.fetch_set("opencv_stereo")
    board = BoardSpec.parse("checkerboard:9x6:25mm")  # the square size only scales the baseline
    left = [detect(board, cv2.imread(str(f))) for f in files if f.name.startswith("left")]
    right = [detect(board, cv2.imread(str(f))) for f in files if f.name.startswith("right")]
    cal, rep = calibrate_rig(board, [left, right], [(640, 480)] * 2, ["left", "right"], floor_frame=None)
    print(f"\nstereo: RMS {rep.rms_px:.3f} px (left {rep.cameras[0].rms_px:.3f}, right "
          f"{rep.cameras[1].rms_px:.3f}), {rep.frames_used} pairs, outliers "
          f"{[c.outliers for c in rep.cameras]}, baseline {cal.cameras[1].centre_m.round(4)} m")
    assert rep.frames_used == 13 and rep.rms_px < 0.5
    assert all(c.rms_px < 0.5 and c.outliers < 0.02 * c.observations for c in rep.cameras)
    b = cal.cameras[1].centre_m
    assert b[0] > 0 and abs(b[1]) < 0.1 * b[0] and abs(b[2]) < 0.1 * b[0]  # side by side, right of left
    assert _angle_deg(cal.cameras[1].R, np.eye(3)) < 2.0                       # nearly parallel
    # Against the board itself, with OpenCV's own undistortion and triangulation: the corners of
    # each pair, triangulated with the solved rig, lie the board's 25 mm apart. Measured
    # 2026-12-05: 0.09 mm median, 0.41 mm 95th percentile error (without the lenses' distortion,
    # 0.78 and 7.0 mm).
    err_mm = _board_spacing_errors_mm(board, cal, left, right)
    print(f"corner spacing: {np.median(err_mm):.2f} mm median, {np.percentile(err_mm, 95):.2f} mm p95")
    assert np.median(err_mm) < BOARD_SPACING_MEDIAN_MM and np.percentile(err_mm, 95) < BOARD_SPACING_P95_MM


BOARD_SPACING_MEDIAN_MM, BOARD_SPACING_P95_MM = 0.2, 1.0


def _board_spacing_errors_mm(board: BoardSpec, cal, left: list, right: list) -> np.ndarray:
    """|distance - square size| of neighbouring corners triangulated from both views (cv2), mm."""
    obj = board.object_points()
    rows, cols = board.rows, board.cols
    errs = []
    for views in zip(left, right):
        if any(d is None or len(d) != len(obj) for d in views):
            continue
        P, U = [], []
        for c, d in zip(cal.cameras, views):
            px = d.corners_px[np.argsort(d.ids)].reshape(-1, 1, 2)
            U.append(cv2.undistortPoints(px, c.K, c.dist, P=c.K).reshape(-1, 2).T)
            P.append(c.K @ np.c_[c.R, c.t])
        X = cv2.triangulatePoints(P[0], P[1], U[0], U[1])
        grid = (X[:3] / X[3]).T.reshape(rows, cols, 3)
        steps = np.r_[np.linalg.norm(np.diff(grid, axis=1), axis=-1).ravel(),
                      np.linalg.norm(np.diff(grid, axis=0), axis=-1).ravel()]
        errs.append(np.abs(steps - board.square_m))
    return 1e3 * np.concatenate(errs)


# ---------------------------------------------------------------------------------------------
# Synthetic ChArUco rig with known cameras


@pytest.fixture(scope="module")
def synthetic():
    board = BoardSpec.parse("charuco:7x5:100mm:75mm:DICT_5X5_100")
    truth = rig(4)
    rend = BoardRenderer(board, 60)
    poses = board_poses(36, board, truth)
    rng = np.random.default_rng(3)
    dets = [[detect(board, rend.render(cam, R, t, rng)) for R, t in poses] for cam in truth.cameras]
    return board, truth, dets


def test_synthetic_charuco_views_recover_the_cameras(synthetic):
    board, truth, dets = synthetic
    cal, rep = calibrate_rig(board, dets, [c.size for c in truth.cameras], truth.names)
    print(f"\nsynthetic rig: RMS {rep.rms_px:.3f} px over {rep.frames_used} frames, floor frame "
          f"{rep.floor_frame}\n{rep.covisibility_table()}")
    assert rep.floor_frame == 0 and cal.floor and not rep.warnings
    for a, b in zip(cal.cameras, truth.cameras):
        dpos = np.linalg.norm(a.centre_m - b.centre_m)
        drot = _angle_deg(a.R, b.R)
        df = abs(a.K[0, 0] - b.K[0, 0]) / b.K[0, 0]
        dpp = np.abs(a.K[:2, 2] - b.K[:2, 2]).max()
        print(f"{a.name}: position {1000 * dpos:.1f} mm, rotation {drot:.3f} deg, focal "
              f"{100 * df:.2f} %, principal point {dpp:.1f} px, RMS {a.error_px:.3f} px")
        assert dpos < 0.03 and drot < 1.0 and df < 0.015 and dpp < 15 and a.error_px < 0.6
        assert abs(a.centre_m[2] - b.centre_m[2]) < 0.03  # height above the floor


def test_calibrate_cli_on_synthetic_videos(synthetic, tmp_path):
    """The CLI on three videos of one take (one board pose every 0.25 s): TOML + report written,
    floor and scale right."""
    board, truth, _ = synthetic
    rend = BoardRenderer(board, 60)
    rng = np.random.default_rng(5)
    poses = board_poses(24, board, truth, seed=7)
    for cam in truth.cameras[:3]:
        out = cv2.VideoWriter(str(tmp_path / f"{cam.name}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 8.0, cam.size)
        for R, t in poses:
            img = cv2.cvtColor(rend.render(cam, R, t, rng), cv2.COLOR_GRAY2BGR)
            out.write(img)
            out.write(img)  # two frames a pose: the CLI samples every 0.25 s
        out.release()
    out = tmp_path / "calib.toml"
    rc = calibrate_main([str(tmp_path / f"{c.name}.avi") for c in truth.cameras[:3]]
              + ["--board", board.text(), "--out", str(out), "--quiet"])
    assert rc == 0
    cal = load_calibration(out)
    assert cal.names == ["cam1", "cam2", "cam3"] and cal.floor and cal.up.tolist() == [0, 0, 1]
    for a, b in zip(cal.cameras, truth.cameras):
        assert np.linalg.norm(a.centre_m - b.centre_m) < 0.05
    rep = json.loads((tmp_path / "calib.report.json").read_text())
    assert rep["frames"] == 24 and rep["floor_frame"] == 0 and len(rep["covisibility"]) == 3
    assert rep["rms_px"] < 0.8


def test_calibrate_cli_on_image_folders_and_its_errors(tmp_path, capsys):
    root = samples.fetch_set("opencv_stereo")[0].parent
    out = tmp_path / "stereo.toml"
    args = [str(root / "left*.jpg"), str(root / "right*.jpg"), "--board", "checkerboard:9x6:25mm",
            "--floor", "none", "--quiet", "--out", str(out)]
    assert calibrate_main(args) == 0
    text = capsys.readouterr().out
    assert "left" in text and "right" in text and "frames where both cameras saw the board" in text
    cal = load_calibration(out)
    assert cal.names == ["left", "right"] and cal.up is None and not cal.floor
    # the wrong board: one line, exit code 6
    assert calibrate_main(args[:2] + ["--board", "charuco:7x5:32mm:24mm", "--quiet", "--out", str(out)]) == 6
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the board") and "never found in left" in err and "\n" not in err
    assert calibrate_main([str(tmp_path / "nothing*.png"), "--board", "checkerboard:9x6:25mm"]) == 3


# ---------------------------------------------------------------------------------------------
# Diagnostics


def _fake_views(board: BoardSpec, cams: list[Camera], visible: np.ndarray) -> list[list[Detection | None]]:
    """Detections of a board at random poses in front of each camera: visible[c, f]."""
    rng = np.random.default_rng(0)
    obj = board.object_points()
    out = []
    for c, cam in enumerate(cams):
        row = []
        for f in range(visible.shape[1]):
            if not visible[c, f]:
                row.append(None)
                continue
            rv = rng.normal(0, 0.3, 3)
            tv = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.1), rng.uniform(1.0, 1.6)])
            uv = cv2.projectPoints(obj, rv, tv, cam.K, cam.dist)[0].reshape(-1, 2)
            row.append(Detection(np.arange(len(obj)), uv + rng.normal(0, 0.2, uv.shape)))
        out.append(row)
    return out


def test_calibration_failures_say_what_to_record():
    board = BoardSpec.parse("charuco:7x5:40mm:30mm")
    cams = rig(3, size=(1280, 720)).cameras
    sizes, names = [c.size for c in cams], [c.name for c in cams]
    vis = np.ones((3, 12), bool)
    vis[2, :6] = False       # cam3 sees the board only when nobody else does
    vis[:2, 6:] = False
    with pytest.raises(CalibrationError, match="camera cam3 never saw the board together with another camera"):
        calibrate_rig(board, _fake_views(board, cams, vis), sizes, names)
    vis = np.ones((3, 12), bool)
    vis[0, 3:] = False       # cam1: 3 views only
    with pytest.raises(CalibrationError, match="only 3 views with the board found in cam1; need 5"):
        calibrate_rig(board, _fake_views(board, cams, vis), sizes, names)
    none = [[None] * 12 for _ in cams]
    with pytest.raises(CalibrationError, match="never found in cam1"):
        calibrate_rig(board, none, sizes, names)
    sym = BoardSpec.parse("checkerboard:8x6:25mm")
    with pytest.raises(CalibrationError, match="looks the same turned half a turn"):
        calibrate_rig(sym, none, sizes, names)
