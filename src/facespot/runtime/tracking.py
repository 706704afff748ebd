"""Faces followed across video frames, so that a face stays covered through missed detections.

A detector misses a face now and then (motion blur, a turned head, a face shrinking out of its
range); when blurring video, each such miss shows the face for a frame. :class:`FaceTracker`
links detections into tracks by the distance between each track's predicted box (constant
velocity in centre and log-size) and the detections, relative to the face's size (IoU fails
for a small face in a fast pan: it moves more than its width per frame), continues a track
with weaker detections than it takes to start one (ByteTrack's idea: a face already being
followed needs less evidence), *holds* a track through up to ``hold`` frames without a
detection (its box predicted and grown a little per frame), and starts over at a shot change
(:func:`is_cut`), so boxes never leak into the next shot. A track seen once is held only
``hold_new`` frames (none by default): many one-off detections are not faces, and holding
each as long as a real face multiplied the blurred wall (measured).

:class:`CoverPlanner` turns the tracks into the boxes to cover on each frame, with a delay of a
few frames: once a face is confirmed (detected ``confirm`` times within its hold), the
``lookback`` frames before its first detection (where it was already there, only smaller or
blurrier) are covered too, and a gap between two detections of one track is covered by the
interpolated boxes as well as the predicted ones.

The same tracker gives ``facespot detect VIDEO --json`` a stable ``track`` id per face.
Model-dependent settings (score thresholds, and the cover's margin) come from the packaged
model's measured blur operating point (:func:`facespot.runtime.packaged.blur_point`); the rest
are defaults here, chosen with ``benchmarks/anonymize_video.py``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from facespot.errors import FacespotError

SIGNATURE_SIZE = (32, 18)  # width, height of the thumbnail compared for shot changes


@dataclass
class TrackSettings:
    """How faces are followed and covered.

    ``threshold``: a detection at or above it starts a track (and is covered); ``sizes``: lower
    thresholds for smaller faces, ``((height, threshold), ...)`` by increasing height: a face
    less than ``height`` pixels high starts a track at that ``threshold`` (a detector's false
    faces at low scores are mostly large boxes, its true small faces score low: measured);
    ``keep``: the lowest score that continues a track, for faces of ``threshold`` (None: the
    same), scaled alike for the other sizes; ``gate``: the largest distance between a
    detection's centre and a track's predicted centre, in face sizes, that links them (doubled
    while a track's motion is unknown: seen once); ``hold``: frames a confirmed track is kept
    (predicted) after its last detection, ``hold_new`` the same for a track detected once;
    ``confirm``: detections that confirm a track; ``lookback``: frames before a confirmed
    track's first detection also covered; ``grow``: box growth per held frame (a fraction of
    its size, for the prediction's uncertainty); ``cut``: the :func:`cut_score` above which a
    shot change resets every track; ``every``: run the detector on every k-th frame only
    (tracks carry the frames between)."""

    threshold: float = 0.5
    sizes: tuple[tuple[float, float], ...] = ()
    keep: float | None = None
    gate: float = 0.8
    hold: int = 3
    hold_new: int = 0
    confirm: int = 2
    lookback: int = 2
    grow: float = 0.03
    cut: float = 0.1
    every: int = 1

    def check(self) -> "TrackSettings":
        self.sizes = tuple((float(h), float(t)) for h, t in self.sizes)
        for t in [self.threshold] + [t for _, t in self.sizes]:
            if not 0.0 <= t <= 1.0:
                raise FacespotError(f"threshold must be between 0 and 1, got {t}")
        if list(self.sizes) != sorted(self.sizes) or any(h <= 0 for h, _ in self.sizes):
            raise FacespotError(f"per-size thresholds must be (height, threshold) pairs by increasing height, got {self.sizes}")
        if self.keep is not None and not 0.0 <= self.keep <= self.threshold:
            raise FacespotError(f"the keep threshold must be between 0 and the threshold ({self.threshold}), got {self.keep}")
        if min(self.hold, self.hold_new, self.lookback) < 0 or self.confirm < 1:
            raise FacespotError(f"hold and lookback are frame counts (>= 0), got {self.hold} and {self.lookback}")
        if self.every < 1:
            raise FacespotError(f"detection every k-th frame needs k >= 1, got {self.every}")
        if not self.gate > 0.0:
            raise FacespotError(f"the tracking gate must be positive, got {self.gate}")
        return self

    def start(self, box: Sequence[float]) -> float:
        """The score at which a detection of this box starts a track (is blurred)."""
        h = float(box[3]) - float(box[1])
        for height, threshold in self.sizes:
            if h < height:
                return threshold
        return self.threshold

    def kept(self, box: Sequence[float]) -> float:
        """The score at which a detection of this box continues a track."""
        ratio = 1.0 if self.keep is None or self.threshold <= 0 else self.keep / self.threshold
        return self.start(box) * ratio

    @property
    def low(self) -> float:
        """The score the detector must run at: the lowest keep threshold of any size."""
        ratio = 1.0 if self.keep is None or self.threshold <= 0 else self.keep / self.threshold
        return min([self.threshold] + [t for _, t in self.sizes]) * ratio

    def with_(self, **changes: Any) -> "TrackSettings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None}).check()

    def describe(self) -> str:
        """``0.3 (0.1 under 24 px, 0.15 under 48 px)``: the thresholds, for notes."""
        parts = [f"{t:g} under {h:g} px" for h, t in self.sizes]
        return f"{self.threshold:g}" + (f" ({', '.join(parts)})" if parts else "")


def frame_signature(image: np.ndarray) -> np.ndarray:
    """A 32x18 grey thumbnail of an RGB frame: all :func:`is_cut` needs (cheap to send around)."""
    import cv2

    small = cv2.resize(np.ascontiguousarray(image), SIGNATURE_SIZE, interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY) if small.ndim == 3 else small
    return grey.astype(np.uint8)


def cut_score(previous: np.ndarray, current: np.ndarray) -> float:
    """How different two frames' thumbnails are (0..1): the mean absolute difference after
    removing the brightness change, at the best shift of up to one thumbnail pixel (a pan, a
    zoom or a shaking camera moves a 32x18 thumbnail by about that much per frame; a cut
    replaces it)."""
    a = previous.astype(np.float32)
    b = current.astype(np.float32)
    a -= a.mean()
    b -= b.mean()
    h, w = a.shape
    core = b[1 : h - 1, 1 : w - 1]
    best = min(float(np.abs(a[1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx] - core).mean())
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))  # fmt: skip
    return best / 255.0


def is_cut(previous: np.ndarray | None, current: np.ndarray | None, threshold: float) -> bool:
    """A shot change between two frames: :func:`cut_score` above ``threshold``."""
    if previous is None or current is None or previous.shape != current.shape:
        return False
    return cut_score(previous, current) > threshold


def _to_cs(box: Sequence[float]) -> np.ndarray:
    """``x1 y1 x2 y2`` -> ``cx cy log(w) log(h)``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, np.log(max(x2 - x1, 1.0)), np.log(max(y2 - y1, 1.0))])


