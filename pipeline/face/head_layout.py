"""The head mesh's fixed layout: vertex regions, the canonical landmark contours it is built
around, its UV tiles and its default skin colour.

Nothing here is computed; `pipeline.face.head_mesh` (the public entry) re-exports these names.
Indices are MediaPipe canonical face mesh vertex ids (0..467; 468..477 are the irises of the
478-landmark model). UV tiles are (u0, v0, u1, v1) in the unit texture square, v = 0 at the top.
Colours are linear RGB in [0, 1].
"""
from __future__ import annotations

# --- regions (HeadMesh.region values) -----------------------------------------------------------
FACE = 0        # the 468 face landmark vertices
SCALP = 1       # skull shell above the jaw line level
NECK = 2        # shell below the jaw-angle level (under the chin, nape) and the neck tube
MOUTH = 3       # mouth bag (inner lip seam copies and the cavity)
EYE_LEFT = 4    # subject's left eyeball (+X)
EYE_RIGHT = 5   # subject's right eyeball (-X)
EYE_SOCKET = 6  # the pockets behind the eye openings (both sides)
REGION_NAMES = {FACE: "face", SCALP: "scalp", NECK: "neck", MOUTH: "mouth",
                EYE_LEFT: "eye_left", EYE_RIGHT: "eye_right", EYE_SOCKET: "eye_socket"}

N_FACE = 468    # face landmarks that are mesh vertices (the head's first vertices)

# --- landmark contours (canonical face mesh indices) --------------------------------------------
# Eyelid margins, subject's left eye (+X) and right eye (-X), as closed loops.
LEFT_EYE_RING = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_EYE_RING = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
EYE_RINGS = (LEFT_EYE_RING, RIGHT_EYE_RING)  # indexed by eye side: 0 = left (+X), 1 = right
# Inner lip contours, from the subject's right mouth corner (78, -X) to the left one (308).
LIP_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIP_LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
MOUTH_RING = LIP_UPPER_INNER + LIP_LOWER_INNER[-2:0:-1]  # closed loop, 20 vertices
# Jaw angles (gonion area) on the face oval: the SCALP / NECK split height.
JAW_ANGLES = (58, 288, 172, 397)
# MediaPipe's 478-landmark model: 468..472 and 473..477 are the irises (centre first). Which is
# which side is decided by proximity to the eyelid rings, not assumed.
IRIS_CENTRES = (468, 473)
N_LANDMARKS_WITH_IRISES = 478

# --- UV tiles (u0, v0, u1, v1), outside the canonical face oval ----------------------------------
UV_TILES = {
    "scalp_neck": (0.005, 0.005, 0.155, 0.155),
    "mouth": (0.845, 0.005, 0.995, 0.155),
    "eye_right": (0.005, 0.845, 0.080, 0.920),
    "eye_left": (0.080, 0.845, 0.155, 0.920),
    "socket_right": (0.005, 0.920, 0.080, 0.995),
    "socket_left": (0.080, 0.920, 0.155, 0.995),
}

# Polar charts (eyeball, socket, mouth bag) in [-1, 1]^2: the rim sits at this share of the
# tile's half-size, so bilinear filtering never reaches the next tile.
CHART_RIM = 0.98

SKIN_RGB = (0.8, 0.6, 0.5)  # default skin vertex colour (linear RGB); sockets are shaded from it
