"""Video files out: H.264 through PyAV (FFmpeg with libx264 inside its wheel), the input's
audio copied.

Why PyAV: its wheels ship FFmpeg with libx264 (checked: ``av`` 18.1 on Linux x86-64), it runs
in-process (frames go from NumPy to the encoder without a pipe or a subprocess), and it can copy
the input's audio packets untouched into the output (no re-encoding, no drift). OpenCV's writer
can only make MPEG-4 Part 2 (``mp4v``), which browsers do not play, and drops the audio.

The output: H.264 (``yuv420p``, High profile: what every browser plays), the input's frame size
(an odd width or height is padded by one replicated pixel: 4:2:0 needs even sizes) and its exact
frame rate (a rational, e.g. 30000/1001, read from the input file), so the duration is kept. The
audio of ``audio_from`` is copied packet by packet when the container can hold its codec (AAC,
MP3, Opus, FLAC, ... in MP4), otherwise re-encoded to AAC; a video without audio stays without.
Audio is interleaved with the video as frames are written. :meth:`VideoWriter.close` always
writes the container's index (``moov``, placed at the front for streaming), so a run stopped by
Ctrl-C or SIGTERM leaves a playable file; audio then stops where the video stops, while
``close(complete=True)`` (the input was read to its end) copies all of it.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from facespot.errors import FacespotError, signal_handlers

# output extension -> FFmpeg muxer; each holds H.264
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}
# audio codecs copied as they are, per muxer (others are re-encoded to AAC, or MP3 in AVI)
COPY_AUDIO = {
    "mp4": {"aac", "mp3", "opus", "flac", "alac", "ac3", "eac3"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_f32le"},
    "matroska": None,  # anything
    "avi": {"mp3", "ac3", "pcm_s16le", "pcm_u8"},
}
CRF = 20  # visually lossless for 720p: pixels outside faces must stay as they were
PRESET = "veryfast"  # ~3x faster than x264's default for ~10% more bits: encoding stays off the critical path


@contextmanager
def _uninterrupted() -> Iterator[None]:
    """Ctrl-C / SIGTERM wait until a frame is fully encoded and muxed: a KeyboardInterrupt
    raised between the encoder and the muxer lost packets mid-stream and left the file's index
    unwritable (seen in tests). The signal is handled as usual right after the block."""
    caught: list[int] = []
    try:
        with signal_handlers((signal.SIGINT, signal.SIGTERM), lambda signum, frame: caught.append(signum)) as previous:
            yield
    finally:
        if caught:  # only the handlers installed append, so `previous` is set
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)  # KeyboardInterrupt, or facespot's Terminated
            elif handler == signal.SIG_DFL:
                signal.raise_signal(caught[0])


def _av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - a dependency; a broken install says so
        raise FacespotError(f"writing videos needs PyAV (pip install av): {exc}") from None
    return av


def h264_encoder() -> str:
    """The H.264 encoder this PyAV build has (libx264 in the PyPI wheels)."""
    av = _av()
    for name in ("libx264", "libopenh264"):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # UnknownCodecError: a PyAV built against an FFmpeg without it
            continue
    raise FacespotError("this PyAV build has no H.264 encoder (libx264 or libopenh264); install the PyPI wheel of av")


def exact_rate(path: str | Path | None, fps: float) -> Fraction:
    """The frame rate as a fraction: the input file's own (exact, e.g. 30000/1001) when it can
    be read and agrees with ``fps`` (what the reader reported), else ``fps`` itself."""
    rate = None
    if path is not None:
        try:
            with _av().open(str(path)) as c:
                s = c.streams.video[0] if c.streams.video else None
                rate = (s.average_rate or s.guessed_rate) if s is not None else None
        except Exception:  # not a file PyAV can open: use what the reader said
            rate = None
    if rate and fps and abs(float(rate) - fps) <= 0.01 * fps:
        return Fraction(rate)
    fps = float(fps) if fps and fps > 0 else 25.0
    return Fraction(fps).limit_denominator(1001)


class _Audio:
    """The input's first audio stream, copied (or re-encoded) into the output as video advances."""

    def __init__(self, av, source: Path, out, muxer: str) -> None:
        self.input = av.open(str(source))
        self.stream_in = self.input.streams.audio[0]
        video = self.input.streams.video[0] if self.input.streams.video else None
        self.start = float(video.start_time * video.time_base) if video is not None and video.start_time is not None else 0.0
        allowed = COPY_AUDIO.get(muxer)
        name = self.stream_in.codec_context.name
        self.copy = allowed is None or name in allowed
        if self.copy:
            self.stream_out = out.add_stream_from_template(self.stream_in)
        else:
            codec = "mp3" if muxer == "avi" else "aac"
            self.stream_out = out.add_stream(codec, rate=self.stream_in.codec_context.sample_rate or 48000)
            layout = self.stream_in.codec_context.layout
            if layout is not None and getattr(layout, "nb_channels", 0) in (1, 2):
                self.stream_out.codec_context.layout = layout.name
        self.out = out
        self.packets = self.input.demux(self.stream_in)
        self.pending = None  # the next packet, read but not yet muxed
        self.done = False

    def _seconds(self, packet) -> float | None:
        t = packet.pts if packet.pts is not None else packet.dts
        return None if t is None else float(t * packet.time_base) - self.start

    def pump(self, until: float | None) -> None:
        """Mux audio up to ``until`` seconds of output time (None: all of it)."""
        while not self.done:
            if self.pending is None:
                self.pending = next(self.packets, None)
                if self.pending is None:
                    self.done = True
                    break
            packet = self.pending
            if packet.dts is None and packet.size == 0:  # the demuxer's flush packet
                self.pending = None
                continue
            t = self._seconds(packet)
            if until is not None and t is not None and t >= until:
                return
            self.pending = None
            self._write(packet)

    def _write(self, packet) -> None:
        if self.copy:
            if self.start:  # the output starts at 0: shift by the input video's start
                shift = int(round(self.start / packet.time_base))
                if packet.pts is not None:
                    packet.pts -= shift
                if packet.dts is not None:
                    packet.dts -= shift
            packet.stream = self.stream_out
            self.out.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # the encoder numbers samples itself
            self.out.mux(self.stream_out.encode(frame))

    def close(self) -> None:
        try:
            if not self.copy:
                self.out.mux(self.stream_out.encode(None))
        finally:
            self.input.close()


