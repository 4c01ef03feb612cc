"""The live stream's pose: each tracked frame's blendshape weights and joint rotations, from that
frame and the ones before it only (what pipeline.live.vmc streams).

Input: FrameResults (pipeline.tracking.results) in time order, with their stream times (s).
Output per frame: weights (51,) in [0, 1], local joint rotations (J, 4) xyzw relative to the T-pose
(glTF frame: Y up, right-handed, the avatar faces +Z) and the hips position (3,) metres.

The body is solved by the batch solve (pipeline.body.solve) over the last half second of frames,
which costs 20-40 ms of CPU a solve. `LivePoser` solves it in its own thread within a share of a
core, or (`solve_process=True`, what the live capture uses) in a separate, lower-priority process
(`BodySolveProcess`): the solve then never holds the interpreter lock the tracker and the sender
need, and a frame never waits for it; each frame takes the newest body solved so far.
"""
from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
import queue
import signal
import time
from dataclasses import fields, replace

import numpy as np

from pipeline.body.screening import UNSTABLE_WINDOW_S, screen_tracks
from pipeline.body.skeleton import build_skeleton
from pipeline.body.solve import solve_body
from pipeline.core.one_euro import OneEuroParams, PoseSmoother
from pipeline.core.tracks import BLENDSHAPE_NAMES, Tracks
from pipeline.face.calibration import LiveCalibration
from pipeline.face.weights import eye_rotations, morph_weights
from pipeline.tracking.tracker import store_result

FALLBACK_FPS = 30.0  # frame rate of a live window whose timestamps give none (one frame, or not increasing)

# Causal smoothing of the live stream (One Euro: cut-off when still in Hz, its rise with speed).
# Chosen by benchmarks/bench_filters.py on real takes (weights: wolfgang, cap12; rotations: wolfgang,
# sports2d, p2s_cam01, cap12) against the batch (zero-lag) solve of each take: the least mean over
# the takes of (jitter while slow / raw's + error / raw's), ties within 1 % to the least lag.
# About half the raw stream's jitter for 5-20 ms of added lag; benchmarks/results/filters.md.
LIVE_WEIGHTS_FILTER = OneEuroParams(min_cutoff_hz=3.0, beta=30.0)    # beta per weight unit per second
LIVE_ROTATIONS_FILTER = OneEuroParams(min_cutoff_hz=8.0, beta=0.3)   # beta per rad/s of the joint
# The live body solve may use at most this fraction of one core (LivePoser.body_cpu_share), so the
# tracker (up to 2 cores at 30 fps with decoding and recording on a 2-core machine) keeps the rest.
# Measured (benchmarks/results/filters.md, one 720p camera, the solve in its process): wolfgang
# tracked at 29.3 fps with VMC against 29.9 without, the body solved in 252 of 589 frames; at 0.25
# 29.7 against 29.8 with 127 of 596 (runs differ by about 1 fps); the filters fill the frames between.
LIVE_BODY_CPU_SHARE = 0.5
# The live body is screened for look-alikes (pipeline.body.screening) over this much of the stream:
# its bone-stability rule judges 2 s windows (UNSTABLE_WINDOW_S). On real tracks, per live window:
# people kept in 100 % of wolfgang's, cap12's and Pose2Sim cam01's frames (Sports2D's: 88 %, the
# first half second of its tiny, jittery figure), bigbuckbunny's cartoon rabbit rejected in 91 %.
LIVE_SCREENING_S = UNSTABLE_WINDOW_S


