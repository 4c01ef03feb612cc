"""Several cameras: calibration boards, calibrations and their file formats, the rig calibration
solver, time offsets between recordings, triangulation, and the fusion of several cameras'
tracks into one `Tracks`."""
