"""VRM Animation 1.0 (.vrma) of a session's take, for any VRM 1.0 avatar.

In: the session's take (`SessionTake`, read back from avatar.glb); which expressions to write.
Out: `take.vrma` (`VRMC_vrm_animation` 1.0): the skeleton's nodes in the T-pose, one animation with
the hips translation (metres) and every humanoid bone's rotation except the eyes (the spec
reserves those for lookAt), one node per expression whose translation.x is the weight, and a
lookAt node whose rotation is the gaze (yaw about Y, pitch about X, extrinsic ZXY) averaged over
both eyes. Keys at the take's stored times (seconds), LINEAR.
Expressions: "custom" (default) writes the 51 ARKit weights as custom expressions, which replay
exactly on avatar.vrm and on any VRM whose custom expressions carry ARKit names ("perfect sync");
"preset" writes the VRM presets computed from them (`pipeline.export.vrm_expressions.preset_weights`)
for other VRM avatars; "both" writes both (on avatar.vrm the two would add up: pick one for it).
Since every rest rotation is identity, the bone rotations are already the "normalized" local
rotations the VRM Animation spec expects.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.export import glb
from pipeline.export.session_take import EngineOptions, SessionTake
from pipeline.export.vrm import look_at_offset
from pipeline.export.vrm_expressions import preset_weights

GENERATOR = "dhcap (VRM Animation 1.0)"
VRMA_LOOK_PRESETS = ("lookUp", "lookDown", "lookLeft", "lookRight")  # not animatable in a .vrma
VRMA_EXPRESSION_MODES = ("custom", "preset", "both")
EYE_BONES = ("leftEye", "rightEye")  # not animated as bones: the spec moves the eyes by lookAt
GAZE_REST = (0.0, 0.0, 1.0)  # an eye's rest gaze direction: +Z, where the avatar faces
LOOK_AT_EULER = "YXZ"  # yaw about Y, then pitch about X (intrinsic): the spec's extrinsic ZXY


def gaze_yaw_pitch(rot_eyes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(yaw, pitch) radians of the mean gaze of the eyes' local rotations (N, E, 4) relative to
    the head. VRM's convention: yaw > 0 toward the avatar's left (+X), pitch > 0 down."""
    d = np.stack([Rotation.from_quat(rot_eyes[:, e]).apply(list(GAZE_REST))
                  for e in range(rot_eyes.shape[1])]).mean(0)
    yaw = np.arctan2(d[:, 0], d[:, 2])
    pitch = np.arctan2(-d[:, 1], np.hypot(d[:, 0], d[:, 2]))
    return yaw, pitch


class _Animation:
    """The samplers and channels of one LINEAR animation whose samplers share one time accessor."""

    def __init__(self, b: glb.Builder, times_s: np.ndarray):
        self.b = b
        self.input = b.accessor(np.asarray(times_s, np.float32), minmax=True)
        self.samplers: list[dict] = []
        self.channels: list[dict] = []

    def animate(self, node: int, path: str, values: np.ndarray) -> None:
        """Key `path` of `node` with values (K, width), stored as float32."""
        self.samplers.append({"input": self.input, "output": self.b.accessor(np.ascontiguousarray(values, np.float32)),
                              "interpolation": "LINEAR"})
        self.channels.append({"sampler": len(self.samplers) - 1, "target": {"node": node, "path": path}})


def _skeleton_nodes(st: SessionTake) -> tuple[list[int], dict[int, int], list[dict], list[int]]:
    """(the animated joints, {joint: node index}, their nodes in the T-pose, the root nodes)."""
    bones = [j for j, n in enumerate(st.names) if n not in EYE_BONES]
    node_of = {j: k for k, j in enumerate(bones)}
    nodes = []
    for j in bones:
        node = {"name": st.names[j], "translation": [float(x) for x in st.rest_local_m[j]]}
        kids = [node_of[c] for c in range(len(st.names)) if st.parents[c] == j and c in node_of]
        if kids:
            node["children"] = kids
        nodes.append(node)
    roots = [node_of[j] for j in bones if st.parents[j] < 0]
    return bones, node_of, nodes, roots