class LivePoser:
    """Each tracked frame's pose for the live stream, from that frame and the ones before it only.

    `pose(result, t_s)` -> (weights (51,) in [0, 1], local rotations (J, 4) xyzw unit quaternions
    relative to the T-pose (glTF frame), hips position (3,) metres): blendshape weights from the
    frame's scores (pipeline.face.weights.morph_weights; neutral without a face) and, with
    `body=True`, the newest frame of a body solved over the last `window_s` seconds
    (pipeline.body.solve on a short Tracks window, screened for look-alikes such as cartoons over
    the last LIVE_SCREENING_S, pipeline.body.screening; the hips stay at their rest position, receivers
    move the avatar themselves). With `smooth=True` the weights and rotations then go through
    causal One Euro filters (LIVE_WEIGHTS_FILTER, LIVE_ROTATIONS_FILTER); the eyes follow the
    (smoothed) eyeLook* weights. Calls must come in time order (one stream).

    The body solve is the costly part (tens of ms of CPU per frame, against microseconds for the
    filters). `body_cpu_share` (a fraction of one core, None: no limit) caps it so that the stream
    never takes the CPU the tracker needs: after a solve that took c seconds of CPU, the next one
    waits until c / body_cpu_share seconds have passed, and the frames in between keep the last
    solved body (the weights, eyes and filters still run every frame). With `solve_process=True`
    the solve runs in a `BodySolveProcess` (within the same share) and each frame takes the newest
    body it has sent back (the rest pose until the first); `close()` ends it. `body_solves` counts
    the solves, `body_held` the frames that kept an earlier one, `body_cpu_s` the solves' CPU
    seconds.

    skeleton: a pipeline.body.skeleton.Skeleton (default: the 1.75 m default skeleton; receivers put
    the rotations on their own avatar anyway). image_size: the tracked image's (width, height).
    calibration: the user's expression calibration (pipeline.face.calibration.LiveCalibration),
    applied to the weights before the filters; None: the scores as they are.
    """

    def __init__(self, skeleton=None, image_size=(1280, 720), body: bool = True, window_s: float = 0.5,
                 smooth: bool = True, body_cpu_share: float | None = None, solve_process: bool = False,
                 calibration: LiveCalibration | None = None):
        self.skel = skeleton or build_skeleton(None)
        self.calibration = calibration
        self.image_size = tuple(image_size)
        self.body = body
        self.window_s = window_s
        self.smoother = PoseSmoother(LIVE_WEIGHTS_FILTER, LIVE_ROTATIONS_FILTER) if smooth else None
        self.body_cpu_share = body_cpu_share
        self.body_solves = 0
        self.body_held = 0
        self.body_cpu_s = 0.0
        self._history: collections.deque = collections.deque()
        self._eyes = [self.skel.index("leftEye"), self.skel.index("rightEye")]
        self._last_body = None
        self._rest: np.ndarray | None = None
        self._next_solve_s = -np.inf   # time.monotonic() before which the next solve waits
        self._process = (BodySolveProcess(self.skel, self.image_size, window_s, body_cpu_share)
                         if body and solve_process else None)
        if body:
            self._rest_pose()  # now, not in the first frame without a body

    def pose(self, result, t_s: float):
        """(weights (51,), local rotations (J, 4), hips position (3,)) of one frame."""
        face = result.face
        bs = face.blendshapes[None] if face is not None else np.full((1, len(BLENDSHAPE_NAMES)), np.nan, np.float32)
        w = morph_weights(bs, np.array([face is not None]))[0].astype(np.float64)
        if self.calibration is not None:
            w = self.calibration(w, t_s, face is not None)
        rot = self._body_pose(result, t_s) if self.body else None
        if rot is None and self.body:
            rot = self._rest_pose()  # nobody in view: the relaxed rest pose, as a batch take shows
        if rot is None:
            rot = np.tile([0.0, 0.0, 0.0, 1.0], (self.skel.n_joints, 1))
        rot = np.array(rot, np.float64)
        if self.smoother is not None:
            w, rot = self.smoother.update(w, rot, t_s)
        rot[self._eyes] = eye_rotations(w[None])[0]
        return w, rot, self.skel.rest_local_m[0]

    def _rest_pose(self) -> np.ndarray:
        """(J, 4) the body solve's pose of a frame without anybody (arms down, standing)."""
        if self._rest is None:
            self._rest = solve_body(self.skel, Tracks.empty(1, FALLBACK_FPS, self.image_size, "live"),
                                    image_lift=False).local_rotations[0]
        return self._rest

    def remember(self, result, t_s: float) -> None:
        """Add a frame to the window the body is solved over (and drop those now too old)."""
        h = self._history
        h.append((t_s, result))
        while h and t_s - h[0][0] > max(self.window_s, LIVE_SCREENING_S):
            h.popleft()

    @property
    def body_error(self) -> str | None:
        """The last error of the solve process's solves (None: none, or no process)."""
        return self._process.error if self._process is not None else None

    def wait_ready(self) -> bool:
        """Wait until the solve process (if any) has started; whether it has."""
        return self._process is None or self._process.wait_ready()

    def close(self) -> None:
        """End the solve process, if any."""
        if self._process is not None:
            self._process.close()

    def _body_pose(self, result, t_s: float):
        """The frame's local joint rotations (J, 4): solved (`_solve`), or the last solved ones while
        the CPU budget (body_cpu_share) waits; None while nothing was ever solved."""
        if self._process is not None:
            return self._body_from_process(result, t_s)
        self.remember(result, t_s)
        now = time.monotonic()
        if self.body_cpu_share is not None and self._last_body is not None and now < self._next_solve_s:
            self.body_held += 1
            return self._last_body
        cpu0 = time.thread_time()
        rot = self._solve(result)
        spent_s = time.thread_time() - cpu0
        self.body_cpu_s += spent_s
        if self.body_cpu_share is not None:
            self._next_solve_s = now + spent_s / self.body_cpu_share
        self.body_solves += 1
        self._last_body = rot
        return rot

    def _body_from_process(self, result, t_s: float):
        """The newest body the solve process has sent back, the frame handed to it."""
        p = self._process
        p.post(result, t_s)
        if not p.poll():
            self.body_held += 1
        self.body_solves, self.body_cpu_s = p.solves, p.cpu_s
        return p.latest

    def _solve(self, result):
        """The newest frame's local joint rotations (J, 4) from the body solved over the frames of
        the last window_s seconds, screened (pipeline.body.screening) over the last
        LIVE_SCREENING_S; None when they hold neither a body nor this frame's face."""
        h = self._history
        if not any(r.pose is not None for _, r in h) and result.face is None:
            return None
        n = len(h)
        ts = np.array([t for t, _ in h])
        fps = 1.0 / float(np.median(np.diff(ts))) if n > 1 and np.all(np.diff(ts) > 0) else FALLBACK_FPS
        tr = Tracks.empty(n, fps, self.image_size, "live")
        tr.t_s[:] = ts
        for i, (_, r) in enumerate(h):
            store_result(tr, i, r)
        tr = _last_seconds(screen_tracks(tr, ongoing=True), self.window_s)
        motion = solve_body(self.skel, tr, image_lift=False)  # the lift costs too much per live frame
        return motion.local_rotations[-1]


