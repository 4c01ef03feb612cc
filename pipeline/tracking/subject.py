"""One subject chosen among the people in view and kept through the take, frame by frame (causal:
batch and live capture share it).

`SubjectTracker.update(poses, frame, t_s)` takes every body MediaPipe found in a frame (normalised
image landmarks, visibility) and returns the index of the subject's, or None. The subject is
chosen the first time people appear ("auto": the most central and largest; N: the N-th from the
left, 1-based, in the frame showing the most people in the first CHOICE_WINDOW_S after people
appear) and kept by identity: a body is the subject's when its position, size and appearance (a
colour histogram of its torso) match the subject's last ones. Nobody else is taken while the
subject is out of view; after a long absence the subject is found again anywhere in the frame, by
size and appearance (never by size alone).
`FaceChooser.choose(faces, ...)` picks the subject's face among the faces found: the one on the
subject's head, or with no body in view, the one nearest the previous face (the largest first).
Pixels are frame pixels, times seconds.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.core.tracks import POSE
from pipeline.tracking.head_crop import Head
from pipeline.tracking.results import FaceResult, PoseResult

AUTO = "auto"
SUBJECT_HELP = ("who is the subject when several people are in view: 'auto' (default) the most central "
                "and largest person when people first appear, or N, the N-th person from the left "
                "(1 = leftmost) in the frame showing the most people in the first half second after "
                "people appear; kept through the take, nobody else is taken")
# N: people are counted over this long from their first appearance and the N-th is chosen in the
# frame showing the most (MediaPipe finds some of them a few frames late: Pose2Sim's multi-person
# camera 1 shows one person at first, two from frame 8 at 60 fps); frames until the choice is
# made have no subject.
CHOICE_WINDOW_S = 0.5

VISIBLE = 0.5             # MediaPipe visibility (0..1) of a landmark that counts as seen
# Head, shoulders and hips: the box that places and sizes a person (arms and legs move too much).
CORE_LANDMARKS = list(range(0, 13)) + [POSE["left_hip"], POSE["right_hip"]]
# Position gate (in subject box diagonals): a person walks well under a body size a second.
GATE_BASE_SIZES = 0.5
GATE_SIZES_PER_S = 5.0
CONTINUITY_S = 0.25       # the subject seen this recently: matched by position first
REACQUIRE_ANYWHERE_S = 2.0  # out of view this long: found again anywhere, by size and appearance
RECENT_S = 1.0              # lost this recently: worth looking for where it was (PoseOnCrop)
MAX_SIZE_RATIO_NEAR = 2.0   # box size change allowed while followed (occlusion by the frame's edge)
MAX_SIZE_RATIO_FAR = 3.0    # and when found again after an absence
# Appearance: Bhattacharyya distance (0 same, 1 disjoint) of torso colour histograms (HIST_BINS
# below). The same person against the subject's models (its first histogram and the blended one,
# the nearer) in wolfgang, p2s_cam01, Sports2D (frames 0-150) and Pose2Sim's multi-person demo
# (cameras 1-4, the man while followed): p95 0.12-0.44, max 0.33-0.48, outliers 0.60-0.61 (one
# frame of camera 2; wolfgang, where the torso is seen in 2 frames only). Two different people:
# the woman against the man's first histogram in camera 3 of that demo 0.67-0.76 (where
# MediaPipe's one-body tracker slides from him onto her), other pairs in cameras 1, 2, 4 min 0.87.
MAX_APPEARANCE_NEAR = 0.6   # followed: at the same person's outliers, below other people's min 0.67
MAX_APPEARANCE_FAR = 0.5    # found again after an absence: stricter (above the same person's max 0.48)
APPEARANCE_WEIGHT = 2.0     # cost per unit of appearance distance, against gate units
APPEARANCE_RATE = 0.1       # share of a new histogram blended into the subject's model
APPEARANCE_EVERY_S = 0.2    # the subject's histogram model is refreshed this often (when seen)
HIST_BINS = (6, 3, 3)       # hue, saturation, value bins (finer bins split one person's torso)
HIST_RANGES = [0, 180, 0, 256, 0, 256]
MIN_TORSO_PX = 64           # torso area (pixels) below which no histogram is taken
MIN_TORSO_IN_VIEW = 0.3     # share of the torso inside the frame below which its colours are not judged
TORSO_DEPTH_PER_SHOULDERS = 1.0  # hips unseen: the torso spans this many shoulder widths down
# Faces: a face sits on a body's head when its nose tip is within this many face widths (cheek to
# cheek) of the body's nose (pose landmark 0). Measured on the subject's own face: whole-frame
# faces (wolfgang, single_face, carphone, face_noface) median 0.05-0.11, max 0.17; head-crop faces
# of Sports2D (15 px wide) median 0.21, max 0.57. Two people's heads side by side are about two
# face widths apart.
FACE_ON_HEAD = 1.0
FACE_NOSE, FACE_CHEEKS = 1, (234, 454)  # MediaPipe face mesh: nose tip, outermost cheek points


def parse_subject(text: str) -> str | int:
    """`--subject` as argparse reads it: "auto" or a positive person number."""
    t = str(text).strip().lower()
    if t == AUTO:
        return AUTO
    try:
        n = int(t)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be auto or a person number 1, 2, ... (from the left), not {text!r}")
    return n


@dataclass
class Person:
    """One body in a frame: its core box (x0, y0, x1, y1) px, centre (2,) px, size (box diagonal, px)."""

    index: int
    box: np.ndarray
    centre: np.ndarray
    size: float
    pose: PoseResult
    hist: np.ndarray | None = None   # torso colours (torso_histogram), once asked for
    hist_known: bool = False


def person_of(index: int, pose: PoseResult, image_size) -> Person:
    """The Person of MediaPipe's index-th body: the box of its core landmarks, clipped to the frame
    (seen or not: a box of the seen ones jumps as visibilities cross the threshold)."""
    w, h = image_size
    pts = np.clip(pose.image[CORE_LANDMARKS, :2].astype(np.float64) * (w, h), 0, (w, h))
    box = np.r_[pts.min(0), pts.max(0)]
    return Person(index, box, (box[:2] + box[2:]) / 2, max(float(np.linalg.norm(box[2:] - box[:2])), 1.0), pose)


def torso_histogram(frame_bgr: np.ndarray, pose: PoseResult) -> np.ndarray | None:
    """Normalised HSV histogram (HIST_BINS) of the torso: the quadrilateral of the shoulders and
    hips (hips unseen: a shoulder-wide box below the shoulders); None when too little is seen
    (shoulders unseen, or less than MIN_TORSO_IN_VIEW of the torso inside the frame: a desk
    webcam's bottom edge leaves a strip whose colours change from frame to frame)."""
    h, w = frame_bgr.shape[:2]
    px = pose.image[:, :2].astype(np.float64) * (w, h)
    ls, rs, lh, rh = (POSE[k] for k in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    if min(pose.visibility[ls], pose.visibility[rs]) < VISIBLE:
        return None
    if min(pose.visibility[lh], pose.visibility[rh]) >= VISIBLE:
        quad = px[[ls, rs, rh, lh]]
    else:
        down = np.array([0.0, TORSO_DEPTH_PER_SHOULDERS * np.linalg.norm(px[ls] - px[rs])])
        quad = np.array([px[ls], px[rs], px[rs] + down, px[ls] + down])
    x0, y0 = np.maximum(np.floor(quad.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(quad.max(0)).astype(int), (w, h))
    if (x1 - x0) * (y1 - y0) < MIN_TORSO_PX:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(mask, np.round(quad - (x0, y0)).astype(np.int32), 255)
    (ax, ay), (bx, by) = quad[2] - quad[0], quad[3] - quad[1]
    area = 0.5 * abs(ax * by - ay * bx)  # the quadrilateral's (half its diagonals' cross product), in or out of view
    if cv2.countNonZero(mask) < max(MIN_TORSO_PX, MIN_TORSO_IN_VIEW * area):
        return None
    hsv = cv2.cvtColor(frame_bgr[y0:y1, x0:x1], cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], mask, list(HIST_BINS), HIST_RANGES).astype(np.float32)
    return hist / max(float(hist.sum()), 1e-9)


def appearance_distance(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Bhattacharyya distance of two histograms (0 same .. 1 disjoint); None when one is missing."""
    if a is None or b is None:
        return None
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def initial_choice(people: list[Person], choice: str | int, image_size) -> Person | None:
    """The subject among the people of the frame it is chosen in (at least one; N: at least N):
    "auto" the most central and largest (size relative to the largest, times closeness to the
    frame's centre), N the N-th from the left."""
    if choice != AUTO:
        return sorted(people, key=lambda p: p.centre[0])[choice - 1]  # image_size not needed
    w, h = image_size
    half_diag = np.hypot(w, h) / 2
    biggest = max(p.size for p in people)
    return max(people, key=lambda p: p.size / biggest
               * (1 - np.linalg.norm(p.centre - (w / 2, h / 2)) / half_diag))


class SubjectTracker:
    """Chooses the subject and follows it; see the module docstring."""

    def __init__(self, choice: str | int = AUTO):
        self.choice = choice
        self.chosen: dict | None = None   # how and when the subject was chosen (meta["subject"])
        self.last: Person | None = None   # the subject when last seen
        self.last_t = -np.inf
        self.model: np.ndarray | None = None   # appearance histogram, blended over time
        self.first_model: np.ndarray | None = None
        self.model_t = -np.inf
        self.reacquired = 0               # times found again after more than CONTINUITY_S out of view
        self.first_seen_t: float | None = None  # when people first appeared
        self._most: tuple = ([], None)    # (people, t_s) of the first frame with the most since (choice N)

    def update(self, poses: list[PoseResult], frame_bgr: np.ndarray, t_s: float) -> int | None:
        """Index in `poses` of the subject's body, or None (nobody chosen yet, or out of view).
        Calling it again for the same frame with other bodies is allowed (a miss changes nothing)."""
        size = frame_bgr.shape[1], frame_bgr.shape[0]
        people = [person_of(i, p, size) for i, p in enumerate(poses)]
        if self.chosen is None:
            return self._choose(people, frame_bgr, t_s)
        pick = self._match(people, frame_bgr, t_s)
        return None if pick is None else self._follow(pick, frame_bgr, t_s)

    def _choose(self, people: list[Person], frame_bgr: np.ndarray, t_s: float) -> int | None:
        """The first choice of the subject; returns its index in this frame, or None.

        "auto": as soon as people appear. N: CHOICE_WINDOW_S after they first appeared, among the
        people of the window's first frame with the most of them (kept with their torso colours);
        the subject is then followed from there. Fewer than N in the window: the first later
        frame with at least N.
        """
        if not people:
            return None
        if self.first_seen_t is None:
            self.first_seen_t = t_s
        if self.choice == AUTO:
            return self._start(people, initial_choice(people, AUTO, (frame_bgr.shape[1], frame_bgr.shape[0])),
                               frame_bgr, t_s)
        if t_s - self.first_seen_t < CHOICE_WINDOW_S:
            if len(people) > len(self._most[0]):
                for p in people:
                    p.hist, p.hist_known = torso_histogram(frame_bgr, p.pose), True
                self._most = (people, t_s)
            return None
        crowd, t_crowd = self._most
        if len(crowd) >= self.choice:
            self._start(crowd, initial_choice(crowd, self.choice, None), frame_bgr, t_crowd)
            pick = self._match(people, frame_bgr, t_s)
            if pick is None:
                return None
            self.last_t = t_s  # chosen in an earlier frame of the window, never lost: no reacquisition
            return self._follow(pick, frame_bgr, t_s)
        if len(people) < self.choice:
            return None
        return self._start(people, initial_choice(people, self.choice, None), frame_bgr, t_s)

    def _start(self, people: list[Person], pick: Person, frame_bgr: np.ndarray, t_s: float) -> int:
        """The subject is `pick` among `people`, seen at t_s; returns its index."""
        order = sorted(people, key=lambda p: p.centre[0]).index(pick) + 1
        self.chosen = {"choice": self.choice, "at_s": round(float(t_s), 4), "people": len(people),
                       "from_left": order}
        self._keep(pick, frame_bgr, t_s, refresh=True)
        return pick.index

    def _follow(self, pick: Person, frame_bgr: np.ndarray, t_s: float) -> int:
        """The subject matched as `pick` at t_s; returns its index."""
        if t_s - self.last_t > CONTINUITY_S:
            self.reacquired += 1
        self._keep(pick, frame_bgr, t_s, refresh=t_s - self.model_t >= APPEARANCE_EVERY_S)
        return pick.index

    def _match(self, people: list[Person], frame_bgr: np.ndarray, t_s: float) -> Person | None:
        """The person matching the subject (lowest cost within the gates), or None."""
        gap = t_s - self.last_t
        near = gap <= REACQUIRE_ANYWHERE_S
        followed = gap <= CONTINUITY_S
        best, best_cost = None, np.inf
        for p in people:
            ratio = p.size / self.last.size
            shift = np.linalg.norm(p.centre - self.last.centre) / self.last.size
            max_ratio = MAX_SIZE_RATIO_NEAR if followed else MAX_SIZE_RATIO_FAR
            if not 1 / max_ratio <= ratio <= max_ratio:
                continue
            if near and shift > GATE_BASE_SIZES + GATE_SIZES_PER_S * gap:
                continue
            app = self._appearance(frame_bgr, p)
            if app is None and not near:
                continue  # anywhere in the frame, size alone could take somebody else: wait
            if app is not None and app > (MAX_APPEARANCE_NEAR if followed else MAX_APPEARANCE_FAR):
                continue
            cost = (shift if near else 0.0) + abs(np.log(ratio)) + APPEARANCE_WEIGHT * (app or 0.0)
            if cost < best_cost:
                best, best_cost = p, cost
        return best

    def _appearance(self, frame_bgr: np.ndarray, p: Person) -> float | None:
        """Distance of a person's torso colours to the subject's (the nearer of its first and its
        blended histogram); None when either is unknown. Caches the person's histogram."""
        if not p.hist_known:
            p.hist, p.hist_known = torso_histogram(frame_bgr, p.pose), True
        d = [x for x in (appearance_distance(p.hist, self.model), appearance_distance(p.hist, self.first_model))
             if x is not None]
        return min(d) if d else None

    def _keep(self, p: Person, frame_bgr: np.ndarray, t_s: float, refresh: bool) -> None:
        """Remember the subject as seen now; blend its torso colours into the model when asked."""
        self.last, self.last_t = p, t_s
        if not refresh:
            return
        hist = p.hist if p.hist_known else torso_histogram(frame_bgr, p.pose)
        if hist is None:
            return
        self.model_t = t_s
        if self.model is None:
            self.model, self.first_model = hist.copy(), hist.copy()
        else:
            self.model = (1 - APPEARANCE_RATE) * self.model + APPEARANCE_RATE * hist

    def counting(self, t_s: float) -> bool:
        """People are still being counted: none chosen yet, or less than CHOICE_WINDOW_S since they
        first appeared (MediaPipe finds some a few frames late; the tracker looks for everybody
        more often then)."""
        return self.chosen is None or t_s - self.first_seen_t < CHOICE_WINDOW_S

    def recently_seen(self, t_s: float) -> bool:
        """The subject was seen less than RECENT_S ago (but not at t_s)."""
        return self.last is not None and 0 < t_s - self.last_t <= RECENT_S

    def report(self) -> dict:
        """How the subject was chosen and kept (for meta["subject"])."""
        return {**(self.chosen or {"choice": self.choice, "at_s": None}), "reacquired": self.reacquired}


def face_width_px(face: FaceResult, image_size) -> float:
    """Cheek to cheek width of a face, pixels."""
    a, b = (face.landmarks[i, :2].astype(np.float64) * image_size for i in FACE_CHEEKS)
    return max(float(np.linalg.norm(a - b)), 1.0)


def head_distance(face: FaceResult, pose: PoseResult, image_size) -> float:
    """Distance from a face's nose tip to a body's nose, in face widths."""
    nose_face = face.landmarks[FACE_NOSE, :2].astype(np.float64) * image_size
    nose_body = pose.image[POSE["nose"], :2].astype(np.float64) * image_size
    return float(np.linalg.norm(nose_face - nose_body)) / face_width_px(face, image_size)


class FaceChooser:
    """Picks the subject's face among the faces of a frame (see the module docstring)."""

    def __init__(self):
        self.previous: np.ndarray | None = None  # (2,) px, the last chosen face's nose tip

    def choose(self, faces: list[FaceResult], subject: PoseResult | None, head: Head | None,
               others: list[PoseResult], image_size) -> FaceResult | None:
        """The subject's face, or None: faces on another body's head are never taken; with the
        subject's head in view, only the face on it; otherwise the face nearest the previous one
        (the largest when there was none)."""
        size = np.asarray(image_size, np.float64)
        faces = [f for f in faces if not any(head_distance(f, p, size) <= FACE_ON_HEAD for p in others)]
        if head is not None and subject is not None:
            dist = [head_distance(f, subject, size) for f in faces]
            faces = [f for f, d in sorted(zip(faces, dist), key=lambda x: x[1]) if d <= FACE_ON_HEAD]
        elif self.previous is not None:
            faces = sorted(faces, key=lambda f: np.linalg.norm(f.landmarks[FACE_NOSE, :2] * size - self.previous))
        else:
            faces = sorted(faces, key=lambda f: -face_width_px(f, size))
        if not faces:
            return None
        self.previous = faces[0].landmarks[FACE_NOSE, :2].astype(np.float64) * size
        return faces[0]

    def on_head(self, face: FaceResult, subject: PoseResult, image_size) -> bool:
        """A face (e.g. from the head crop) sits on the subject's head."""
        return head_distance(face, subject, np.asarray(image_size, np.float64)) <= FACE_ON_HEAD

    def remember(self, face: FaceResult, image_size) -> None:
        """The chosen face of a frame (from elsewhere, e.g. the head crop)."""
        self.previous = face.landmarks[FACE_NOSE, :2].astype(np.float64) * np.asarray(image_size, np.float64)
