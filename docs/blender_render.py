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

CYCLES_SAMPLES = 24  # path-tracing samples per pixel: little noise at a few seconds per frame
RESOLUTION_PX = 480  # square renders
BACKGROUND_RGBA = (0.16, 0.15, 0.15, 1)  # world colour, linear
BACKGROUND_STRENGTH = 0.6  # world light strength
LIGHT_SIZE_M = 1.5  # area lights' edge length
LIGHT_AIM_M = (0, 1.5, 0)  # the point both lights face (Blender frame: Z up, -Y front; metres)
KEY_LIGHT = ((1.2, 2.2, 2.5), 320)  # position (m), power (W)
FILL_LIGHT = ((-1.8, 1.6, 2.0), 140)
HEAD_AIM_ABOVE_M = 0.08  # the head shot aims this far above the head joint (mid-face)
HEAD_DISTANCE_M, HEAD_LENS_MM = 0.75, 85  # head close-up: portrait lens
BODY_DISTANCE_M, BODY_LENS_MM = 3.4, 50  # whole body: normal lens
BODY_AIM_LOW_M = 0.12  # the body shot aims midway between the head target and this height (m, the shins)

argv = sys.argv[sys.argv.index("--") + 1:]
glb, prefix, times = argv[0], argv[1], [float(t) for t in argv[2:]]

bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_scene.gltf(filepath=glb)
scene = bpy.context.scene
fps = scene.render.fps / scene.render.fps_base
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = CYCLES_SAMPLES
scene.cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y = RESOLUTION_PX, RESOLUTION_PX
scene.render.film_transparent = False
world = bpy.data.worlds.new("World")
scene.world = world
world.use_nodes = True
world.node_tree.nodes["Background"].inputs[0].default_value = BACKGROUND_RGBA
world.node_tree.nodes["Background"].inputs[1].default_value = BACKGROUND_STRENGTH


def light(name, loc, energy):
    """An area light at loc (m) of `energy` W aimed at LIGHT_AIM_M."""
    data = bpy.data.lights.new(name, "AREA")
    data.energy, data.size = energy, LIGHT_SIZE_M
    obj = bpy.data.objects.new(name, data)
    obj.location = loc
    obj.rotation_euler = (Vector(LIGHT_AIM_M) - Vector(loc)).to_track_quat("-Z", "Y").to_euler()
    scene.collection.objects.link(obj)


light("key", *KEY_LIGHT)
light("fill", *FILL_LIGHT)
cam_data = bpy.data.cameras.new("cam")
cam = bpy.data.objects.new("cam", cam_data)
scene.collection.objects.link(cam)
scene.camera = cam
head = bpy.data.objects["Head"]
arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
head_bone = arm.pose.bones["head"]


def aim(target: Vector, distance: float, lens: float):
    """The camera `distance` m in front of `target`, looking at it horizontally, `lens` mm."""
    cam.location = target + Vector((0.0, -distance, 0.0))  # glTF +Z (front) is Blender -Y
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)
    cam_data.lens = lens


for k, t in enumerate(times):
    scene.frame_set(int(round(t * fps)))
    bpy.context.view_layer.update()
    target = arm.matrix_world @ head_bone.head + Vector((0, 0, HEAD_AIM_ABOVE_M))
    aim(target, HEAD_DISTANCE_M, HEAD_LENS_MM)
    scene.render.filepath = f"{prefix}_head_{k}.png"
    bpy.ops.render.render(write_still=True)
    hips = arm.matrix_world @ arm.pose.bones["hips"].head
    aim(Vector((hips.x, hips.y, (target.z + BODY_AIM_LOW_M) / 2)), BODY_DISTANCE_M, BODY_LENS_MM)
    scene.render.filepath = f"{prefix}_body_{k}.png"
    bpy.ops.render.render(write_still=True)
