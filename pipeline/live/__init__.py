"""The live take, engine apart from user interface:
  options   what a take is asked to do (CaptureOptions, LiveOptions) and why it ends (StopRequest)
  take      the engine: camera threads -> recorders, and the freshest group -> the tracker (LiveTake)
  tracker   time grouping and one tracker worker per camera (LiveTracker)
  monitor   the user interface: console counters and the preview window
  finish    the take's export: per-camera tracks, the primary camera's session, the manifest
  run       one take from start to end (run_capture, `python -m pipeline.capture`)
  vmc       VMC protocol streaming, live and of processed sessions"""
