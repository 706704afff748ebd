"""Progress bars of a ``detect`` / ``blur`` run (tqdm on standard error), for both engines.

``enabled`` is ``--progress``: True, False, or None for "when standard error is a terminal".
"""

from __future__ import annotations

import sys
from typing import Iterable, Iterator


def _shown(enabled: bool | None) -> bool:
    return sys.stderr.isatty() if enabled is None else bool(enabled)


class RunProgress:
    """The bar of a run: images per second over images, frames per second over a video.

    A folder that holds videos counts its files, and while one of its videos is read a second
    bar counts that video's frames (frames per second, as the bar of a single video does): one
    bar counting images and frames together showed "img/s" for frames and no total at all.
    """

    def __init__(self, enabled: bool | None, desc: str, kind: str, total: int | None, videos_inside: bool = False) -> None:
        from tqdm import tqdm

        self.show = _shown(enabled)
        self.per_video = videos_inside and kind == "folder"
        unit = "file" if self.per_video else ("img" if kind in ("image", "folder") else "frame")
        self.bar = tqdm(total=total, desc=desc, unit=unit, disable=not self.show, file=sys.stderr)
        self.video: str | None = None  # the folder's video being read, shown on the second bar
        self.frames = None

    @classmethod
    def of(cls, source, enabled: bool | None, desc: str) -> "RunProgress":
        """The bar for a :class:`~facespot.runtime.sources.Source`: its files, or a video's announced frames."""
        return cls(enabled, desc, source.kind, len(source) or None, bool(source.videos))

    def update(self, name: str, in_video: bool = False) -> None:
        """One image or frame done (``name``: the image, or the video a folder's frame is from)."""
        if not self.per_video:
            self.bar.update(1)
            return
        if in_video and name != self.video:
            self._end_video()
            from tqdm import tqdm

            self.video = name
            self.frames = tqdm(desc=name, unit="frame", leave=False, position=1, disable=not self.show, file=sys.stderr)
        if in_video:
            self.frames.update(1)
        else:
            self._end_video()
            self.bar.update(1)

    def track(self, items: Iterable) -> Iterator:
        """``items`` (frames and failures), each counted once the caller is done with it."""
        for item in items:
            yield item
            self.update(item.name, bool(getattr(item, "in_video", False)))

    def _end_video(self) -> None:
        if self.frames is not None:
            self.frames.close()
            self.frames, self.video = None, None
            self.bar.update(1)  # the video is one of the folder's files

    def close(self) -> None:
        self._end_video()
        self.bar.close()


class ViewProgress:
    """A second progress bar, for the views (tiles) of one image when it has many: a 12000x12000
    photo with --multiscale is a couple of thousand tiles and a minute or more that the bar
    counting images shows as no progress at all. ``enabled`` as ``--progress``."""

    def __init__(self, enabled: bool | None, min_views: int = 32) -> None:
        self.show = _shown(enabled)
        self.min_views = min_views
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if not self.show or total < self.min_views:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="tiles", unit="tile", leave=False, position=1, file=sys.stderr, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.bar.close()
            self.bar = None