def _to_box(cs: np.ndarray, scale: float = 1.0) -> np.ndarray:
    w, h = np.exp(cs[2]) * scale, np.exp(cs[3]) * scale
    return np.array([cs[0] - w / 2, cs[1] - h / 2, cs[0] + w / 2, cs[1] + h / 2])


@dataclass
class Track:
    """One face followed over frames: its last detected box and its motion per frame."""

    id: int
    state: np.ndarray  # cx, cy, log w, log h at frame ``last``
    first: int  # frame of the first detection
    last: int  # frame of the last detection
    score: float
    hits: int = 1
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    first_state: np.ndarray | None = None  # cx, cy, log w, log h at frame ``first``

    def __post_init__(self) -> None:
        if self.first_state is None:
            self.first_state = self.state.copy()

    def predict(self, frame: int) -> np.ndarray:
        """The expected box at ``frame`` (no growth)."""
        return _to_box(self.state + self.velocity * (frame - self.last))

    def cover(self, frame: int, grow: float) -> np.ndarray:
        """The box to cover at ``frame``: the prediction, grown for every frame since the last detection."""
        return _to_box(self.state + self.velocity * (frame - self.last), 1.0 + grow * (frame - self.last))

    def update(self, frame: int, box: Sequence[float], score: float) -> None:
        state = _to_cs(box)
        dt = frame - self.last
        if dt > 0:
            measured = (state - self.state) / dt
            self.velocity = measured if self.hits == 1 else 0.5 * self.velocity + 0.5 * measured
            self.velocity[2:] = np.clip(self.velocity[2:], -0.1, 0.1)  # sizes change slowly
        self.state, self.last, self.score = state, frame, float(score)
        self.hits += 1


@dataclass
class Step:
    """What one frame did to the tracks: ``matched`` faces as ``(face, track)``; ``born`` the
    tracks started here; ``confirmed`` the tracks whose detections reached ``confirm`` here;
    ``resumed`` the tracks detected again after a gap, with the frame and box of their previous
    detection; ``cut`` whether the frame began a new shot."""

    matched: list[tuple[Any, Track]]
    born: list[Track]
    resumed: list[tuple[Track, int, np.ndarray]]
    cut: bool
    confirmed: list[Track] = field(default_factory=list)


