"""Run inside Blender: import a BVH with Blender's own importer and report what it built.

    blender -b --factory-startup --python-exit-code 1 --python tests/blender_bvh_check.py -- IN.bvh OUT.json F1,F2

Reports the armature's bones, the action's frame range, the scene's frame rate, and each bone's
head in world space at the given frames (Blender's Z-up frame, the importer's defaults: BVH Y up,
-Z forward, scale 0.01 = centimetres to metres).
"""
import builtins
import json
import sys

import bpy

# Debian's Blender 3.4 runs on Python 3.11, where open(..., 'rU') (used by its BVH importer,
# io_anim_bvh/import_bvh.py) is an error; drop the obsolete 'U' flag inside this process only.
_open = builtins.open


def _open_compat(file, mode="r", *args, **kwargs):
    if isinstance(mode, str) and "U" in mode:
        mode = mode.replace("U", "")
    return _open(file, mode, *args, **kwargs)


builtins.open = _open_compat

src, out, frames = sys.argv[sys.argv.index("--") + 1:][:3]
bpy.ops.wm.read_factory_settings(use_empty=True)
res = bpy.ops.import_anim.bvh(filepath=src, global_scale=0.01, frame_start=1, use_fps_scale=False,
                              update_scene_fps=True, update_scene_duration=True, rotate_mode="NATIVE",
                              axis_forward="-Z", axis_up="Y")
arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
report = {"result": sorted(res), "armatures": len(arms)}
if arms:
    arm = arms[0]
    act = arm.animation_data.action if arm.animation_data else None
    sc = bpy.context.scene
    report.update(bones=[b.name for b in arm.data.bones],
                  frame_range=list(act.frame_range) if act else None,
                  fps=sc.render.fps / sc.render.fps_base, frame_end=sc.frame_end,
                  fcurves=len(act.fcurves) if act else 0)
    heads = {}
    for f in [int(x) for x in frames.split(",") if x]:
        sc.frame_set(f)
        heads[str(f)] = {b.name: list(arm.matrix_world @ b.head) for b in arm.pose.bones}
    report["heads"] = heads
with open(out, "w") as fh:
    json.dump(report, fh)
