"""TODO docstring."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.export import glb
from pipeline.export.session_take import SessionTake
from pipeline.export.vrm import look_at_offset
from pipeline.export.vrm_expressions import preset_weights

VRMA_LOOK_PRESETS = ("lookUp", "lookDown", "lookLeft", "lookRight")  # not animatable in a .vrma


VRMA_EXPRESSION_MODES = ("custom", "preset", "both")


def gaze_yaw_pitch(rot_eyes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(yaw, pitch) radians of the mean gaze of the eyes' local rotations (N, E, 4) relative to
    the head. VRM's convention: yaw > 0 toward the avatar's left (+X), pitch > 0 down."""
    d = np.stack([Rotation.from_quat(rot_eyes[:, e]).apply([0.0, 0.0, 1.0])
                  for e in range(rot_eyes.shape[1])]).mean(0)
    yaw = np.arctan2(d[:, 0], d[:, 2])
    pitch = np.arctan2(-d[:, 1], np.hypot(d[:, 0], d[:, 2]))
    return yaw, pitch


def vrma_document(st: SessionTake, expressions: str = "custom") -> tuple[dict, bytes]:
    """The VRM Animation document (see the module docstring) and its binary buffer."""
    if expressions not in VRMA_EXPRESSION_MODES:
        raise ValueError(f"expressions must be one of {VRMA_EXPRESSION_MODES}, not {expressions!r}")
    b = glb.Builder("dhcap (VRM Animation 1.0)")
    doc = b.doc
    tk = st.take
    skip = {"leftEye", "rightEye"}
    bones = [j for j, n in enumerate(st.names) if n not in skip]
    node_of = {j: k for k, j in enumerate(bones)}
    nodes = []
    for j in bones:
        node = {"name": st.names[j], "translation": [float(x) for x in st.rest_local_m[j]]}
        kids = [node_of[c] for c in range(len(st.names)) if st.parents[c] == j and c in node_of]
        if kids:
            node["children"] = kids
        nodes.append(node)
    roots = [node_of[j] for j in bones if st.parents[j] < 0]

    times = np.asarray(tk.times_s, np.float32)
    t_acc = b.accessor(times, minmax=True)
    samplers, channels = [], []

    def animate(node: int, path: str, values: np.ndarray):
        samplers.append({"input": t_acc, "output": b.accessor(np.ascontiguousarray(values, np.float32)),
                         "interpolation": "LINEAR"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": node, "path": path}})

    rot = tk.joint_rotations.astype(np.float64)
    rot /= np.linalg.norm(rot, axis=-1, keepdims=True)
    for j in bones:
        animate(node_of[j], "rotation", rot[:, j])
    hips = st.index("hips")
    animate(node_of[hips], "translation", tk.root_translation_m)

    ext: dict = {"specVersion": "1.0",
                 "humanoid": {"humanBones": {st.names[j]: {"node": node_of[j]} for j in bones}}}
    expr: dict = {}
    weights = np.clip(tk.morph_weights.astype(np.float64), 0.0, 1.0)
    tracks: list[tuple[str, str, np.ndarray]] = []
    if expressions in ("custom", "both"):
        tracks += [("custom", name, weights[:, i]) for i, name in enumerate(st.target_names)]
    if expressions in ("preset", "both"):
        tracks += [("preset", name, w) for name, w in preset_weights(weights).items()
                   if name not in VRMA_LOOK_PRESETS]
    for kind, name, w in tracks:
        nodes.append({"name": f"expression.{kind}.{name}", "translation": [0.0, 0.0, 0.0]})
        roots.append(len(nodes) - 1)
        expr.setdefault(kind, {})[name] = {"node": len(nodes) - 1}
        animate(len(nodes) - 1, "translation", np.stack([w, np.zeros_like(w), np.zeros_like(w)], axis=1))
    if expr:
        ext["expressions"] = expr

    eyes = [st.index("leftEye"), st.index("rightEye")]
    yaw, pitch = gaze_yaw_pitch(rot[:, eyes])
    nodes.append({"name": "lookAt"})
    roots.append(len(nodes) - 1)
    look = Rotation.from_euler("YXZ", np.stack([yaw, pitch, np.zeros_like(yaw)], axis=1)).as_quat()
    animate(len(nodes) - 1, "rotation", look)
    ext["lookAt"] = {"node": len(nodes) - 1, "offsetFromHeadBone": look_at_offset(st)}

    doc["nodes"] = nodes
    doc["scenes"] = [{"name": "Scene", "nodes": roots}]
    doc["scene"] = 0
    doc["animations"] = [{"name": tk.name or st.name, "samplers": samplers, "channels": channels}]
    doc["extensionsUsed"] = ["VRMC_vrm_animation"]
    doc["extensions"] = {"VRMC_vrm_animation": ext}
    doc["extras"] = {"dhcap": {"source": st.name, "fps": st.fps, "expressions": expressions}}
    return b.finish()


def write_vrma(st: SessionTake, out: str | Path, expressions: str = "custom") -> Path:
    doc, blob = vrma_document(st, expressions)
    return glb.write_glb(out, doc, blob)
