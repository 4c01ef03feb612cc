"""dhcap: video or webcams -> an animated digital human (.glb).

Sub-packages, by concern, from the bottom layer up (a module imports only its own package and
the layers below it; `tests/test_layout.py` checks this):

  core       errors, quiet native logs, model files and sample media, colour, the `Tracks`
             artifact and the landmark names, the `SkinnedMesh` type, drawing overlays
  tracking   MediaPipe (face, pose, hand landmarkers): frames -> `Tracks`
  face       canonical face, head space, face rig, head mesh, head texture, expression rig
  body       skeleton, kinematics, body solve, body mesh
  multicam   calibration boards, calibrations and their files, rig calibration, time offsets,
             triangulation, the fusion of several cameras
  export     the avatar's meshes and take -> glTF, VRM, VRMA, BVH, Live Link CSV, previews
  session    a whole take: one video, several cameras, batches -> a session folder
  live       the live take: threaded capture and tracking, monitors, VMC streaming

The modules directly in `pipeline/` are the command-line entry points (`python -m pipeline.X`):
each parses its arguments, calls one library function and reports.
`capture/` (frames in) and `models/` (learned models) sit beside `core` and import only it.
"""
