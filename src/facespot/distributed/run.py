"""``facespot detect|blur SOURCE --engine ray``: the local run's inputs and outputs, with the
detection done by a Ray Data actor pool.

The driver (this module) lists the source with the local :func:`open_source` (same files,
same order, same skipped list), validates the model and options once, then builds a Ray
Dataset of work items -- ``{index, path}`` per image, ``{start, stop}`` per video segment --
and maps :class:`~facespot.distributed.worker.DetectWorker` over it. Results come back in
source order (Ray Data's ``preserve_order``) and go to the local run's writers: JSON lines
and WIDER files through :class:`~facespot.runtime.pipeline.DetectOutputs`, video frames
through one :class:`~facespot.runtime.sinks.VideoSink`; annotated / blurred images are
written by the actors with the local ``write_image``. Unreadable files are reported by name
(the local :class:`Failure` messages) and never stop the job.

JSON lines are resumable: each line is flushed after its image's other outputs are
written, and ``--resume`` keeps an earlier run's complete lines and processes only the rest
(:mod:`facespot.runtime.json_lines`, as the local run does: one writer at a time, settings
recorded, a resume with other settings refused).
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from facespot.distributed.options import EngineOptions
from facespot.errors import FacespotError
from facespot.runtime.progress import RunProgress
from facespot.runtime.settings import DetectionSettings

MAX_BLOCKS = 4096  # work items are spread over at most this many Ray blocks
MAX_SEGMENT = 1024  # frames per video segment (one seek each); 128 when the frames come back for --save


def _blocks(table, n_blocks: int) -> list:
    step = max(1, math.ceil(table.num_rows / max(1, n_blocks)))
    return [table.slice(i, step) for i in range(0, table.num_rows, step)]


def _rows(batch: dict[str, np.ndarray]) -> Iterator[dict[str, Any]]:
    names = list(batch)
    for k in range(len(batch[names[0]])):
        yield {name: batch[name][k] for name in names}


def _ray_failure(exc: BaseException) -> str:
    """The line of a Ray error that says what went wrong (not Ray's traceback)."""
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "FacespotError:" in ln:
            return ln.split("FacespotError:", 1)[1].strip()
    for ln in reversed(lines):
        if not ln.startswith(("File ", "Traceback", "^", "~")) and not ln.startswith("ray::"):
            return ln[:300]
    return type(exc).__name__


def run(
    verb: str, settings: DetectionSettings, engine: EngineOptions, out: str | None = None, json_out: str | None = None,
    wider_out: str | None = None, wider_threshold: float = 0.02, resume: bool = False,
) -> int:
    """The whole ``--engine ray`` run of ``facespot detect`` (``verb="detect"``) or ``blur``.

    ``settings`` as the local run takes them (the source, the model, every detection option and
    blur's own); ``out`` is ``--save`` / ``--out``, ``json_out`` ``--json`` (``"-"``: standard
    output), ``wider_out`` / ``wider_threshold`` / ``resume`` those of ``detect``."""
    from facespot.distributed.session import require_ray
    from facespot.files import Output, ensure_folder
    from facespot.runtime.json_lines import open_json_lines, run_settings
    from facespot.runtime.pipeline import DetectOutputs, check_detect_request, check_run_outputs, run_source

    require_ray()  # a missing extra is one line before anything else happens
    if engine.address:  # actors on other machines run in other folders: give them absolute paths
        if not (str(settings.source).isdigit() and not Path(settings.source).exists()):
            settings = replace(settings, source=os.path.abspath(settings.source))
        out = os.path.abspath(out) if out else out
    detect = verb == "detect"
    out_path = Path(out) if out else None
    json_path = Path(json_out) if detect and json_out and json_out != "-" else None
    wider_path = Path(wider_out) if detect and wider_out else None
    batch_size = 16 if engine.batch_size is None else engine.batch_size
    if batch_size < 1:
        raise FacespotError(f"--batch-size must be at least 1, got {batch_size}")
    blur = None
    t_start = time.perf_counter()
    source = settings.open_source()
    try:
        if source.kind == "camera":
            raise FacespotError("--engine ray runs images, folders and video files; a camera is one live stream: leave out --engine ray")
        if detect:
            check_detect_request(source, wider_out, json_out, resume)
        others = [Output("--wider-out", wider_path, "dir")] if wider_path is not None else []
        if json_path is not None:
            others.append(Output("--json", json_path))
        check_run_outputs(source, out_path, "--save" if detect else "--out", others)  # the local run's one output check
        if source.kind == "folder" and not source.files:
            run_source(source, None, lambda frame, faces: None, None)  # raises the local run's "nothing found" error
        threshold = min(settings.threshold, wider_threshold) if wider_path is not None else settings.threshold
        if not detect:  # blur's handle: its operating point and tracking settings, checked here once
            blur, blur_note = settings.blur_handle()
            threshold = blur.settings.low
        detector = settings.build_detector(threshold)  # the model and every option are checked here, once, in one line

        json_file, done = None, set()
        if json_path is not None:  # locked for this run, its settings recorded beside it
            json_file, done = open_json_lines(json_path, run_settings(settings, detector), resume)
        if source.kind != "video":
            items = [(i, p) for i, p in enumerate(source.files) if not done or source.name_of(p) not in done]
            if not items:
                if json_file is not None:
                    json_file.close()
                stream = sys.stderr if json_out == "-" else sys.stdout
                print(f"{verb}: nothing to do: all {len(done)} image(s) are already in {json_path}", file=stream)
                return 0
        handle = None
        if out_path is not None:
            handle = DetectOutputs(None, None, True, settings.threshold, wider_threshold, source.kind) if detect else blur
        if detect and json_out == "-":
            json_file = sys.stdout
        try:
            if wider_path is not None:
                ensure_folder(wider_path, "--wider-out")
            outs = _Outputs(source, out_path, json_file, wider_path, settings, wider_threshold, detect, blur)
            report, cluster, pool, n_results = _execute(settings, engine, source, items if source.kind != "video" else None,
                                                        threshold, handle, out_path, outs, batch_size, json_path, verb)  # fmt: skip
        finally:
            if json_file is not None and json_file is not sys.stdout:
                json_file.close()
    finally:
        source.close()

    if report.processed == 0 and not done:
        if report.failures:
            raise FacespotError(f"no input could be read ({len(report.failures)} failed); first: {report.failures[0].message}")
        raise FacespotError(f"{source.spec}: no frame could be read")
    if json_path is not None:
        report.written.append(json_path)
    if wider_path is not None:
        report.written.append(wider_path)
    if blur is not None and (source.kind == "video" or source.videos):
        report.notes.insert(0, blur_note)
    stream = sys.stderr if detect and json_out == "-" else sys.stdout
    print(report.summary(verb), file=stream)
    if done:
        print(f"resumed: {len(done)} image(s) already in {json_path} were skipped", file=stream)
    unit = "frame(s)" if source.kind == "video" else "result(s)"
    print(f"ray: {pool.describe(cluster)}; {n_results} {unit} in {time.perf_counter() - t_start:.1f} s", file=stream)
    return 0


class _Outputs:
    """The driver's side of the outputs: the local run's writers, fed from result rows."""

    def __init__(self, source, out: Path | None, json_file, wider_out: Path | None, settings: DetectionSettings,
                 wider_threshold: float, detect: bool, blur=None) -> None:  # fmt: skip
        from facespot.runtime.pipeline import DetectOutputs, RunReport, VideoOutputs, output_path

        kind, threshold = source.kind, settings.threshold
        self.source = source
        self.out = out
        self.json = DetectOutputs(json_file, None, False, threshold, wider_threshold, kind) if json_file else None
        self.wider = DetectOutputs(None, wider_out, False, threshold, wider_threshold, kind) if wider_out else None
        self.count = DetectOutputs(None, None, False, threshold, wider_threshold, kind).count if detect else blur.count
        self.report = RunReport(kind=kind, skipped=list(source.skipped), notes=list(source.notes))
        self.results = 0
        self.fps = source.fps or 25.0
        # a video SOURCE's frames come back in order: detect's drawn by the actors, blur's raw, tracked
        # and blurred here across segment boundaries exactly as the local run does (one stream, one sink)
        handle = blur if blur is not None else (lambda frame, faces: frame.image)
        self.videos = VideoOutputs(handle, out, lambda f: output_path(source, out), lambda: self.fps,
                                   lambda f: Path(source.spec), max_frames=settings.max_frames, opened=self.report.written)  # fmt: skip

    def take(self, row: dict[str, Any], fps: float = 25.0, size: tuple[int, int] | None = None) -> bool:
        """One result row; False when the run must stop here (a video that ended early)."""
        from facespot.distributed.worker import face_from_record
        from facespot.runtime.sources import Failure, Frame
        from facespot.runtime.tracking import SIGNATURE_SIZE

        report = self.report
        if str(row["ended"]):
            report.ended_early = str(row["ended"])
            return False
        if str(row["fatal"]):
            raise FacespotError(str(row["fatal"]))
        if str(row["note"]):
            report.notes.append(str(row["note"]))
            return True
        name, path = str(row["name"]), Path(str(row["path"])) if str(row["path"]) else None
        self.results += 1
        if str(row["error"]):
            failure = Failure(name, str(row["error"]), path)
            report.failures.append(failure)
            if self.json is not None:
                self.json.failure(failure)
            return True
        h, w = int(row["height"]), int(row["width"])
        pixels = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (h, w, 3))  # only the size is read: nothing is drawn here
        frame = Frame(pixels, name, int(row["index"]), path, in_video=bool(row["in_video"]))
        if len(row["signature"]):
            frame.signature = np.frombuffer(row["signature"], np.uint8).reshape(SIGNATURE_SIZE[1], SIGNATURE_SIZE[0])
        faces = [face_from_record(r) for r in row["faces"]]
        report.processed += 1
        report.video_frames += frame.in_video
        report.faces += self.count(faces)
        if "frame" in row and self.out is not None:  # a video SOURCE: its frames, in order, to one sink
            self.fps = fps
            shown = Frame(row["frame"], name, frame.index, path, signature=frame.signature)
            self.videos.put(self.source.spec, shown, faces if bool(row["detected"]) else None)
        if str(row["written"]):
            report.written.append(Path(str(row["written"])))
        if self.wider is not None:
            self.wider(frame, faces)
        if self.json is not None:  # last: a JSON line means everything else for its image is written
            self.json(frame, faces)
        return True

    def close(self, complete: bool = False) -> None:
        """Write the frames blur's tracking still holds, then close the video (see :class:`VideoOutputs`)."""
        self.videos.end(complete=complete)


