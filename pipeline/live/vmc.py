"""Live streaming of blendshapes and bone poses over the VMC protocol (OSC over UDP).

Receivers: VSeeFace, Warudo, VMagicMirror, VNyan, Unity's EVMC4U, Blender VMC add-ons, ...
Every frame is one OSC bundle of:
  /VMC/Ext/Root/Pos  "root"  p.x p.y p.z  q.x q.y q.z q.w           (identity: the avatar's origin)
  /VMC/Ext/Bone/Pos  <bone>  p.x p.y p.z  q.x q.y q.z q.w           (every joint, local pose)
  /VMC/Ext/Blend/Val <name>  value                                  (every blendshape)
  /VMC/Ext/Blend/Apply
  /VMC/Ext/OK        1                                              (an avatar is loaded)
  /VMC/Ext/T         seconds since the stream started
Bones use Unity's HumanBodyBones names (Hips, Spine, Chest, Neck, Head, LeftShoulder, LeftUpperArm,
..., LeftToes, LeftEye, ...). Positions are the joint's local position (the rest offset from its
parent; for Hips its position in the avatar, metres), rotations its local rotation relative to the
T-pose, both in Unity's left-handed frame: glTF (x, y, z) -> (-x, y, z) and quaternion
(x, y, z, w) -> (x, -y, -z, w) (a mirror through the YZ plane; the avatar faces +Z in both).
Blendshape names: "perfectsync" (default; ARKit names capitalised, EyeBlinkLeft ..., what perfect
sync avatars and iFacialMocap-style senders use), "arkit" (eyeBlinkLeft ...), "vrm0" (VRM 0.x
presets A I U E O Blink Blink_L Blink_R Joy Angry Sorrow, computed from ARKit, see
pipeline.export.vrm_expressions) and "vrm1" (aa ih ou ee oh blink ... happy angry sad surprised); several
sets can be sent together. Floats travel as OSC float32.

Sending goes to 127.0.0.1:39539 (VMC's default port) unless another host is named; nothing is
bound or listened to. Two entry points:
  * `LiveVMCStreamer.on_frame(result)`: for the live capture loop, per tracked frame
    (pipeline.tracking.tracker.FrameResult). Never blocks: the frame is handed to a sender thread that
    poses it (pipeline.live.poser.LivePoser: the body solved over the last `window_s` of frames in a
    separate process within LIVE_BODY_CPU_SHARE of a core, the newest solve taken; weights and
    rotations smoothed causally by One Euro filters, LIVE_WEIGHTS_FILTER and LIVE_ROTATIONS_FILTER)
    and sends; if it falls behind, older frames are dropped (counted).
  * `stream_session(session_dir)` / `python -m pipeline.vmc SESSION_DIR`: replays a processed
    take (its avatar.glb) in real time, e.g. into VSeeFace, unchanged (the batch take is already
    smoothed without lag).
"""
from __future__ import annotations

import collections
import threading
import time
from pathlib import Path

import numpy as np
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from pipeline.core.tracks import ARKIT_NAMES
from pipeline.export.session_take import load_session_take
from pipeline.export.vrm_expressions import VRM0_NAMES, perfect_sync_name, preset_weights
from pipeline.live.poser import LIVE_BODY_CPU_SHARE, LivePoser

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 39539
BLEND_SETS = ("perfectsync", "arkit", "vrm0", "vrm1")


def parse_target(text: str | None) -> tuple[str, int]:
    """"39539", "host", "host:port" or "[::1]:port" -> (host, port); localhost and VMC's default
    port for what is left out. ValueError for a bad port."""
    host, port = DEFAULT_HOST, DEFAULT_PORT
    t = (text or "").strip()
    if not t:
        return host, port
    if t.isdigit():
        return host, int(t)
    if t.startswith("["):  # [IPv6]:port
        h, _, rest = t[1:].partition("]")
        return h, int(rest.lstrip(":")) if rest.strip(":") else port
    if t.count(":") == 1:
        h, p = t.split(":")
        return h or host, int(p)
    return t, port


def unity_bone_name(vrm_name: str) -> str:
    """VRM humanoid name -> Unity HumanBodyBones name (leftUpperArm -> LeftUpperArm)."""
    return vrm_name[:1].upper() + vrm_name[1:]


def to_unity_position(p) -> np.ndarray:
    p = np.asarray(p, np.float64)
    return p * np.array([-1.0, 1.0, 1.0])


def to_unity_rotation(q_xyzw) -> np.ndarray:
    q = np.asarray(q_xyzw, np.float64)
    return q * np.array([1.0, -1.0, -1.0, 1.0])


