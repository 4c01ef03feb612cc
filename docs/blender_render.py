"""Render frames of an avatar.glb in Blender (Cycles, CPU), as Blender's own glTF importer sees it:
the textured head close up and the whole body.

    blender -b --factory-startup --python docs/blender_render.py -- avatar.glb OUT_PREFIX T1 [T2 ...]

writes OUT_PREFIX_head_<k>.png and OUT_PREFIX_body_<k>.png for the times T (seconds). Used by
docs/make_pictures.py; needs the numpy.bool shim for Debian's Blender 3.4 (see README).
"""
import math
import sys

import numpy

if not hasattr(numpy, "bool"):
    numpy.bool = bool  # Blender 3.4's glTF importer uses the alias numpy 1.24 removed

import bpy  # noqa: E402
from mathutils import Vector  # noqa: E402

argv = sys.argv[sys.argv.index("--") + 1:]
glb, prefix, times = argv[0], argv[1], [float(t) for t in argv[2:]]

bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_scene.gltf(filepath=glb)
scene = bpy.context.scene
fps = scene.render.fps / scene.render.fps_base
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 24
scene.cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y = 480, 480
scene.render.film_transparent = False
world = bpy.data.worlds.new("World")
scene.world = world
world.use_nodes = True
world.node_tree.nodes["Background"].inputs[0].default_value = (0.16, 0.15, 0.15, 1)
world.node_tree.nodes["Background"].inputs[1].default_value = 0.6


def light(name, loc, energy):
    data = bpy.data.lights.new(name, "AREA")
    data.energy, data.size = energy, 1.5
    obj = bpy.data.objects.new(name, data)
    obj.location = loc
    obj.rotation_euler = (Vector((0, 1.5, 0)) - Vector(loc)).to_track_quat("-Z", "Y").to_euler()
    scene.collection.objects.link(obj)


light("key", (1.2, 2.2, 2.5), 320)
light("fill", (-1.8, 1.6, 2.0), 140)
cam_data = bpy.data.cameras.new("cam")
cam = bpy.data.objects.new("cam", cam_data)
scene.collection.objects.link(cam)
scene.camera = cam
head = bpy.data.objects["Head"]
arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
head_bone = arm.pose.bones["head"]


def aim(target: Vector, distance: float, lens: float):
    cam.location = target + Vector((0.0, -distance, 0.0))  # glTF +Z (front) is Blender -Y
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)
    cam_data.lens = lens


for k, t in enumerate(times):
    scene.frame_set(int(round(t * fps)))
    bpy.context.view_layer.update()
    target = arm.matrix_world @ head_bone.head + Vector((0, 0, 0.08))
    aim(target, 0.75, 85)
    scene.render.filepath = f"{prefix}_head_{k}.png"
    bpy.ops.render.render(write_still=True)
    hips = arm.matrix_world @ arm.pose.bones["hips"].head
    aim(Vector((hips.x, hips.y, (target.z + 0.12) / 2)), 3.4, 50)
    scene.render.filepath = f"{prefix}_body_{k}.png"
    bpy.ops.render.render(write_still=True)