def result_batches(table, n_blocks: int, per_call: int, actors: int, threads: int, spec, job) -> Iterator[dict[str, Any]]:
    """The Ray Data pipeline: work items -> a pool of ``actors`` detector actors -> result
    batches in source order. Runs in the driver, or (Ray Client) in a task on the cluster."""
    import ray

    from facespot.distributed.session import data_context
    from facespot.distributed.worker import DetectWorker

    with data_context(preserve_order=True):
        ds = ray.data.from_arrow(_blocks(table, n_blocks))
        ds = ds.map_batches(
            DetectWorker, fn_constructor_kwargs={"spec": spec, "job": job}, batch_size=per_call,
            compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=threads, batch_format="numpy",
        )  # fmt: skip
        yield from ds.iter_batches(batch_size=None, batch_format="numpy")


class _PipelineHost:
    """Holds :func:`result_batches` in an actor on the cluster, for a Ray Client driver (which
    can neither run Ray Data's executor nor receive streaming generators)."""

    def __init__(self, *work) -> None:
        self.batches = result_batches(*work)

    def next(self) -> dict[str, Any] | None:
        return next(self.batches, None)


def _through_client(ray, work) -> Iterator[dict[str, Any]]:
    host = ray.remote(num_cpus=0)(_PipelineHost).remote(*work)
    pending = host.next.remote()
    while True:
        batch = ray.get(pending)
        if batch is None:
            return
        pending = host.next.remote()  # the next batch is fetched while this one is written
        yield batch


