"""Run with a Python that has `bpy` (Blender as a module, PyPI) and `bpy-vrm-format` (the VRM Add-on
for Blender, PyPI): import a .vrm with the add-on's importer, then a .vrma onto it, and report.

    python tests/bpy_vrm_check.py AVATAR.vrm TAKE.vrma OUT.json T1,T2,...

Reports the humanoid bone map, the expressions (binds resolved to shape keys), the lookAt, the
action's frame range and fps, and every bone's head in world space (Blender: Z up) at the given
times (seconds).
"""
import json
import sys

import bpy
import io_scene_vrm

vrm, vrma, out, times = sys.argv[1:5]
io_scene_vrm.register()
bpy.ops.wm.read_factory_settings(use_empty=True)
if not hasattr(bpy.ops.import_scene, "vrm"):
    io_scene_vrm.register()
r = {"import_vrm": sorted(bpy.ops.import_scene.vrm(filepath=vrm))}
arm = [o for o in bpy.data.objects if o.type == "ARMATURE"][0]
ext = arm.data.vrm_addon_extension
v1 = ext.vrm1
r["spec_version"] = ext.spec_version
r["human_bones"] = {}
for prop in v1.humanoid.human_bones.bl_rna.properties:
    b = getattr(v1.humanoid.human_bones, prop.identifier, None)
    node = getattr(b, "node", None)
    if node is not None and getattr(node, "bone_name", ""):
        r["human_bones"][prop.identifier] = node.bone_name
ex = v1.expressions


def binds(e):
    return [[b.node.mesh_object_name, b.index, round(b.weight, 6)] for b in e.morph_target_binds]


r["preset"] = {p.identifier: binds(getattr(ex.preset, p.identifier)) for p in ex.preset.bl_rna.properties
               if hasattr(getattr(ex.preset, p.identifier, None), "morph_target_binds")}
r["custom"] = {c.custom_name: binds(c) for c in ex.custom}
r["look_at"] = {"type": v1.look_at.type, "offset": list(v1.look_at.offset_from_head_bone)}
r["meta"] = {"name": v1.meta.vrm_name, "authors": [a.value for a in v1.meta.authors]}
r["shape_keys"] = {o.name: [k.name for k in o.data.shape_keys.key_blocks]
                   for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys}
bpy.context.view_layer.objects.active = arm
r["import_vrma"] = sorted(bpy.ops.import_scene.vrma(filepath=vrma, armature_object_name=arm.name))
act = arm.animation_data.action if arm.animation_data else None
sc = bpy.context.scene
fps = sc.render.fps / sc.render.fps_base
r["action"] = {"frame_range": list(act.frame_range) if act else None, "fps": fps}
r["heads"] = {}
for t in [float(x) for x in times.split(",") if x]:
    f = 1.0 + t * fps
    sc.frame_set(int(f), subframe=f - int(f))
    r["heads"][str(t)] = {pb.name: list(arm.matrix_world @ pb.head) for pb in arm.pose.bones}
with open(out, "w") as fh:
    json.dump(r, fh)