def _last_seconds(tracks: Tracks, seconds: float) -> Tracks:
    """The frames of `tracks` in its last `seconds` (t_s within that of the last frame's)."""
    keep = tracks.t_s >= tracks.t_s[-1] - seconds
    n = tracks.n_frames
    out = replace(tracks, **{f.name: getattr(tracks, f.name)[keep] for f in fields(tracks)
                             if isinstance(getattr(tracks, f.name), np.ndarray) and len(getattr(tracks, f.name)) == n})
    ts = out.t_s
    out.duration_s = float(ts[-1] - ts[0] + 1.0 / out.fps)
    return out


# The body solve process (BodySolveProcess) runs at this lower priority (nice increment), so the
# tracker's threads win the cores whenever both want them.
SOLVE_NICENESS = 5
PARENT_CHECK_S = 1.0   # s: how often an idle solve process checks that its parent still lives
READY_TIMEOUT_S = 60.0  # s: the longest wait_ready waits for the process to import and start


class BodySolveProcess:
    """The live body solve (LivePoser's in-thread one, with its CPU share) in a separate process.

    `post(result, t_s)` hands over one tracked frame and never blocks; the process keeps the frames
    of the last window, solves the newest of those waiting whenever `cpu_share` of a core (None: no
    limit) allows and sends the solved local rotations (J, 4) (None: nobody in view) back; `poll()`
    takes in what came back: `latest` is the newest solve, `solves` and `cpu_s` count them and their
    CPU seconds. Ctrl-C is left to the parent; the process ends on `close()`, or by itself when its
    parent is gone.
    """

    def __init__(self, skeleton, image_size, window_s: float, cpu_share: float | None):
        ctx = multiprocessing.get_context("spawn")  # no fork of a process that runs MediaPipe's threads
        self._inbox, self._outbox = ctx.Queue(), ctx.Queue()
        self._proc = ctx.Process(target=_solve_loop, name="live-body-solve", daemon=True,
                                 args=(self._inbox, self._outbox, skeleton, tuple(image_size), window_s,
                                       cpu_share, os.getpid()))
        self._proc.start()
        self.ready = False
        self.latest: np.ndarray | None = None
        self.solves = 0
        self.cpu_s = 0.0
        self.error: str | None = None

    def post(self, result, t_s: float) -> None:
        """Hand one frame over (dropped once the process has ended)."""
        if self._proc.is_alive():
            self._inbox.put((t_s, result))

    def poll(self) -> bool:
        """Take in the process's replies; True when a new solve came."""
        new = False
        while True:
            try:
                msg = self._outbox.get_nowait()
            except queue.Empty:
                return new
            if msg[0] == "ready":
                self.ready = True
            elif msg[0] == "solved":
                self.latest, self.solves, self.cpu_s, new = msg[1], self.solves + 1, self.cpu_s + msg[2], True
            else:
                self.error = msg[1]

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> bool:
        """Wait until the process has started (imports done), at most timeout_s; whether it has."""
        end = time.monotonic() + timeout_s
        while not self.ready and self._proc.is_alive() and time.monotonic() < end:
            self.poll()
            time.sleep(0.01)
        return self.ready

    def close(self, timeout_s: float = 2.0) -> None:
        with contextlib.suppress(ValueError, OSError):  # already closed
            self._inbox.put(None)
        self._proc.join(timeout_s)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout_s)
        for q in (self._inbox, self._outbox):
            q.cancel_join_thread()  # frames still queued are not worth waiting for
            q.close()