def _execute(settings: DetectionSettings, engine: EngineOptions, source, items, threshold: float, handle, out, outs: _Outputs,
             batch_size: int, json_path, verb: str):  # fmt: skip
    """Start or join Ray, map the actor pool over the work items, feed the results to ``outs``."""
    import facespot
    from facespot.distributed.session import plan_pool, ray_session, require_ray
    from facespot.distributed.worker import DetectorSpec, Job, model_file
    from facespot.images import DEFAULT_MAX_PIXELS
    from facespot.errors import sigterm_as_interrupt
    from facespot.runtime.pipeline import BlurOutputs

    ray = require_ray()
    video = source.kind == "video"
    size, fps, announced, limit = None, source.fps or 25.0, None, None
    if video:
        import cv2

        size = (int(source._capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(source._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        announced = source.expected_frames
        limit = min(announced, settings.max_frames) if announced and settings.max_frames else (announced or settings.max_frames)
        source.close()  # each actor opens its own capture
    try:
        with sigterm_as_interrupt(), ray_session(engine.address) as cluster:
            import pyarrow as pa

            pool = plan_pool(cluster, engine.actors, settings.threads)
            if video:
                longest = MAX_SEGMENT if out is None else MAX_SEGMENT // 8  # saved frames travel back: less in flight
                seg = max(batch_size, min(longest, math.ceil(limit / (4 * pool.actors)))) if limit else 2**62
                starts = list(range(0, limit, seg)) if limit else [0]
                table = pa.table({"start": starts, "stop": [min(s + seg, limit) if limit else 2**62 for s in starts]})
                per_call, total = 1, limit
            else:
                table = pa.table({"index": [i for i, _ in items], "path": [str(p) for _, p in items]})
                per_call = max(1, min(batch_size, math.ceil(len(items) / pool.actors)))
                total = len(items)  # files: a folder's videos are counted once each (their frames on a second bar)
            n_calls = math.ceil(table.num_rows / per_call)
            pool.actors = max(1, min(pool.actors, n_calls))
            shipped = model_file(str(settings.model))
            spec = DetectorSpec(
                build=ActorDetector(replace(settings, threads=pool.threads), threshold), model=str(settings.model),
                threads=pool.threads, model_data=[ray.put(shipped.read_bytes())] if shipped is not None else None,
            )  # fmt: skip
            job = Job(
                mode="video" if video else "files", source_kind=source.kind, spec=source.spec,
                root=str(source.root) if source.root is not None else None, out=str(out) if out else None,
                handle=handle, max_pixels=settings.max_pixels or DEFAULT_MAX_PIXELS, video_size=size,
                video_frames=announced, max_frames=settings.max_frames, return_frames=video and out is not None,
                version=facespot.__version__,
            )  # fmt: skip
            if video and isinstance(handle, BlurOutputs):  # tracked across segments: by the driver, on raw frames
                job.handle, job.raw_frames = None, out is not None
                job.every = handle.settings.every if handle.track else 1
            work = (table, min(MAX_BLOCKS, n_calls), per_call, pool.actors, pool.threads, spec, job)
            if cluster.client:  # ray://: Ray Data's executor cannot run in a Ray Client driver; it runs in an actor there
                batches = _through_client(ray, work)
            else:
                batches = result_batches(*work)
            bar = RunProgress(settings.progress, verb, source.kind, total, bool(source.videos))
            finished = False
            try:
                for batch in batches:
                    going = True
                    for row in _rows(batch):
                        going = outs.take(row, fps, size)
                        if not going:
                            break
                        if not str(row["note"]):
                            bar.update(str(row["name"]), bool(row["in_video"]))
                    if not going:
                        break
                finished = True
            finally:
                bar.close()
                outs.close(complete=finished and not outs.report.ended_early)
    except (FacespotError, KeyboardInterrupt, SystemExit, BrokenPipeError):  # a closed `--json -` pipe: the CLI's to end
        raise
    except Exception as exc:  # Ray's errors, and what reaches us through it: ConnectionError, OSError, ArrowInvalid
        hint = ""
        if json_path is not None and outs.results and not video:
            hint = f"; the {outs.results} result(s) in {json_path} are complete: rerun with --resume to continue"
        raise FacespotError(f"the Ray job failed: {_ray_failure(exc)}{hint}") from None
    return outs.report, cluster, pool, outs.results


@dataclass(frozen=True)
class ActorDetector:
    """Picklable ``build(model)`` for the actors: the run's detector, from the same settings as
    the driver's (``model``: the actor's copy of a shipped model file; no progress bars there)."""

    settings: DetectionSettings
    threshold: float

    def __call__(self, model: str):
        return replace(self.settings, model=model, progress=False).build_detector(self.threshold)