class VideoWriter:
    """An H.264 video file written frame by frame (RGB frames in, same size as opened).

    ``audio_from``: the input video whose audio (first audio stream, if any) is copied in, and
    whose exact frame rate is used when it matches ``fps``.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], audio_from: str | Path | None = None) -> None:
        av = _av()
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in CONTAINERS:
            raise FacespotError(f"{self.path}: cannot write video with extension {ext!r}; use one of {', '.join(CONTAINERS)}")
        self.size = (int(size[0]), int(size[1]))
        if min(self.size) < 2:
            raise FacespotError(f"{self.path}: cannot encode {self.size[0]}x{self.size[1]} frames as H.264")
        self.rate = exact_rate(audio_from, fps)
        self.fps = float(self.rate)
        self.frames = 0
        self.muxer = CONTAINERS[ext]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FacespotError(f"{self.path}: cannot create its folder ({exc.strerror or exc})") from None
        options = {"movflags": "+faststart"} if self.muxer in ("mp4", "mov") else {}
        try:
            self.container = av.open(str(self.path), "w", format=self.muxer, options=options)
        except Exception as exc:
            raise FacespotError(f"{self.path}: cannot open for writing ({exc})") from None
        self.audio: _Audio | None = None
        try:
            encoder = h264_encoder()
            self.stream = self.container.add_stream(encoder, rate=self.rate)
            self.coded = (self.size[0] + self.size[0] % 2, self.size[1] + self.size[1] % 2)
            self.stream.width, self.stream.height = self.coded
            self.stream.pix_fmt = "yuv420p"
            if encoder == "libx264":
                self.stream.options = {"crf": str(CRF), "preset": PRESET}
            if audio_from is not None:
                self.audio = self._open_audio(av, Path(audio_from))
        except BaseException:
            self.container.close()
            raise

    def _open_audio(self, av, source: Path) -> _Audio | None:
        try:
            with av.open(str(source)) as probe:
                if not probe.streams.audio:
                    return None
        except Exception:  # a camera, an image sequence, a file PyAV cannot read: no audio to keep
            return None
        try:
            return _Audio(av, source, self.container, self.muxer)
        except Exception as exc:
            raise FacespotError(f"{source}: cannot copy its audio into {self.path} ({exc})") from None

    def write(self, image_rgb: np.ndarray) -> None:
        av = _av()
        import cv2

        if (image_rgb.shape[1], image_rgb.shape[0]) != self.size:
            image_rgb = cv2.resize(image_rgb, self.size, interpolation=cv2.INTER_LINEAR)
        if self.coded != self.size:  # odd size: replicate the last row / column
            pad_x, pad_y = self.coded[0] - self.size[0], self.coded[1] - self.size[1]
            image_rgb = cv2.copyMakeBorder(image_rgb, 0, pad_y, 0, pad_x, cv2.BORDER_REPLICATE)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image_rgb), format="rgb24")
        frame.time_base = 1 / self.rate
        with _uninterrupted():
            frame.pts = self.frames
            self.frames += 1  # first: however this frame ends, no later frame reuses its time
            if self.audio is not None:  # the audio up to this frame (the muxer interleaves by time)
                self.audio.pump(frame.pts / self.fps)
            self.container.mux(self.stream.encode(frame))

    @property
    def duration(self) -> float:
        return self.frames / self.fps

    def close(self, complete: bool = False) -> None:
        """Flush the encoder, finish the audio and write the index. ``complete``: the input was
        read to its end, so all of its audio is copied; else the audio stops with the video."""
        if self.container is None:
            return
        container, self.container = self.container, None
        with _uninterrupted():
            try:
                if self.frames:
                    container.mux(self.stream.encode(None))
                if self.audio is not None:
                    try:
                        self.audio.pump(None if complete else self.duration)
                    finally:
                        self.audio.close()
            finally:
                container.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close(complete=exc[0] is None)


def probe(path: str | Path) -> dict:
    """What a video file holds, as PyAV reads it: codec, size, rate, frames and the duration of
    the first video and audio streams (``None`` where absent). Used by tests and benchmarks."""
    av = _av()
    with av.open(str(path)) as c:
        info: dict = {"format": c.format.name, "video": None, "audio": None}
        if c.streams.video:
            s = c.streams.video[0]
            info["video"] = {"codec": s.codec_context.name, "profile": s.profile, "width": s.codec_context.width,
                             "height": s.codec_context.height, "rate": s.average_rate, "pix_fmt": s.codec_context.pix_fmt,
                             "frames": s.frames, "duration": float(s.duration * s.time_base) if s.duration else None}  # fmt: skip
        if c.streams.audio:
            s = c.streams.audio[0]
            info["audio"] = {"codec": s.codec_context.name, "rate": s.codec_context.sample_rate,
                             "duration": float(s.duration * s.time_base) if s.duration else None}  # fmt: skip
    return info
