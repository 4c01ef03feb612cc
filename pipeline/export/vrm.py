"""VRM 1.0 avatar (.vrm) and VRM Animation (.vrma) of a session.

`avatar.vrm` is `avatar.glb` with the `VRMC_vrm` extension (specVersion 1.0) and without the
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
               `pipeline.vrm_expressions.PRESET_BINDS`.
  lookAt       type "bone" (the leftEye / rightEye joints turn), origin between the eyes, range
               maps that reproduce the avatar's own gaze range (25 degrees yaw, 20 pitch).
  firstPerson  the head mesh is third-person only; the body is "auto".

`take.vrma` (`VRMC_vrm_animation` 1.0): the skeleton's nodes in the T-pose, one animation with
the hips translation and every humanoid bone's rotation except the eyes (the spec reserves those
for lookAt), one node per expression whose translation.x is the weight, and a lookAt node whose
rotation is the gaze (yaw about Y, pitch about X, extrinsic ZXY) averaged over both eyes.
Expressions: "custom" (default) writes the 51 ARKit weights as custom expressions, which replay
exactly on avatar.vrm and on any VRM whose custom expressions carry ARKit names ("perfect sync");
"preset" writes the VRM presets computed from them (`pipeline.vrm_expressions.preset_weights`) for
other VRM avatars; "both" writes both (on avatar.vrm the two would add up: pick one for it).
Since every rest rotation is identity, the bone rotations are already the "normalized" local
rotations the VRM Animation spec expects.
"""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.export import glb
from pipeline.export.session_take import SessionTake
from pipeline.export.vrm_expressions import PRESET_BINDS

VRM_LICENSE_URL = "https://vrm.dev/licenses/1.0/"
# the avatar's own gaze range (pipeline.avatar.EYE_YAW_DEG / EYE_PITCH_DEG); the range maps are
# identities over it, so the lookAt yaw/pitch in degrees are the eye rotations
GAZE_YAW_DEG = 25.0
GAZE_PITCH_DEG = 20.0


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
    return {n.get("name"): i for i, n in enumerate(doc["nodes"]) if n.get("name")}


def look_at_offset(st: SessionTake) -> list[float]:
    """Between the eyes, relative to the head joint (rest frame = model frame), metres."""
    w = st.rest_world_m
    mid = 0.5 * (w[st.index("leftEye")] + w[st.index("rightEye")])
    return [round(float(x), 6) for x in mid - w[st.index("head")]]


def vrm_extension(doc: dict, st: SessionTake, meta: dict | None = None) -> dict:
    """The VRMC_vrm object for a document laid out by pipeline.gltf_export."""
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
    rng = lambda deg: {"inputMaxValue": deg, "outputScale": deg}  # noqa: E731
    mesh_nodes = [i for i, n in enumerate(doc["nodes"]) if "mesh" in n]
    return {
        "specVersion": "1.0",
        "meta": meta if meta is not None else default_meta(st.name),
        "humanoid": {"humanBones": bones},
        "firstPerson": {"meshAnnotations": [
            {"node": i, "type": "thirdPersonOnly" if i == head else "auto"} for i in mesh_nodes]},
        "lookAt": {"type": "bone", "offsetFromHeadBone": look_at_offset(st),
                   "rangeMapHorizontalInner": rng(GAZE_YAW_DEG), "rangeMapHorizontalOuter": rng(GAZE_YAW_DEG),
                   "rangeMapVerticalDown": rng(GAZE_PITCH_DEG), "rangeMapVerticalUp": rng(GAZE_PITCH_DEG)},
        "expressions": {"preset": preset, "custom": custom},
    }


def _add_extension(doc: dict, name: str, ext: dict) -> None:
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


def extension_json(path: str | Path, name: str) -> dict:
    """The named root extension of a .vrm / .vrma (for inspection and tests)."""
    doc, _ = glb.read_glb(path)
    return json.loads(json.dumps(doc.get("extensions", {}).get(name)))
