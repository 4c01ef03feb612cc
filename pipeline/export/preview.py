"""Pictures: the posed avatar drawn without a GPU, landmark overlays, and the session contact sheet.

The avatar renderer is deliberately simple (flat-shaded triangles drawn far to near with OpenCV,
a painter's algorithm): enough to see pose, expression and proportions in a README or a session
folder on a machine with no display or OpenGL.

In: meshes in glTF model space (metres, Y up, facing +Z) with linear RGB vertex colours in [0, 1];
the contact sheet reads the avatar back from the exported .glb and takes the session's `Tracks`.
Out: BGR uint8 images (H, W, 3).
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.body.kinematics import joint_world_matrices, rest_world, skin
from pipeline.core.mesh import SkinnedMesh
from pipeline.core.overlay import draw_landmarks
from pipeline.export.gltf import Take, read_avatar

LIGHT_DIR = np.array([0.3, 0.5, 1.0]) / np.linalg.norm([0.3, 0.5, 1.0])  # unit, from the front, above, right
AMBIENT = 0.35  # shade of a face turned away from the light; 1 - AMBIENT is the diffuse share
HEAD_MESHES = ("Head", "Hair")  # drawn alone in the contact sheet's last row
FILL = 0.9  # the avatar fills this fraction of the picture (a 5 % margin on each side)
DISPLAY_GAMMA = 2.2  # vertex colours are linear, the picture is sRGB (approximated by this gamma)
SUBPIXEL_BITS = 4  # cv2.fillConvexPoly draws at 1/16 pixel precision
GREY = 0.7  # linear grey of a mesh without vertex colours
MIN_EXTENT_M = 1e-6  # metres: a flat bounding box does not divide by zero
MIN_NORMAL = 1e-12  # length of a degenerate triangle's normal before normalising
BORDER_BGR = (20, 20, 20)  # the contact sheet's padding colour
LABEL_ORIGIN_PX = (6, 20)  # where the time label's baseline starts
LABEL_SCALE = 0.55  # OpenCV font scale of the time label
LABEL_BGR = (255, 255, 255)  # the time label's colour
GAP_PX = 4  # padding between the contact sheet's columns


def draw_meshes(meshes: list[tuple[np.ndarray, np.ndarray, np.ndarray]], size=(360, 480),
                center=None, height_m: float | None = None, yaw_deg: float = 0.0,
                background=(40, 40, 46)) -> np.ndarray:
    """Orthographic view along -Z (the avatar faces the viewer) of [(positions, triangles,
    rgb colours per vertex in [0,1])]. Returns an (H, W, 3) BGR image."""
    w, h = size
    rot = Rotation.from_euler("y", yaw_deg, degrees=True).as_matrix()
    allp = np.vstack([m[0] for m in meshes]) @ rot.T
    lo, hi = allp.min(0), allp.max(0)
    c = ((lo + hi) / 2 if center is None else np.asarray(center) @ rot.T)
    # fit the bounding box (or the given height) into the picture with a 5 % margin
    extent = np.maximum(hi - lo, MIN_EXTENT_M)
    scale = FILL * (h / height_m if height_m else min(h / extent[1], w / extent[0]))
    img = np.full((h, w, 3), background, np.uint8)
    tris, depth, cols = [], [], []
    for pos, tri, col in meshes:
        q = pos @ rot.T - c
        v = q[tri]
        n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
        front = n[:, 2] > 0  # back-face culling (counter-clockwise = outward)
        n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), MIN_NORMAL)
        shade = AMBIENT + (1 - AMBIENT) * np.clip(n @ LIGHT_DIR, 0, 1)
        rgb = col[tri].mean(1) * shade[:, None]
        xy = np.stack([w / 2 + v[..., 0] * scale, h / 2 - v[..., 1] * scale], -1)
        tris.append(xy[front])
        depth.append(v[front, :, 2].mean(1))
        cols.append(rgb[front])
    tris, depth, cols = np.concatenate(tris), np.concatenate(depth), np.concatenate(cols)
    srgb = np.clip(cols, 0, 1) ** (1 / DISPLAY_GAMMA)
    for k in np.argsort(depth):  # far to near
        cv2.fillConvexPoly(img, np.round(tris[k] * (1 << SUBPIXEL_BITS)).astype(np.int32),
                           tuple(int(255 * x) for x in srgb[k][::-1]), cv2.LINE_AA, shift=SUBPIXEL_BITS)
    return img


def posed_avatar(meshes: list[SkinnedMesh], parents, rest_local_m, take: Take, k: int):
    """[(positions, triangles, rgb)] of every mesh at key k of the take."""
    rest = rest_world(parents, rest_local_m)
    jw = joint_world_matrices(parents, rest_local_m, take.joint_rotations[k], take.root_translation_m[k])
    out = []
    for part in meshes:
        wts = take.morph_weights[k] if part.targets is not None else None
        col = part.color[:, :3] if part.color is not None else np.full((len(part.positions), 3), GREY)
        tris = part.triangles
        if part.texture is not None and part.texture.shape[-1] == 4:  # cut-out cards (hair): both sides
            tris = np.vstack([tris, tris[:, ::-1]])
        out.append((skin(part, jw, rest, wts), tris, col))
    return out


def contact_sheet(frame_at, tracks, glb_path, n: int = 5, tile_h: int = 300) -> np.ndarray:
    """n evenly spaced instants: the video frame with its landmarks above the avatar (whole, then
    its meshes named "Head" and "Hair" alone) as read back from the exported .glb, BGR.
    frame_at(i) returns frame i of the take (BGR) or None: then the landmarks are drawn on a dark
    background (pictures for the docs must not carry other people's footage)."""
    _, parents, rest_local_m, meshes, take = read_avatar(glb_path)
    idx = np.linspace(0, tracks.n_frames - 1, n + 2)[1:-1].round().astype(int)
    cols = []
    for i in idx:
        frame = frame_at(int(i))
        if frame is None:
            frame = np.zeros((tracks.image_size[1], tracks.image_size[0], 3), np.uint8)
        frame = draw_landmarks(frame, tracks.face_landmarks[i] if tracks.face_valid[i] else None,
                               tracks.pose_image[i] if tracks.pose_valid[i] else None,
                               tracks.pose_visibility[i] if tracks.pose_valid[i] else None)
        fw = int(round(frame.shape[1] * tile_h / frame.shape[0]))
        top = cv2.resize(frame, (fw, tile_h), interpolation=cv2.INTER_AREA)
        posed = posed_avatar(meshes, parents, rest_local_m, take, int(i))
        avatar_size = (max(fw, tile_h * 2 // 3), tile_h)  # at least a 2:3 portrait tile
        body = draw_meshes(posed, size=avatar_size)
        head = draw_meshes([p for p, m in zip(posed, meshes) if m.name in HEAD_MESHES], size=avatar_size)
        width = max(top.shape[1], body.shape[1])
        col = [cv2.copyMakeBorder(x, 0, 0, 0, width - x.shape[1], cv2.BORDER_CONSTANT, value=BORDER_BGR)
               for x in (top, body, head)]
        cv2.putText(col[0], f"t={tracks.t_s[i]:.2f}s", LABEL_ORIGIN_PX, cv2.FONT_HERSHEY_SIMPLEX, LABEL_SCALE,
                    LABEL_BGR, 1, cv2.LINE_AA)
        cols.append(np.vstack(col))
    h = max(c.shape[0] for c in cols)
    return np.hstack([cv2.copyMakeBorder(c, 0, h - c.shape[0], 0, GAP_PX, cv2.BORDER_CONSTANT, value=BORDER_BGR)
                      for c in cols])
