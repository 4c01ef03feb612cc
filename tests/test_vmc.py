"""VMC protocol streaming, received by a real OSC server (python-osc, UDP on localhost): every frame's
messages arrive, in order, and decode to what was sent."""
from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from vmc_receiver import Receiver

from pipeline.core.tracks import ARKIT_NAMES, Tracks
from pipeline.live.vmc import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    LiveVMCStreamer,
    VMCSender,
    parse_target,
    stream_session,
    to_unity_rotation,
    unity_bone_name,
)

UNITY_BONES = {"Hips", "Spine", "Chest", "Neck", "Head", "LeftEye", "RightEye", "LeftShoulder",
               "LeftUpperArm", "LeftLowerArm", "LeftHand", "RightShoulder", "RightUpperArm",
               "RightLowerArm", "RightHand", "LeftUpperLeg", "LeftLowerLeg", "LeftFoot", "LeftToes",
               "RightUpperLeg", "RightLowerLeg", "RightFoot", "RightToes"}




@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _same(sent_args, got_args):
    assert len(sent_args) == len(got_args)
    for s, g in zip(sent_args, got_args):
        if isinstance(s, str):
            assert g == s
        elif isinstance(s, int):
            assert g == s and isinstance(g, int)
        else:  # OSC floats are float32: exact after rounding to float32
            assert g == float(np.float32(s)), (s, g)


def test_defaults_are_localhost_and_the_vmc_port():
    s = VMCSender()
    assert (s.host, s.port) == (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 39539)
    s.close()
    assert unity_bone_name("leftUpperArm") == "LeftUpperArm"
    assert parse_target(None) == parse_target("") == ("127.0.0.1", 39539)
    assert parse_target("39540") == ("127.0.0.1", 39540)
    assert parse_target("studio-pc") == ("studio-pc", 39539)
    assert parse_target("192.168.1.5:39541") == ("192.168.1.5", 39541)


