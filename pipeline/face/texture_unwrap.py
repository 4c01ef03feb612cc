"""Unwrap the face from video frames or photos into the head mesh's UV space.

Inputs: a take's `Tracks` and frame_at(i) -> BGR frame i (or None), or one BGR photo. Output: an
`Unwrap` (an (S, S, 3) uint8 RGB texture over MediaPipe's canonical face UVs, v = 0 at the top,
the subject's right eye on the left; the best visibility of each texel; the seen mask; stats).

The steps live in three modules, re-exported here:

* `texture_raster`: the canonical UV triangles rasterised (`uv_raster`, `face_region`) and how
  well one view sees each triangle and texel (`triangle_visibility`, `texel_visibility`);
* `texture_views`: which frames are used (`select_frames`: no blink, no strong expression, no
  motion blur, spread over the take and head poses), read, cropped, weighted, with hands masked
  out (`views_from_take`, `hand_masks`, `reference_views`), and photos (`detect_face`);
* `texture_blend`: each view warped through its landmarks (`warp_view`), occluders the hand
  detector missed rejected (`view_agreement`), the views blended best first (`unwrap_views`).
"""
from __future__ import annotations

import numpy as np

from pipeline.core.errors import InputError
from pipeline.face.texture_blend import (
    Unwrap,
    unwrap_views,
)
from pipeline.face.texture_raster import (
    TEXTURE_SIZE,
)
from pipeline.face.texture_views import (
    View,
    detect_face,
    reference_views,
    views_from_take,
)

# Landmarks whose UVs the tests and the docs check (canonical mesh indices).
KEY_LANDMARKS = {"right_eye_outer": 33, "right_eye_inner": 133, "left_eye_inner": 362,
                 "left_eye_outer": 263, "nose_tip": 1, "mouth_right": 61, "mouth_left": 291,
                 "upper_lip": 13, "lower_lip": 14, "chin": 152, "forehead": 10}


def unwrap_take(tracks, frame_at, size: int = TEXTURE_SIZE, verts_m: np.ndarray | None = None,
                max_views: int = 40, extra_views: list[View] | None = None) -> Unwrap:
    """The face texture of a take: select, read, weight and blend its frames (plus any views of
    other cameras given in extra_views)."""
    views, stats = views_from_take(tracks, frame_at, max_views)
    res = unwrap_views(views + list(extra_views or []), size, verts_m,
                       reference=reference_views(tracks, frame_at))
    res.stats = {**stats, **res.stats}
    return res


def unwrap_image(image_bgr: np.ndarray, size: int = TEXTURE_SIZE) -> Unwrap:
    """The face texture of one photo (InputError when no face is found)."""
    v = detect_face(image_bgr)
    if v is None:
        raise InputError("no face found in the image")
    return unwrap_views([v], size)
