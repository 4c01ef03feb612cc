"""Several cameras: calibration boards, calibrations and their file formats, the rig calibration
solver, time offsets between recordings, triangulation, and the fusion of several cameras'
tracks into one `Tracks`.

Calibrating (`python -m pipeline.board`, `python -m pipeline.calibrate`):
  calibration_board   the board: spec, detection in one image, printable page
  board_views         frames of videos / image folders / live cameras -> board detections
  calibration_solver  board detections -> Calibration (intrinsics, extrinsics, floor)
  bundle_adjustment   its least-squares refinement of the rig on the board's corners
  calibration         the Calibration / Camera types and their TOML / Qualisys files
  calibration_job     the whole run: sources -> calibration TOML + report JSON
Fusing a calibrated take (pipeline.session.multi_camera):
  time_offset         offset between two recordings from their motion
  synchronise         every camera on one clock (timestamps, motion, reprojection error)
  view_sampling       one camera's tracks read on the reference camera's timeline
  triangulation       points seen by several cameras -> 3D, outlier cameras dropped
  left_right_swaps    MediaPipe's left/right label swaps found and undone across cameras
  body_fusion         the triangulated body in the pose frame
  face_fusion         blendshapes, landmarks and head turn from the most frontal cameras
  fusion_report       the JSON summary of a fusion
  fusion              fuse_views: the steps above -> one Tracks
"""
