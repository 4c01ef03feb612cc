"""VRM 1.0 avatar (.vrm) of a session (the VRM Animation, take.vrma, is `pipeline.export.vrma`'s).

In: the session's take (`SessionTake`, read back from avatar.glb) and optional meta overrides.
Out: `avatar.vrm`: `avatar.glb` with the `VRMC_vrm` extension (specVersion 1.0) and without the
animation (VRM 1.0 lists `animations` among the glTF items a VRM does not use; the motion goes to
`take.vrma`). Everything else (meshes, skin, morph targets, names) is byte-for-byte the same data.

  humanoid     every skeleton joint is a VRM humanoid bone of the same name (hips, spine, chest,
               neck, head, left/rightEye, shoulders, arms, hands, legs, feet, toes); the rest pose
               is the VRM T-pose (faces +Z, arms along X, soles on Y = 0, rest rotations identity).
  meta         name (the take), authors, the VRM Public License 1.0 URL and its usage permissions;
               the defaults are the most restrictive ones (the avatar is a real person's likeness)
               and every field can be overridden (`meta=` / --vrm-author ...).
  expressions  custom: the 51 ARKit shapes, each bound to its morph target of `Head` (weight 1);
               preset: happy, angry, sad, relaxed, surprised, aa, ih, ou, ee, oh, blink,
               blinkLeft/Right, lookUp/Down/Left/Right bound to ARKit targets as in
               `pipeline.export.vrm_expressions.PRESET_BINDS`.
  lookAt       type "bone" (the leftEye / rightEye joints turn), origin between the eyes, range
               maps that reproduce the avatar's own gaze range (25 degrees yaw, 20 pitch).
  firstPerson  the head mesh is third-person only; the body is "auto".
"""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.export import glb
from pipeline.export.session_take import EngineOptions, SessionTake
from pipeline.export.vrm_expressions import PRESET_BINDS
from pipeline.face.weights import EYE_PITCH_DEG, EYE_YAW_DEG

VRM_LICENSE_URL = "https://vrm.dev/licenses/1.0/"
# the avatar's own gaze range, degrees; the range maps are identities over it, so the lookAt
# yaw/pitch in degrees are the eye rotations
GAZE_YAW_DEG = EYE_YAW_DEG
GAZE_PITCH_DEG = EYE_PITCH_DEG
OFFSET_DECIMALS = 6  # the lookAt offset in metres, rounded to micrometres


def default_meta(take_name: str, **overrides) -> dict:
    """VRMC_vrm.meta with the required fields and the most restrictive permissions."""
    meta = {
        "name": take_name or "dhcap avatar",
        "version": "1",
        "authors": ["dhcap user"],
        "copyrightInformation": "",
        "references": [],
        "licenseUrl": VRM_LICENSE_URL,
        "avatarPermission": "onlyAuthor",
        "allowExcessivelyViolentUsage": False,
        "allowExcessivelySexualUsage": False,
        "commercialUsage": "personalNonProfit",
        "allowPoliticalOrReligiousUsage": False,
        "allowAntisocialOrHateUsage": False,
        "creditNotation": "required",
        "allowRedistribution": False,
        "modification": "prohibited",
    }
    meta.update({k: v for k, v in overrides.items() if v is not None})
    if not meta.get("copyrightInformation"):
        meta.pop("copyrightInformation")
    if not meta.get("references"):
        meta.pop("references")
    return meta


def _node_index(doc: dict) -> dict[str, int]:
    """{node name: node index} of the named nodes."""
    return {n.get("name"): i for i, n in enumerate(doc["nodes"]) if n.get("name")}


def look_at_offset(st: SessionTake) -> list[float]:
    """Between the eyes, relative to the head joint (rest frame = model frame), metres."""
    w = st.rest_world_m
    mid = 0.5 * (w[st.index("leftEye")] + w[st.index("rightEye")])
    return [round(float(x), OFFSET_DECIMALS) for x in mid - w[st.index("head")]]


def _range_map(deg: float) -> dict:
    """A lookAt range map that is the identity over +-deg degrees."""
    return {"inputMaxValue": deg, "outputScale": deg}


def vrm_extension(doc: dict, st: SessionTake, meta: dict | None = None) -> dict:
    """The VRMC_vrm object for a document laid out by pipeline.export.gltf."""
    idx = _node_index(doc)
    bones = {name: {"node": idx[name]} for name in st.names}
    head_nodes = [i for i, n in enumerate(doc["nodes"]) if "mesh" in n
                  and doc["meshes"][n["mesh"]].get("extras", {}).get("targetNames")]
    if len(head_nodes) != 1:
        raise ValueError("expected exactly one mesh with named morph targets (the head)")
    head = head_nodes[0]
    targets = list(doc["meshes"][doc["nodes"][head]["mesh"]]["extras"]["targetNames"])

    def expression(binds: dict[str, float]) -> dict:
        return {"morphTargetBinds": [{"node": head, "index": targets.index(t), "weight": float(w)}
                                     for t, w in binds.items() if t in targets],
                "isBinary": False, "overrideBlink": "none", "overrideLookAt": "none",
                "overrideMouth": "none"}

    preset = {name: expression(binds) for name, binds in PRESET_BINDS.items()}
    custom = {t: expression({t: 1.0}) for t in targets}
    mesh_nodes = [i for i, n in enumerate(doc["nodes"]) if "mesh" in n]
    return {
        "specVersion": "1.0",
        "meta": meta if meta is not None else default_meta(st.name),
        "humanoid": {"humanBones": bones},
        "firstPerson": {"meshAnnotations": [
            {"node": i, "type": "thirdPersonOnly" if i == head else "auto"} for i in mesh_nodes]},
        "lookAt": {"type": "bone", "offsetFromHeadBone": look_at_offset(st),
                   "rangeMapHorizontalInner": _range_map(GAZE_YAW_DEG),
                   "rangeMapHorizontalOuter": _range_map(GAZE_YAW_DEG),
                   "rangeMapVerticalDown": _range_map(GAZE_PITCH_DEG),
                   "rangeMapVerticalUp": _range_map(GAZE_PITCH_DEG)},
        "expressions": {"preset": preset, "custom": custom},
    }


def _add_extension(doc: dict, name: str, ext: dict) -> None:
    """Add a root extension and list it in extensionsUsed."""
    used = doc.setdefault("extensionsUsed", [])
    if name not in used:
        used.append(name)
    doc.setdefault("extensions", {})[name] = ext


def write_vrm(st: SessionTake, out: str | Path, meta: dict | None = None) -> Path:
    """avatar.vrm from the session's avatar.glb (see the module docstring)."""
    doc, blob = glb.read_glb(st.glb)
    doc, blob = glb.without_animations(doc, blob)
    doc["asset"]["generator"] = "dhcap (VRM 1.0)"
    _add_extension(doc, "VRMC_vrm", vrm_extension(doc, st, meta))
    return glb.write_glb(out, doc, blob)


def write_session_vrm(st: SessionTake, out: Path, options: EngineOptions) -> Path:
    """The engine format "vrm": avatar.vrm with the default meta and options.vrm_meta's overrides."""
    return write_vrm(st, out, default_meta(st.name, **(options.vrm_meta or {})))


def extension_json(path: str | Path, name: str) -> dict:
    """The named root extension of a .vrm / .vrma (for inspection and tests)."""
    doc, _ = glb.read_glb(path)
    return json.loads(json.dumps(doc.get("extensions", {}).get(name)))
