"""BVH (Biovision Hierarchy) motion of a take, and a small reader for it.

Conventions of the written file:
  * units: centimetres (the BVH norm; `scale` changes it); axes: glTF's Y up, right-handed, the
    character faces +Z (its left is +X). Blender's BVH importer (defaults: forward -Z, up Y)
    turns this into Blender's Z up.
  * HIERARCHY: the skeleton's joints in depth-first order with their rest offsets (the T-pose);
    the ROOT (hips) has OFFSET 0 0 0 and six channels (Xposition Yposition Zposition, the hips'
    absolute position, then rotations); every other joint three rotation channels. Leaves get an
    End Site (hands and toes: half their own bone's length onward; eyes: 2 cm forward).
  * rotations: "Zrotation Xrotation Yrotation" in degrees, i.e. local = Rz * Rx * Ry (intrinsic
    Z, X, Y), the joint's rotation relative to its parent in the rest pose. The avatar's rest
    rotations are identity, so these are exactly the glTF take's local rotations.
  * MOTION: one frame per video frame, Frame Time = 1 / fps.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.core.atomic import atomic_path
from pipeline.export.session_take import EngineOptions, SessionTake

ROT_ORDER = "ZXY"  # channel order and intrinsic Euler order
CM = 100.0  # centimetres per metre: the file's unit
EYE_END_SITE_M = 0.02  # metres: an eye's End Site sits this far in front of it (along +Z)
END_SITE_FRACTION = 0.5  # other leaves: their End Site continues their own bone by this fraction
ROOT_CHANNELS = "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"
JOINT_CHANNELS = "CHANNELS 3 Zrotation Xrotation Yrotation"


def _dfs(parents: np.ndarray) -> list[int]:
    """Joint indices in depth-first order from the roots (children in index order)."""
    order: list[int] = []

    def visit(j: int):
        order.append(j)
        for c in np.flatnonzero(parents == j):
            visit(int(c))
    for r in np.flatnonzero(parents < 0):
        visit(int(r))
    return order


def end_site(name: str, rest_local: np.ndarray) -> np.ndarray:
    """Offset of the End Site of a leaf joint (metres, the joint's rest frame)."""
    if name.endswith("Eye"):
        return np.array([0.0, 0.0, EYE_END_SITE_M])
    return END_SITE_FRACTION * np.asarray(rest_local, float)


def _fmt(v) -> str:
    """An OFFSET's numbers: 6 decimals."""
    return " ".join(f"{x:.6f}" for x in v)


def _hierarchy(names: list[str], parents: np.ndarray, rest_m: np.ndarray, order: list[int],
               scale: float) -> list[str]:
    """The HIERARCHY section's lines (tab-indented, nested braces) of the joints in `order`;
    offsets rest_m (J, 3) metres times `scale`."""
    lines = ["HIERARCHY"]
    depth = {}
    stack: list[int] = []
    for j in order:
        p = int(parents[j])
        while stack and stack[-1] != p:  # close finished subtrees
            done = stack.pop()
            lines.append("\t" * depth[done] + "}")
        d = len(stack)
        depth[j] = d
        ind = "\t" * d
        if p < 0:
            lines += [f"ROOT {names[j]}", "{", f"\tOFFSET {_fmt([0, 0, 0])}", f"\t{ROOT_CHANNELS}"]
        else:
            lines += [f"{ind}JOINT {names[j]}", f"{ind}{{", f"{ind}\tOFFSET {_fmt(rest_m[j] * scale)}",
                      f"{ind}\t{JOINT_CHANNELS}"]
        if not np.any(parents == j):
            lines += [f"{ind}\tEnd Site", f"{ind}\t{{",
                      f"{ind}\t\tOFFSET {_fmt(end_site(names[j], rest_m[j]) * scale)}", f"{ind}\t}}"]
        stack.append(j)
    while stack:
        done = stack.pop()
        lines.append("\t" * depth[done] + "}")
    return lines


def _motion(parents: np.ndarray, rot: np.ndarray, root_m: np.ndarray, order: list[int], fps: float,
            scale: float) -> list[str]:
    """The MOTION section's lines: frames of rot (N, J, 4) xyzw as ZXY Euler degrees in `order`,
    the root's position root_m (N, 3) times `scale` before its rotation."""
    n, n_joints = rot.shape[:2]
    euler = np.empty((n, n_joints, 3))
    for j in range(n_joints):
        euler[:, j] = Rotation.from_quat(rot[:, j]).as_euler(ROT_ORDER, degrees=True)
    cols = []
    for j in order:
        if parents[j] < 0:
            cols.append(root_m * scale)
        cols.append(euler[:, j])
    motion = np.concatenate(cols, axis=1)
    lines = ["MOTION", f"Frames: {n}", f"Frame Time: {1.0 / fps:.8f}"]
    return lines + [" ".join(f"{x:.5f}" for x in row) for row in motion]


def write_bvh(path: str | os.PathLike, names, parents, rest_local_m, rotations_xyzw, root_m,
              fps: float, scale: float = CM) -> Path:
    """names (J,), parents (J,), rest_local_m (J, 3); rotations_xyzw (N, J, 4) local; root_m (N, 3)
    the root joint's position; fps the frame rate. Written atomically."""
    parents = np.asarray(parents)
    order = _dfs(parents)
    lines = _hierarchy(list(names), parents, np.asarray(rest_local_m, float), order, scale)
    lines += _motion(parents, np.asarray(rotations_xyzw, float), np.asarray(root_m, float), order, fps, scale)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return Path(path)


def write_session_bvh(st: SessionTake, out: Path, options: EngineOptions | None = None) -> Path:
    """The engine format "bvh": the take sampled at every video frame (no options)."""
    _, rot, root = st.sample()
    return write_bvh(out, st.names, st.parents, st.rest_local_m, rot, root, st.fps)


@dataclass
class BvhJoint:
    name: str
    parent: int
    offset: np.ndarray
    channels: list[str] = field(default_factory=list)
    end_site: np.ndarray | None = None


@dataclass
class Bvh:
    joints: list[BvhJoint]
    frame_time: float
    motion: np.ndarray  # (frames, channels)

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.joints]

    @property
    def n_frames(self) -> int:
        return len(self.motion)

    def channel_slices(self) -> list[slice]:
        out, k = [], 0
        for j in self.joints:
            out.append(slice(k, k + len(j.channels)))
            k += len(j.channels)
        return out

    def forward_kinematics(self) -> np.ndarray:
        """(frames, joints, 3) world positions in the file's units, the standard BVH reading:
        p = p_parent + R_parent (offset); R = R_parent * R_local with R_local the product of the
        rotation channels in their listed order; the root's position channels are absolute (added
        to its OFFSET)."""
        n = self.n_frames
        J = len(self.joints)
        pos = np.zeros((n, J, 3))
        glob: list[Rotation] = []
        for j, (joint, sl) in enumerate(zip(self.joints, self.channel_slices())):
            vals = self.motion[:, sl]
            local = Rotation.identity(n)
            trans = np.zeros((n, 3))
            for c, ch in enumerate(joint.channels):
                axis = ch[0].lower()
                if ch.endswith("rotation"):
                    local = local * Rotation.from_euler(axis, vals[:, c:c + 1], degrees=True)
                else:
                    trans[:, "xyz".index(axis)] = vals[:, c]
            if joint.parent < 0:
                pos[:, j] = joint.offset + trans
                glob.append(local)
            else:
                pg = glob[joint.parent]
                pos[:, j] = pos[:, joint.parent] + pg.apply(joint.offset + trans)
                glob.append(pg * local)
        return pos