def blend_values(weights, sets=("perfectsync",), names=ARKIT_NAMES) -> dict[str, float]:
    """{receiver name: value} for one frame of ARKit weights (51 or 52 values named `names`)."""
    w = np.clip(np.nan_to_num(np.asarray(weights, np.float64).reshape(-1)), 0.0, 1.0)
    out: dict[str, float] = {}
    for s in sets:
        if s == "perfectsync":
            out.update({perfect_sync_name(n): float(v) for n, v in zip(names, w)})
        elif s == "arkit":
            out.update({n: float(v) for n, v in zip(names, w)})
        elif s in ("vrm0", "vrm1"):
            full = np.zeros(len(ARKIT_NAMES))
            idx = {n: i for i, n in enumerate(names)}
            for i, n in enumerate(ARKIT_NAMES):
                if n in idx:
                    full[i] = w[idx[n]]
            for k, v in preset_weights(full[None]).items():
                if s == "vrm1":
                    out[k] = float(v[0])
                elif k in VRM0_NAMES:  # VRM 0.x has no "surprised"
                    out[VRM0_NAMES[k]] = float(v[0])
        else:
            raise ValueError(f"unknown blendshape set {s!r}: choose from {', '.join(BLEND_SETS)}")
    return out


def frame_messages(t_s: float, blend: dict[str, float] | None, names=None, rest_local_m=None,
                   local_xyzw=None, hips_m=None) -> list[tuple[str, list]]:
    """The OSC messages (address, arguments) of one frame, in sending order. Bones are sent when
    `local_xyzw` (J, 4, glTF, relative to the T-pose) is given; `hips_m` is the root joint's
    position (default: its rest position)."""
    msgs: list[tuple[str, list]] = [("/VMC/Ext/Root/Pos", ["root", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])]
    if local_xyzw is not None:
        rest = np.asarray(rest_local_m, np.float64)
        q = np.asarray(local_xyzw, np.float64)
        q = q / np.linalg.norm(q, axis=-1, keepdims=True)
        for j, name in enumerate(names):
            p = rest[j] if (j != 0 or hips_m is None) else np.asarray(hips_m, np.float64)
            pu, qu = to_unity_position(p), to_unity_rotation(q[j])
            msgs.append(("/VMC/Ext/Bone/Pos", [unity_bone_name(name), *map(float, pu), *map(float, qu)]))
    for k, v in (blend or {}).items():
        msgs.append(("/VMC/Ext/Blend/Val", [k, float(v)]))
    if blend:
        msgs.append(("/VMC/Ext/Blend/Apply", []))
    msgs.append(("/VMC/Ext/OK", [1]))
    msgs.append(("/VMC/Ext/T", [float(t_s)]))
    return msgs