class FaceTracker:
    """Greedy IoU tracking on predicted boxes, two passes by score (see the module docstring)."""

    def __init__(self, settings: TrackSettings | None = None) -> None:
        self.settings = (settings or TrackSettings()).check()
        self.tracks: list[Track] = []
        self.next_id = 1
        self.frame = -1
        self.signature: np.ndarray | None = None
        self.shot_start = 0

    def reset(self) -> None:
        self.tracks = []

    def held(self, track: Track) -> int:
        """Frames ``track`` outlives its last detection (plus the frames the detector skips)."""
        s = self.settings
        return (s.hold if track.hits >= s.confirm else min(s.hold, s.hold_new)) + s.every - 1

    def live(self, frame: int) -> list[Track]:
        """Tracks a detection at ``frame`` can still continue (held, or lost just now)."""
        return [t for t in self.tracks if frame - t.last <= self.held(t) + 1]

    def update(self, frame: int, faces: Sequence[Any] | None, signature: np.ndarray | None = None) -> Step:
        """Advance to ``frame`` with its detections (objects with ``box`` and ``score``; None when
        the detector did not run on this frame). Faces below the keep threshold are ignored."""
        s = self.settings
        cut = is_cut(self.signature, signature, s.cut)
        if signature is not None:
            self.signature = signature
        if cut:
            self.reset()
            self.shot_start = frame
        self.frame = frame
        self.tracks = self.live(frame)
        if faces is None:
            return Step([], [], [], cut)
        faces = [f for f in faces if f.score >= s.kept(f.box)]
        high = [f for f in faces if f.score >= s.start(f.box)]
        low = [f for f in faces if f.score < s.start(f.box)]
        matched: list[tuple[Any, Track]] = []
        resumed: list[tuple[Track, int, np.ndarray]] = []
        confirmed: list[Track] = []
        free = list(self.tracks)
        fresh = high
        for group in (high, low):
            pairs = self._match(group, free, frame)
            for face, track in pairs:
                if frame - track.last > 1:
                    resumed.append((track, track.last, _to_box(track.state)))
                track.update(frame, face.box, face.score)
                matched.append((face, track))
                if track.hits == s.confirm:
                    confirmed.append(track)
            taken = {id(t) for _, t in pairs}
            free = [t for t in free if id(t) not in taken]
            if group is high:  # strong faces no track took start tracks of their own
                linked = {id(f) for f, _ in pairs}
                fresh = [f for f in high if id(f) not in linked]
        born = []
        for face in fresh:
            track = Track(self.next_id, _to_cs(face.box), frame, frame, float(face.score))
            self.next_id += 1
            self.tracks.append(track)
            born.append(track)
            matched.append((face, track))
            if s.confirm == 1:
                confirmed.append(track)
        return Step(matched, born, resumed, cut, confirmed)

    def _match(self, faces: list, tracks: list[Track], frame: int) -> list[tuple[Any, Track]]:
        """Greedy, closest first: centre distance over the face size, sizes within 1.6x."""
        if not faces or not tracks:
            return []
        det = np.array([_to_cs(f.box) for f in faces]).reshape(-1, 4)
        pred = np.array([t.state + t.velocity * (frame - t.last) for t in tracks]).reshape(-1, 4)
        size = np.exp((det[:, None, 2] + det[:, None, 3] + pred[None, :, 2] + pred[None, :, 3]) / 4)  # geometric mean
        dist = np.hypot(det[:, None, 0] - pred[None, :, 0], det[:, None, 1] - pred[None, :, 1]) / size
        ratio = np.abs(det[:, None, 2:] - pred[None, :, 2:]).max(axis=2)
        gate = np.array([self.settings.gate * (1 if t.hits >= 2 else 2) for t in tracks])
        dist[(ratio > np.log(1.6)) | (dist > gate[None, :])] = np.inf
        pairs = []
        used_d, used_t = set(), set()
        for flat in np.argsort(dist, axis=None):
            d, t = divmod(int(flat), dist.shape[1])
            if not np.isfinite(dist[d, t]):
                break
            if d in used_d or t in used_t:
                continue
            used_d.add(d)
            used_t.add(t)
            pairs.append((faces[d], tracks[t]))
        return pairs


