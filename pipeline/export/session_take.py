"""The take of a session, read back from its avatar.glb, sampled per video frame.

Every engine export (VRM, VRM Animation, BVH, Live Link Face CSV, VMC replay) starts from the
exported file itself, so what they carry is exactly what `avatar.glb` animates.

In: a session folder (avatar.glb, and tracks.npz for the frame count and rate) or an avatar.glb.
Out: `SessionTake` (skeleton in the glTF frame, metres; the take as stored; fps; frame count);
`SessionTake.sample` gives per-frame weights (N, T), local rotations (N, J, 4) xyzw and root
translation (N, 3) metres. `EngineOptions` are the options the engine writers take beside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from pipeline.body.kinematics import rest_world
from pipeline.core.errors import InputError
from pipeline.core.session_folder import MANIFEST, verify_session
from pipeline.export.glb import read_glb
from pipeline.export.gltf import Take, avatar_from_glb

KEY_ON_FRAME_TOLERANCE = 0.25  # frames: stored keys this close to k / fps are taken as frame k
DEFAULT_FPS = 30.0  # frames per second when neither tracks.npz, the extras nor two keys tell it
CLOSING_KEY_TOLERANCE_S = 1e-6  # s: a key this close to the take's duration is the closing key


@dataclass(frozen=True)
class EngineOptions:
    """What the engine writers (`pipeline.export.formats`) are told beside the take.
    vrm_meta: VRMC_vrm.meta overrides for avatar.vrm (None values and None: the defaults);
    vrma_expressions: the expressions of take.vrma, "custom", "preset" or "both"."""

    vrm_meta: dict | None = None
    vrma_expressions: str = "custom"


@dataclass(eq=False)
class SessionTake:
    """names/parents/rest_local_m: the skeleton (glTF frame, metres, rest rotations identity);
    take: the animation as stored (keys at the frame timestamps plus a closing key);
    fps, n_frames: the video's frame rate and frame count; name: the take's name;
    target_names: the morph targets of the head (ARKit names); glb: the file read."""

    names: tuple[str, ...]
    parents: np.ndarray
    rest_local_m: np.ndarray
    take: Take
    fps: float
    n_frames: int
    name: str
    target_names: tuple[str, ...]
    glb: Path

    @property
    def rest_world_m(self) -> np.ndarray:
        return rest_world(self.parents, self.rest_local_m)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def frame_times(self) -> np.ndarray:
        """(n_frames,) seconds of frame k at the nominal rate: k / fps."""
        return np.arange(self.n_frames) / self.fps

    def sample(self, times: np.ndarray | None = None):
        """(weights (N, T), local rotations (N, J, 4) xyzw, root translation (N, 3)) at `times`
        (default: every frame, k / fps). Where the stored keys already sit on those times (a
        constant-rate video) the stored values are returned unchanged; otherwise LINEAR
        interpolation as glTF players do (slerp for rotations)."""
        tk = self.take
        if times is None:
            n = self.n_frames
            tolerance_s = KEY_ON_FRAME_TOLERANCE / self.fps
            if n <= len(tk.times_s) and np.allclose(tk.times_s[:n], self.frame_times(), atol=tolerance_s):
                return (tk.morph_weights[:n].astype(np.float64), tk.joint_rotations[:n].astype(np.float64),
                        tk.root_translation_m[:n].astype(np.float64))
            times = self.frame_times()
        t = np.clip(np.asarray(times, np.float64), tk.times_s[0], tk.times_s[-1])
        kt = tk.times_s.astype(np.float64)
        w = np.stack([np.interp(t, kt, tk.morph_weights[:, i]) for i in range(tk.morph_weights.shape[1])],
                     axis=1) if tk.morph_weights.size else np.zeros((len(t), 0))
        root = np.stack([np.interp(t, kt, tk.root_translation_m[:, i]) for i in range(3)], axis=1)
        rot = np.empty((len(t), len(self.names), 4))
        for j in range(len(self.names)):
            rot[:, j] = Slerp(kt, Rotation.from_quat(tk.joint_rotations[:, j].astype(np.float64)))(t).as_quat()
        return w, rot, root


def _frames_and_rate(glb: Path, info: dict, take: Take) -> tuple[int, float]:
    """(frame count, frames per second) of the take: from tracks.npz beside the file when it is
    there, else from the file's extras ("fps", "duration_s") and its keys."""
    tracks = glb.parent / "tracks.npz"
    n_frames, fps = None, info.get("fps")
    if tracks.is_file():
        with np.load(tracks, allow_pickle=False) as z:
            n_frames = int(len(z["t_s"]))
            t_s = z["t_s"]
        if fps is None and n_frames > 1:
            fps = 1.0 / float(np.median(np.diff(t_s)))
    n_keys = len(take.times_s)
    if fps is None:
        fps = 1.0 / float(np.median(np.diff(take.times_s))) if n_keys > 1 else DEFAULT_FPS
    if n_frames is None:
        duration = info.get("duration_s", float(take.times_s[-1]))
        frames = take.times_s < duration - CLOSING_KEY_TOLERANCE_S  # the closing key sits at the duration
        n_frames = int(frames.sum()) if frames.any() else n_keys
    return max(1, min(n_frames, n_keys)), float(fps)


def load_session_take(session: str | Path, verify: bool = True) -> SessionTake:
    """Read a session folder (or an avatar.glb directly). The frame count and rate come from
    tracks.npz when it is there, else from the file's extras and its keys. With `verify`, a
    session folder (or the folder of an avatar.glb that has a manifest.json beside it) must match
    its manifest's list of files first (pipeline.core.session_folder.verify_session). InputError
    (one line) for a missing, unreadable, incomplete or altered session."""
    p = Path(session)
    glb = p / "avatar.glb" if p.is_dir() else p
    if verify and (p.is_dir() or (glb.parent / MANIFEST).is_file()):
        verify_session(glb.parent)
    if not glb.is_file():
        raise InputError(f"{glb}: no such file (process a video first: python -m pipeline.process)")
    try:
        doc, blob = read_glb(glb)
        names, parents, rest_local, meshes, take = avatar_from_glb(doc, blob)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's input problem
        raise InputError(f"{glb}: not an avatar written by dhcap ({type(e).__name__}: {e})") from None
    extras = doc.get("extras") or {}
    info = extras.get("dhcap", {}) if isinstance(extras, dict) else {}
    n_frames, fps = _frames_and_rate(glb, info, take)
    head = [m for m in meshes if m.targets is not None]
    return SessionTake(names=tuple(names), parents=np.asarray(parents), rest_local_m=rest_local,
                       take=take, fps=fps, n_frames=n_frames,
                       name=info.get("source") or take.name or glb.parent.name,
                       target_names=tuple(head[0].target_names) if head else (), glb=glb)