class VMCSender:
    """Sends frames to one VMC receiver. `send_frame` packs a frame into one OSC bundle (about
    4 KB with 23 bones and 51 blendshapes) and sends it as one UDP datagram."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, blend_sets=("perfectsync",)):
        for s in blend_sets:
            if s not in BLEND_SETS:
                raise ValueError(f"unknown blendshape set {s!r}: choose from {', '.join(BLEND_SETS)}")
        self.host, self.port, self.blend_sets = host, int(port), tuple(blend_sets)
        self._client = SimpleUDPClient(host, self.port)
        self.frames = 0
        self.bytes = 0

    def send_messages(self, msgs: list[tuple[str, list]]) -> int:
        """Send messages as one OSC bundle (one UDP datagram); returns its size in bytes."""
        bundle = OscBundleBuilder(IMMEDIATELY)
        for address, args in msgs:
            mb = OscMessageBuilder(address=address)
            for a in args:
                if isinstance(a, str):
                    mb.add_arg(a, OscMessageBuilder.ARG_TYPE_STRING)
                elif isinstance(a, (int, np.integer)) and not isinstance(a, bool):
                    mb.add_arg(int(a), OscMessageBuilder.ARG_TYPE_INT)
                else:
                    mb.add_arg(float(a), OscMessageBuilder.ARG_TYPE_FLOAT)
            bundle.add_content(mb.build())
        dgram = bundle.build()
        self._client.send(dgram)
        self.frames += 1
        self.bytes += dgram.size
        return dgram.size

    def send_frame(self, t_s: float, weights=None, names=None, rest_local_m=None, local_xyzw=None,
                   hips_m=None, weight_names=ARKIT_NAMES) -> list[tuple[str, list]]:
        """Send one frame; returns the messages sent (glTF-frame inputs, see frame_messages)."""
        blend = blend_values(weights, self.blend_sets, weight_names) if weights is not None else None
        msgs = frame_messages(t_s, blend, names, rest_local_m, local_xyzw, hips_m)
        self.send_messages(msgs)
        return msgs

    def close(self):
        sock = getattr(self._client, "_sock", None)
        if sock is not None:
            sock.close()


class LiveVMCStreamer:
    """VMC output of the live capture loop. Call `on_frame(result)` with every FrameResult of
    the tracker (pipeline.tracking.tracker); it returns at once. A sender thread turns the newest frames
    into a pose (`LivePoser`: weights, eyes, and with `body=True` the body solved over the last
    `window_s` seconds within `body_cpu_share` of a core, in a separate process unless
    `solve_process=False` (then in the sender thread: every frame waits for its solve when the share
    is None, as the tests' reference streams do); smoothed causally unless `smooth=False`), then
    sends one bundle per frame. `wait_ready()` waits until the solve process has started.
    `close()` stops the thread and the process. Counters: received, sent, dropped (stale frames skipped when the
    thread falls behind), errors; `latency_s` holds, per sent frame whose capture time was given,
    the seconds from capture to the bundle leaving (time.monotonic clock).

    skeleton: a pipeline.body.skeleton.Skeleton (default: the 1.75 m default skeleton; receivers put
    the rotations on their own avatar anyway). image_size: the tracked image's (width, height).
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, blend_sets=("perfectsync",),
                 body: bool = True, skeleton=None, image_size=(1280, 720), window_s: float = 0.5,
                 max_queue: int = 2, sender: VMCSender | None = None, smooth: bool = True,
                 body_cpu_share: float | None = LIVE_BODY_CPU_SHARE, solve_process: bool = True,
                 calibration=None):
        self.sender = sender or VMCSender(host, port, blend_sets)
        self.poser = LivePoser(skeleton, image_size, body, window_s, smooth, body_cpu_share, solve_process,
                               calibration)
        self.skel = self.poser.skel
        self._queue: collections.deque = collections.deque(maxlen=max_queue)
        self._cond = threading.Condition()
        self._stop = False
        self._t0: float | None = None
        self.received = 0
        self.sent = 0
        self.dropped = 0
        self.errors = 0
        self.last_error: str | None = None
        self.latency_s: list[float] = []
        self._thread = threading.Thread(target=self._run, name="vmc-sender", daemon=True)
        self._thread.start()

    def on_frame(self, result, t_s: float | None = None, captured_s: float | None = None) -> None:
        """Hand over one tracked frame (FrameResult); never blocks, never raises. t_s: its stream
        time (default result.t_s); captured_s: its capture time on time.monotonic's clock, for the
        capture-to-sent latency."""
        with self._cond:
            self.received += 1
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append((result, result.t_s if t_s is None else t_s, captured_s))
            self._cond.notify()

    def _run(self):
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop and not self._queue:
                    return
                result, t_s, captured_s = self._queue.popleft()
            try:
                self._send(result, t_s)
                self.sent += 1
                if captured_s is not None:
                    self.latency_s.append(time.monotonic() - captured_s)
            except Exception as e:  # noqa: BLE001 - a bad frame or a closed socket must not end the take
                self.errors += 1
                self.last_error = f"{type(e).__name__}: {e}"

    def pose(self, result, t_s: float):
        """(weights (51,), local rotations (J, 4), hips position (3,)) of one frame (LivePoser.pose)."""
        return self.poser.pose(result, t_s)

    def _send(self, result, t_s: float):
        if self._t0 is None:
            self._t0 = t_s
        w, rot, hips = self.pose(result, t_s)
        self.sender.send_frame(t_s - self._t0, w, self.skel.names, self.skel.rest_local_m, rot, hips)

    def wait_ready(self) -> bool:
        """Wait until the body solve process (if any) has started; whether it has (if not, the
        stream goes on with the body at rest, and says so in `last_error`)."""
        ready = self.poser.wait_ready()
        if not ready:
            self.errors += 1
            self.last_error = "the body solve process did not start: the body stays at rest"
        return ready

    def close(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout)
        self.poser.close()
        self.sender.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def session_frames(session: str | Path):
    """Per-frame (t_s, weights, local rotations, hips position) of a processed session, plus the
    skeleton (names, rest_local_m, target names): what stream_session sends."""
    st = load_session_take(session)
    w, rot, root = st.sample()
    return st, st.frame_times(), w, rot, root


def stream_session(session: str | Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                   blend_sets=("perfectsync",), realtime: bool = True, loop: bool = False,
                   frames: int | None = None, pace_s: float = 0.0, sender: VMCSender | None = None,
                   on_sent=None) -> int:
    """Send a processed take frame by frame; returns the number of frames sent. realtime: at the
    video's frame rate (else as fast as possible, with `pace_s` between frames); loop: forever
    (until KeyboardInterrupt); frames: only the first N; on_sent(i, messages) after each frame."""
    st, times, w, rot, root = session_frames(session)
    own = sender is None
    sender = sender or VMCSender(host, port, blend_sets)
    n = len(times) if frames is None else min(frames, len(times))
    sent = 0
    start = time.perf_counter()
    try:
        while True:
            for i in range(n):
                if realtime:
                    delay = start + sent / st.fps - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                msgs = sender.send_frame(sent / st.fps, w[i], st.names, st.rest_local_m, rot[i], root[i],
                                         weight_names=st.target_names)
                if on_sent is not None:
                    on_sent(i, msgs)
                sent += 1
                if pace_s and not realtime:
                    time.sleep(pace_s)
            if not loop:
                break
    finally:
        if own:
            sender.close()
    return sent