def test_every_frame_of_a_take_arrives_and_decodes(processed, receiver):
    out, manifest = processed("single_face")
    sent: list[list] = []
    n = stream_session(out, port=receiver.port, realtime=False, pace_s=0.001,
                       on_sent=lambda i, msgs: sent.append(msgs))
    assert n == manifest["input"]["frames"] == len(sent)
    flat = [m for msgs in sent for m in msgs]
    receiver.wait_for(len(flat))
    assert len(receiver.messages) == len(flat), "messages lost"
    for (addr, args), (gaddr, gargs) in zip(flat, receiver.messages):
        assert gaddr == addr
        _same(args, gargs)

    # what a receiver decodes: per frame 23 bones with Unity's names, 51 perfect-sync blendshapes
    from pipeline.export.session_take import load_session_take
    st = load_session_take(out)
    w, rot, root = st.sample()
    per_frame = len(flat) // n
    assert per_frame == 1 + 23 + 51 + 3
    for i in (0, n // 2, n - 1):
        frame = receiver.messages[i * per_frame:(i + 1) * per_frame]
        addrs = [a for a, _ in frame]
        assert addrs[0] == "/VMC/Ext/Root/Pos" and addrs[-3:] == ["/VMC/Ext/Blend/Apply", "/VMC/Ext/OK",
                                                                 "/VMC/Ext/T"]
        bones = {args[0]: np.array(args[1:]) for a, args in frame if a == "/VMC/Ext/Bone/Pos"}
        assert set(bones) == UNITY_BONES
        for name in ("Hips", "Head", "LeftUpperArm", "RightEye"):
            j = st.names.index(name[0].lower() + name[1:])
            want = to_unity_rotation(rot[i, j] / np.linalg.norm(rot[i, j]))
            got = bones[name][3:]
            assert Rotation.from_quat(got).approx_equal(Rotation.from_quat(want), atol=1e-5, degrees=True)
        assert np.allclose(bones["Hips"][:3], root[i] * [-1, 1, 1], atol=1e-6)  # Unity: x mirrored
        blend = {args[0]: args[1] for a, args in frame if a == "/VMC/Ext/Blend/Val"}
        assert list(blend) == [n[:1].upper() + n[1:] for n in ARKIT_NAMES]
        assert np.allclose([blend[k[:1].upper() + k[1:]] for k in ARKIT_NAMES], w[i], atol=1e-7)
        assert dict(frame)["/VMC/Ext/T"][0] == pytest.approx(i / st.fps, abs=1e-4)


def test_preset_names_for_vrm0_receivers(processed, receiver):
    out, _ = processed("single_face")
    sender = VMCSender(port=receiver.port, blend_sets=("vrm0", "vrm1"))
    stream_session(out, realtime=False, frames=3, sender=sender)
    sender.close()
    receiver.wait_for(3 * (1 + 23 + 11 + 12 + 3))
    names = {args[0] for a, args in receiver.messages if a == "/VMC/Ext/Blend/Val"}
    assert {"A", "I", "U", "E", "O", "Blink", "Blink_L", "Blink_R", "Joy", "Angry", "Sorrow"} <= names
    assert {"aa", "ih", "ou", "ee", "oh", "blink", "happy", "surprised"} <= names
    assert len(receiver.messages) == 3 * (1 + 23 + 11 + 12 + 3)


def _frame_results(tracks: Tracks, n: int):
    from pipeline.tracking.tracker import FaceResult, FrameResult, PoseResult
    for i in range(n):
        face = pose = None
        if tracks.face_valid[i] and not tracks.face_filled[i]:
            face = FaceResult(tracks.face_landmarks[i], tracks.blendshapes[i], tracks.face_matrix[i])
        if tracks.pose_valid[i] and not tracks.pose_filled[i]:
            pose = PoseResult(tracks.pose_image[i], tracks.pose_world_m[i], tracks.pose_visibility[i])
        yield FrameResult(float(tracks.t_s[i]), face, pose)


def test_live_streamer_sends_each_tracked_frame(processed, receiver):
    """The live loop's hook: FrameResults in, one VMC bundle per frame out, without blocking."""
    from pipeline.face.weights import morph_weights
    out, _ = processed("single_face")
    tracks = Tracks.load(out / "tracks.npz")
    n = 30
    results = list(_frame_results(tracks, n))
    streamer = LiveVMCStreamer(port=receiver.port, image_size=tracks.image_size, max_queue=n, smooth=False)
    assert streamer.wait_ready()  # the body solve process
    t0 = time.perf_counter()
    worst = 0.0
    for r in results:
        c = time.perf_counter()
        streamer.on_frame(r)
        worst = max(worst, time.perf_counter() - c)
        time.sleep(1 / 30)  # a 30 fps camera: the body solves come back meanwhile
    streamer.close(timeout=30)
    print(f"live VMC: {n} frames in {time.perf_counter() - t0:.2f} s, on_frame at most {worst * 1000:.2f} ms")
    assert worst < 0.005  # never blocks the tracker
    assert (streamer.received, streamer.sent, streamer.dropped, streamer.errors) == (n, n, 0, 0), streamer.last_error
    per_frame = 1 + 23 + 51 + 3
    receiver.wait_for(n * per_frame)
    assert len(receiver.messages) == n * per_frame
    w = morph_weights(tracks.blendshapes[:n], tracks.face_valid[:n] & ~tracks.face_filled[:n])
    for i in range(n):
        frame = receiver.messages[i * per_frame:(i + 1) * per_frame]
        blend = [args[1] for a, args in frame if a == "/VMC/Ext/Blend/Val"]
        assert np.allclose(blend, w[i], atol=1e-7)
        quats = np.array([args[4:8] for a, args in frame if a == "/VMC/Ext/Bone/Pos"])
        assert quats.shape == (23, 4) and np.allclose(np.linalg.norm(quats, axis=1), 1, atol=1e-5)
    # the head follows the face: not the rest pose in every frame
    heads = [np.array(args[4:8]) for a, args in receiver.messages if a == "/VMC/Ext/Bone/Pos" and args[0] == "Head"]
    assert max(Rotation.from_quat(q).magnitude() for q in heads) > np.radians(2)


def test_capture_cli_streams_vmc_while_capturing(sample, receiver, tmp_path):
    """`python -m pipeline.capture --vmc PORT`: a file standing in for a camera is tracked live and
    every tracked frame reaches a real OSC receiver as a VMC bundle (Blend/Apply closes each)."""
    import json
    import subprocess
    import sys
    p = subprocess.run([sys.executable, "-m", "pipeline.capture", "--cams", str(sample("single_face")),
                        "--no-preview", "--quiet", "--vmc", str(receiver.port), "--out", str(tmp_path / "s")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    cap = json.loads((tmp_path / "s" / "manifest.json").read_text())["capture"]
    tracked = cap["cameras"][0]["frames"]["tracked"]
    receiver.wait_for(1, timeout=5)
    applies = [a for a, _ in receiver.messages if a == "/VMC/Ext/Blend/Apply"]
    names = {args[0] for a, args in receiver.messages if a == "/VMC/Ext/Blend/Val"}
    vmc = cap["vmc"]
    print(f"tracked {tracked} frames live; VMC {vmc}; received {len(applies)} frames")
    # the streamer keeps only the newest frames when it falls behind (live: stale poses are useless);
    # every frame it sent arrived
    assert vmc["frames_received"] == tracked > 20 and vmc["errors"] == 0
    assert vmc["frames_sent"] + vmc["dropped_stale"] == tracked
    assert len(applies) == vmc["frames_sent"] > 0.5 * tracked
    assert len(names) >= 51
