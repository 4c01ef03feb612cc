"""MediaPipe Tasks (face, pose and hand landmarkers), configured in one place: frames -> `Tracks`."""