def read_bvh(path: str | os.PathLike) -> Bvh:
    """Parse a BVH file (any channel layout, nested End Sites). ValueError on malformed input."""
    tokens = Path(path).read_text().split()
    i = 0

    def take() -> str:
        nonlocal i
        if i >= len(tokens):
            raise ValueError(f"{path}: unexpected end of file")
        i += 1
        return tokens[i - 1]

    if take() != "HIERARCHY":
        raise ValueError(f"{path}: no HIERARCHY")
    joints: list[BvhJoint] = []
    stack: list[int] = []
    in_end = False
    while True:
        t = take()
        if t in ("ROOT", "JOINT"):
            joints.append(BvhJoint(take(), stack[-1] if stack else -1, np.zeros(3)))
        elif t == "End":
            take()  # "Site"
            in_end = True
        elif t == "{":
            if not in_end:
                stack.append(len(joints) - 1)
        elif t == "}":
            if in_end:
                in_end = False
            else:
                stack.pop()
        elif t == "OFFSET":
            v = np.array([float(take()) for _ in range(3)])
            if in_end:
                joints[stack[-1]].end_site = v
            else:
                joints[-1].offset = v
        elif t == "CHANNELS":
            joints[-1].channels = [take() for _ in range(int(take()))]
        elif t == "MOTION":
            break
        else:
            raise ValueError(f"{path}: unexpected token {t!r} in HIERARCHY")
    if take() != "Frames:":
        raise ValueError(f"{path}: no 'Frames:'")
    n = int(take())
    if (take(), take()) != ("Frame", "Time:"):
        raise ValueError(f"{path}: no 'Frame Time:'")
    ft = float(take())
    width = sum(len(j.channels) for j in joints)
    vals = np.array(tokens[i:], float)
    if len(vals) != n * width:
        raise ValueError(f"{path}: {len(vals)} motion values, expected {n} frames x {width} channels")
    return Bvh(joints, ft, vals.reshape(n, width))
