"""Frames in: video files, cameras and streams (threaded readers), time grouping of several
cameras, crash-safe segmented recording. Imports only `pipeline.core` of this project."""
