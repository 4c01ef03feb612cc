"""Which MediaPipe landmarkers run on a frame, so that looking for several people costs only when
several are in view.

`LandmarkerSource(kind)` ("face" or "pose") holds up to three landmarkers of a kind, each made on
first use: the one-result VIDEO landmarker (as before this module: its results on a one-person
take are unchanged), the several-results VIDEO landmarker (up to MAX_PEOPLE; MediaPipe then runs
its detector on every frame, about 16 ms more a frame for the pose on a 2-core x86 machine) and a
several-results IMAGE landmarker for checks. While one person is in view the one-result landmarker
runs and a check looks for others every CHECK_INTERVAL_S (every RECHECK_S while people are counted
at the start, pipeline.tracking.subject, or while the one result is not the subject); a check
that finds two or more switches to the several-results landmarker, which is used until at most
one person has been in view for SETTLE_S. Results are lists of `FaceResult` / `PoseResult`
(pipeline.tracking.results); times in seconds, ms integer milliseconds.

`PoseOnCrop` finds a body the landmarkers lost on a crop around where it was last seen: MediaPipe's
pose detector finds people by their face, so one seen from behind is easily lost among others
(Pose2Sim's multi-person camera 4: the several-people landmarker misses the man in 47 of 100
frames; a pose landmarker on a crop 2.5 times his last box finds a body in all 47).
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from pipeline.tracking.head_crop import crop_image, crop_to_frame_landmarks
from pipeline.tracking.mediapipe_tasks import MAX_PEOPLE, CropLandmarker, create_landmarker, mp_rgb_image
from pipeline.tracking.results import PoseResult, faces_of, poses_of

# One person in view: look for others this often (a newcomer waits at most this long). A check
# costs about one more pose inference (IMAGE mode, up to MAX_PEOPLE): once a second keeps such
# frames under 5 % of a live take's at 20 fps and more, out of its 95th latency percentile.
CHECK_INTERVAL_S = 1.0
RECHECK_S = 0.1         # the one result is not the subject (or people are counted): look again this often
SETTLE_S = 1.0          # several people in view: back to one-result tracking after this long with one
BODY_CROP_PER_BOX = 1.5  # crop side / the larger side of the lost body's head-shoulders-hips box
# MediaPipe's pose detector letterboxes the whole frame into its square input, so in a tall (or wide)
# frame people shrink by its aspect and are missed: on Pose2Sim's multi-person camera 3 (1088 x 1920,
# three people) a check on the whole frame finds one body, on its top or middle square tile two.
# Portrait frames at least this tall (height / width: a phone held upright) are also checked on
# square tiles from top to bottom when the whole frame shows fewer than two. Landscape frames are
# left as they were: on Sports2D's 16:9 demo the tiles find a third "person" (the statue) and the
# several-people landmarker then runs on 226 of 230 frames, keeping the subject in fewer of them
# (175 against 198): that trade needs its own measurements.
TILE_MIN_ASPECT = 1.5
TILE_STARTS = (0.0, 0.5, 1.0)  # where each tile starts, as a share of the room from top to bottom
# A body found on two tiles (they overlap) is one: its torso centres closer than this share of the
# larger torso's image size (shoulders' middle to hips' middle, or shoulder width).
SAME_BODY_TORSOS = 0.5
TORSO = (11, 12, 23, 24)  # MediaPipe's shoulders and hips


class LandmarkerSource:
    """The landmarkers of one kind and when each runs (see the module docstring)."""

    def __init__(self, kind: str, min_confidence: float, max_people: int = MAX_PEOPLE):
        self.kind = kind
        self.max_people = max_people
        self.min_confidence = min_confidence
        self.several_mode = False
        self.last_check_t = -np.inf
        self._calm_since: float | None = None
        self._landmarkers: dict = {}
        self.runs: Counter = Counter()   # frames each landmarker ran on: "one", "several", "check"
        self.last_one_ms = -1            # the frame (ms) the one-result landmarker last ran on
        self._ahead = None               # (ms, future) of a one-result run started ahead (`ahead`)

    def _landmarker(self, name: str):
        if name not in self._landmarkers:
            mode, count = {"one": ("video", 1), "several": ("video", self.max_people),
                           "check": ("image", self.max_people)}[name]
            self._landmarkers[name] = create_landmarker(self.kind, mode, self.min_confidence, count)
        return self._landmarkers[name]

    def load(self, *names: str) -> None:
        """Make the named landmarkers ("one", "several", "check") now rather than on first use."""
        for name in names:
            self._landmarker(name)

    def preload(self, blank_image, ms: int) -> None:
        """Make every landmarker this source may use and run each once on a blank image (their
        first inference sets up MediaPipe's graphs); counters and checks are left as they were."""
        names = ("one", "several", "check") if self.max_people > 1 else ("one",)
        for name in names:
            lm = self._landmarker(name)
            lm.detect(blank_image) if name == "check" else lm.detect_for_video(blank_image, ms)

    def _parse(self, result) -> list:
        return faces_of(result) if self.kind == "face" else poses_of(result)

    def one(self, image, ms: int) -> list:
        """The one-result VIDEO landmarker's result (a list of 0 or 1); the run started `ahead` on
        this frame when there is one."""
        self.runs["one"] += 1
        self.last_one_ms = ms
        ahead_ms, result = self.settle()  # also frees the landmarker when that run was for another frame
        if ahead_ms == ms:
            self.runs["one_ahead"] += 1
            return self._parse(result)
        return self._parse(self._landmarker("one").detect_for_video(image, ms))

    def ahead(self, image, ms: int, executor) -> None:
        """Start the one-result landmarker on this frame in `executor` (a thread: MediaPipe's
        inference leaves the GIL, so it runs beside the other kind's on a second core); `one` on
        the same frame takes its result. Results are those of running it in turn."""
        self.settle()
        self._ahead = (ms, executor.submit(self._landmarker("one").detect_for_video, image, ms))

    def settle(self) -> tuple[int | None, object]:
        """Wait for a run started ahead and not yet taken (a landmarker runs in one thread at a
        time): (its frame's ms, its raw result), or (None, None) when there is none."""
        ahead, self._ahead = self._ahead, None
        return (ahead[0], ahead[1].result()) if ahead is not None else (None, None)

    def several(self, image, ms: int) -> list:
        """Every face / body the several-results VIDEO landmarker finds (one-result when max_people is 1)."""
        if self.max_people == 1:
            return self.one(image, ms)
        self.runs["several"] += 1
        return self._parse(self._landmarker("several").detect_for_video(image, ms))

    def run(self, image, ms: int, t_s: float) -> list:
        """This frame's results in the current mode; several-results mode ends after SETTLE_S with
        at most one person."""
        if not self.several_mode:
            return self.one(image, ms)
        found = self.several(image, ms)
        if len(found) >= 2:
            self._calm_since = None
        elif self._calm_since is None:
            self._calm_since = t_s
        elif t_s - self._calm_since >= SETTLE_S:
            self.several_mode, self._calm_since = False, None
        return found

    def check_due(self, t_s: float) -> bool:
        return self.max_people > 1 and not self.several_mode and t_s - self.last_check_t >= CHECK_INTERVAL_S

    def recheck_allowed(self, t_s: float) -> bool:
        return self.max_people > 1 and not self.several_mode and t_s - self.last_check_t >= RECHECK_S

    def check(self, image, t_s: float, found: list) -> list:
        """Look for everybody (IMAGE mode); two or more switch to several-results mode and are
        returned, else this frame's one-result list `found` is kept (or the check's, when it has
        one and `found` none)."""
        self.runs["check"] += 1
        self.last_check_t = t_s
        everybody = self._parse(self._landmarker("check").detect(image))
        if len(everybody) < 2 and self.kind == "pose":
            everybody = self._check_tiles(image, everybody)
        if len(everybody) >= 2:
            self.several_mode, self._calm_since = True, None
            return everybody
        return found if found or not everybody else everybody

    def _check_tiles(self, image, found: list) -> list:
        """`found` (bodies on the whole frame) and the new ones the check landmarker finds on square
        tiles of a tall portrait frame (TILE_MIN_ASPECT), their image landmarks in whole-frame
        normalised coordinates; `found` itself for other frames."""
        rgb = image.numpy_view()
        h, w = rgb.shape[:2]
        side = min(w, h)
        if h < TILE_MIN_ASPECT * w:
            return found
        out = list(found)
        for start in TILE_STARTS:
            offset = int(round(start * (max(w, h) - side)))
            box = np.array([0, offset, side], np.float64)
            tile = rgb[int(box[1]):int(box[1]) + side, int(box[0]):int(box[0]) + side]
            for p in self._parse(self._landmarker("check").detect(mp_rgb_image(np.ascontiguousarray(tile)))):
                if not _inside_tile(p):
                    continue
                body = PoseResult(crop_to_frame_landmarks(p.image, box, (w, h)), p.world_m, p.visibility)
                if not any(_same_body(body, q, (w, h)) for q in out):
                    out.append(body)
        return out

    def close(self) -> None:
        self.settle()
        for lm in self._landmarkers.values():
            lm.close()
        self._landmarkers = {}


def _inside_tile(p: PoseResult) -> bool:
    """A body found on a tile counts only when its nose, shoulders and hips lie inside the tile: one
    cut by the tile's edge is part of a body seen whole elsewhere (Pose2Sim's camera 2, one man:
    such a part, 0.5+ torsos from his whole-frame body, counted a second person in 2 checks and
    switched 74 frames to the several-people landmarker)."""
    xy = p.image[[0, *TORSO], :2]
    return bool(np.all((xy >= 0.0) & (xy <= 1.0)))


def _torso_px(p: PoseResult, size) -> tuple[np.ndarray, float]:
    """(torso centre (2,) pixels, torso size pixels: the longer of mid-shoulders to mid-hips and
    the shoulder line) of a body."""
    px = p.image[list(TORSO), :2].astype(np.float64) * size
    length = max(np.linalg.norm(px[:2].mean(0) - px[2:].mean(0)), np.linalg.norm(px[0] - px[1]), 1.0)
    return px.mean(0), float(length)


def nearest_body(a: PoseResult, bodies: list, size, within: float) -> int | None:
    """Index of the body of `bodies` whose torso centre is nearest `a`'s, in units of that body's
    torso size, when it is within `within` of it; else None."""
    ca, _ = _torso_px(a, size)
    d = [np.linalg.norm(ca - c) / length for c, length in (_torso_px(b, size) for b in bodies)]
    k = int(np.argmin(d)) if d else None
    return k if k is not None and d[k] < within else None


def _same_body(a: PoseResult, b: PoseResult, size) -> bool:
    """Two results are one body: torso centres within SAME_BODY_TORSOS of the larger torso, or
    the torso centre of the tile's result `a` inside the box of all of b's landmarks (Pose2Sim's
    camera 2, one man: a tile read his legs as a second, smaller person, torso 106 px against his
    259, its centre 211 px below his)."""
    (ca, la), (cb, lb) = _torso_px(a, size), _torso_px(b, size)
    px = b.image[:, :2].astype(np.float64) * size
    inside = bool(np.all((ca >= px.min(0)) & (ca <= px.max(0))))
    return inside or bool(np.linalg.norm(ca - cb) < SAME_BODY_TORSOS * max(la, lb))


class PoseOnCrop(CropLandmarker):
    """A one-body VIDEO pose landmarker of its own on a square crop around a box (made on first use)."""

    def __init__(self, min_confidence: float):
        super().__init__("pose", min_confidence)

    def track(self, frame_bgr: np.ndarray, ms: int, box_px: np.ndarray) -> PoseResult | None:
        """The body on the crop around box_px (x0, y0, x1, y1, frame pixels), its image landmarks
        in whole-frame normalised coordinates (world landmarks and visibility as MediaPipe gives
        them: they do not depend on where the body is in the image); None when none is found."""
        self.frames += 1
        size = frame_bgr.shape[1], frame_bgr.shape[0]
        centre = (np.asarray(box_px[:2], np.float64) + box_px[2:]) / 2
        side = BODY_CROP_PER_BOX * max(box_px[2] - box_px[0], box_px[3] - box_px[1], 1.0)
        crop = np.r_[centre - side / 2, side]
        found = poses_of(self.detect(crop_image(frame_bgr, crop), ms))
        if not found:
            return None
        p = found[0]
        return PoseResult(crop_to_frame_landmarks(p.image, crop, size), p.world_m, p.visibility)