def _expression_tracks(st: SessionTake, expressions: str) -> list[tuple[str, str, np.ndarray]]:
    """[(kind "custom" / "preset", expression name, (K,) weight in [0, 1])] to write."""
    weights = np.clip(st.take.morph_weights.astype(np.float64), 0.0, 1.0)
    tracks: list[tuple[str, str, np.ndarray]] = []
    if expressions in ("custom", "both"):
        tracks += [("custom", name, weights[:, i]) for i, name in enumerate(st.target_names)]
    if expressions in ("preset", "both"):
        tracks += [("preset", name, w) for name, w in preset_weights(weights).items()
                   if name not in VRMA_LOOK_PRESETS]
    return tracks


def _add_expressions(anim: _Animation, nodes: list[dict], roots: list[int], tracks) -> dict:
    """One root node per expression track, its weight keyed on translation.x; the extension's
    "expressions" object ({kind: {name: {"node": i}}}, empty without tracks)."""
    expr: dict = {}
    for kind, name, w in tracks:
        nodes.append({"name": f"expression.{kind}.{name}", "translation": [0.0, 0.0, 0.0]})
        roots.append(len(nodes) - 1)
        expr.setdefault(kind, {})[name] = {"node": len(nodes) - 1}
        anim.animate(len(nodes) - 1, "translation", np.stack([w, np.zeros_like(w), np.zeros_like(w)], axis=1))
    return expr


def _add_look_at(anim: _Animation, nodes: list[dict], roots: list[int], st: SessionTake,
                 rot: np.ndarray) -> dict:
    """The root node "lookAt" keyed with the mean gaze of the eyes in rot (K, J, 4) xyzw; the
    extension's "lookAt" object."""
    yaw, pitch = gaze_yaw_pitch(rot[:, [st.index(e) for e in EYE_BONES]])
    nodes.append({"name": "lookAt"})
    roots.append(len(nodes) - 1)
    look = Rotation.from_euler(LOOK_AT_EULER, np.stack([yaw, pitch, np.zeros_like(yaw)], axis=1)).as_quat()
    anim.animate(len(nodes) - 1, "rotation", look)
    return {"node": len(nodes) - 1, "offsetFromHeadBone": look_at_offset(st)}


def vrma_document(st: SessionTake, expressions: str = "custom") -> tuple[dict, bytes]:
    """The VRM Animation document (see the module docstring) and its binary buffer."""
    if expressions not in VRMA_EXPRESSION_MODES:
        raise ValueError(f"expressions must be one of {VRMA_EXPRESSION_MODES}, not {expressions!r}")
    b = glb.Builder(GENERATOR)
    tk = st.take
    bones, node_of, nodes, roots = _skeleton_nodes(st)
    anim = _Animation(b, tk.times_s)
    rot = tk.joint_rotations.astype(np.float64)
    rot /= np.linalg.norm(rot, axis=-1, keepdims=True)
    for j in bones:
        anim.animate(node_of[j], "rotation", rot[:, j])
    anim.animate(node_of[st.index("hips")], "translation", tk.root_translation_m)
    ext: dict = {"specVersion": "1.0",
                 "humanoid": {"humanBones": {st.names[j]: {"node": node_of[j]} for j in bones}}}
    expr = _add_expressions(anim, nodes, roots, _expression_tracks(st, expressions))
    if expr:
        ext["expressions"] = expr
    ext["lookAt"] = _add_look_at(anim, nodes, roots, st, rot)

    doc = b.doc
    doc["nodes"] = nodes
    doc["scenes"] = [{"name": "Scene", "nodes": roots}]
    doc["scene"] = 0
    doc["animations"] = [{"name": tk.name or st.name, "samplers": anim.samplers, "channels": anim.channels}]
    doc["extensionsUsed"] = ["VRMC_vrm_animation"]
    doc["extensions"] = {"VRMC_vrm_animation": ext}
    doc["extras"] = {"dhcap": {"source": st.name, "fps": st.fps, "expressions": expressions}}
    return b.finish()


def write_vrma(st: SessionTake, out: str | Path, expressions: str = "custom") -> Path:
    """take.vrma (see the module docstring), written atomically."""
    doc, blob = vrma_document(st, expressions)
    return glb.write_glb(out, doc, blob)


def write_session_vrma(st: SessionTake, out: Path, options: EngineOptions) -> Path:
    """The engine format "vrma": take.vrma with options.vrma_expressions."""
    return write_vrma(st, out, options.vrma_expressions)