class CoverPlanner:
    """Boxes to cover per frame, released ``lookback`` frames late (see the module docstring).

    ``push(item, faces, signature)`` takes a frame (any object: it is handed back) and its
    detections (None where the detector did not run) and returns the ``(item, boxes)`` now
    final; :meth:`finish` returns the rest (the end of the video, or a run stopped early).
    """

    def __init__(self, settings: TrackSettings | None = None) -> None:
        self.tracker = FaceTracker(settings)
        self.settings = self.tracker.settings
        self.pending: deque[tuple[int, Any, list[np.ndarray]]] = deque()
        self.frame = -1
        s = self.settings
        # frames held back: the lookback before a first detection, plus the frames its confirmation can take
        self.delay = s.lookback + ((s.confirm - 1) * (min(s.hold, s.hold_new) + s.every) if s.lookback else 0)

    def needs_detection(self, frame: int) -> bool:
        """Whether the detector should run on this frame (every k-th; always after a shot change
        is known only once the frame arrives, so the first frame of a video always runs)."""
        return frame % self.settings.every == 0

    def push(self, item: Any, faces: Sequence[Any] | None, signature: np.ndarray | None = None) -> list[tuple[Any, list[np.ndarray]]]:
        s = self.settings
        self.frame += 1
        t = self.frame
        step = self.tracker.update(t, faces, signature)
        boxes = [np.asarray(face.box, np.float64) for face, _ in step.matched]
        seen = {id(tr) for _, tr in step.matched}
        boxes += [tr.cover(t, s.grow) for tr in self.tracker.tracks
                  if id(tr) not in seen and 0 < t - tr.last <= self.tracker.held(tr)]  # fmt: skip
        shot = self.tracker.shot_start
        for track in step.confirmed:  # from its first detection on, and the frames just before: the face was there
            span = max(t - track.first, 1)
            for f, _, cover in self.pending:
                if f < shot or f >= t or track.first - f > s.lookback:
                    continue
                if f < track.first:
                    state = track.first_state + track.velocity * (f - track.first)  # extrapolated backwards
                    cover.append(_to_box(state, 1.0 + s.grow * (track.first - f)))
                else:
                    a = (f - track.first) / span
                    cover.append(_to_box((1 - a) * track.first_state + a * track.state))
        for track, before, old in step.resumed:  # a gap: the interpolated boxes too
            new = _to_box(track.state)
            for f, _, cover in self.pending:
                if before < f < t and f >= shot:
                    a = (f - before) / (t - before)
                    cover.append((1 - a) * old + a * new)
        self.pending.append((t, item, boxes))
        out = []
        while len(self.pending) > self.delay:
            f, it, cover = self.pending.popleft()
            out.append((it, cover))
        return out

    def finish(self) -> list[tuple[Any, list[np.ndarray]]]:
        out = [(it, cover) for _, it, cover in self.pending]
        self.pending.clear()
        return out


# Blur's operating point for a model without a measured one (a weights file, new weights under
# a packaged name): the detection operating point of facespot's calibrated models is 0.5, and
# blurring wants more recall than detection does, most of all for small faces.
FALLBACK = TrackSettings(threshold=0.3, sizes=((24.0, 0.15), (48.0, 0.2)), keep=0.2)


def blur_settings(model: str = "default") -> tuple[TrackSettings, str]:
    """``(settings, where from)`` for ``facespot blur --model MODEL``: the packaged model's
    measured operating point (:func:`facespot.runtime.packaged.blur_point`: its thresholds; the
    tracking itself keeps these defaults), else :data:`FALLBACK`."""
    from facespot.runtime.packaged import blur_point

    point = blur_point(str(model))
    if point is None:
        return replace(FALLBACK), "fallback"
    sizes = tuple((float(h), float(t)) for h, t in point.get("sizes", ()))
    return TrackSettings(threshold=point["threshold"], sizes=sizes, keep=point["keep"]).check(), "measured"


def blur_margin(model: str = "default", margin: float | None = None) -> float:
    """The box growth per side ``facespot blur`` covers: ``margin`` when given, else the one the
    model's operating point was measured with (its thresholds hold for that margin: a smaller
    one blurs less wall around each false face, so they can go lower), else
    :data:`facespot.runtime.anonymize.MARGIN`."""
    from facespot.runtime.anonymize import MARGIN
    from facespot.runtime.packaged import blur_point

    if margin is not None:
        if not 0.0 <= margin <= 2.0:
            raise FacespotError(f"--margin must be between 0 and 2 (a fraction of the box size), got {margin}")
        return float(margin)
    point = blur_point(str(model))
    return MARGIN if point is None or point.get("margin") is None else float(point["margin"])