def _solve_loop(inbox, outbox, skeleton, image_size, window_s: float, cpu_share: float | None,
                parent_pid: int) -> None:
    """The body solve process: the in-thread LivePoser's body pose of the newest of the frames that
    came (solved, or held while its CPU share waits), each new solve sent back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C ends the take in the parent, which closes us
    with contextlib.suppress(OSError):
        os.nice(SOLVE_NICENESS)
    poser = LivePoser(skeleton, image_size, body=True, window_s=window_s, smooth=False, body_cpu_share=cpu_share)
    outbox.put(("ready",))
    while (frames := _newest_frames(inbox, parent_pid)) is not None:
        for t_s, result in frames[:-1]:
            poser.remember(result, t_s)
        t_s, result = frames[-1]
        solves, cpu_s = poser.body_solves, poser.body_cpu_s
        try:
            rot = poser._body_pose(result, t_s)
        except Exception as e:  # noqa: BLE001 - one bad window must not end the stream's body
            outbox.put(("error", f"{type(e).__name__}: {e}"))
            continue
        if poser.body_solves > solves:
            outbox.put(("solved", rot, poser.body_cpu_s - cpu_s))


def _newest_frames(inbox, parent_pid: int) -> list | None:
    """Every frame waiting in the inbox (at least one, waiting for it), oldest first; None when the
    process should end (told to, or its parent is gone)."""
    while True:
        try:
            frames = [inbox.get(timeout=PARENT_CHECK_S)]
            break
        except queue.Empty:
            if os.getppid() != parent_pid:
                return None
        except (EOFError, OSError):  # the parent's end of the queue is gone
            return None
    with contextlib.suppress(queue.Empty, EOFError, OSError):
        while True:
            frames.append(inbox.get_nowait())
    return None if any(f is None for f in frames) else frames
