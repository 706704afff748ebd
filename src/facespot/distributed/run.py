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
written, and ``--resume`` keeps an earlier run's complete lines (dropping its error lines
and a half-written last line, rewritten atomically) and processes only the rest.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from facespot.errors import FacespotError
from facespot.files import write_atomically

MAX_BLOCKS = 4096  # work items are spread over at most this many Ray blocks
MAX_SEGMENT = 1024  # frames per video segment (one seek each); 128 when the frames come back for --save


def resume_json(path: Path) -> set[str]:
    """Keep an earlier run's complete records in ``path``; return their ``source`` names.

    Error lines (their files are tried again), repeated sources and a half-written last line
    are dropped; the file is rewritten atomically, so a crash here loses nothing.
    """
    if not path.exists():
        return set()
    done: set[str] = set()
    lines = 0

    def keep(tmp: str) -> None:
        nonlocal lines
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            for line in src:
                if not line.strip():
                    continue
                lines += 1
                if not line.endswith(b"\n"):
                    break  # the last line of a run that was killed mid-write
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                name = rec.get("source") if isinstance(rec, dict) else None
                if isinstance(name, str) and isinstance(rec.get("faces"), list) and "frame" not in rec and name not in done:
                    done.add(name)
                    dst.write(line)
        if lines and not done and not _only_detect_records(path):
            raise FacespotError(f"{path}: --resume: this is not a `facespot detect --json` file; not touching it")

    write_atomically(path, keep)  # errors are one line naming the file
    return done


def _only_detect_records(path: Path) -> bool:
    """True when every complete line of ``path`` is a ``facespot detect --json`` record (a run
    where every image failed, or only video frames were done, keeps none but is no stranger's file)."""
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n") or not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                return False
            if not (isinstance(rec, dict) and "source" in rec and ("error" in rec or "faces" in rec)):
                return False
    return True


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


def run(args: argparse.Namespace, verb: str = "detect") -> int:
    """The whole ``--engine ray`` run of ``facespot detect`` (``verb="detect"``) or ``blur``."""
    from facespot.cli.detect import build_detector, open_input
    from facespot.distributed.session import require_ray
    from facespot.files import Output, ensure_folder, open_output
    from facespot.runtime.pipeline import DetectOutputs, blur_handler, check_run_outputs, run_source

    require_ray()  # a missing extra is one line before anything else happens
    if args.address:  # actors on other machines run in other folders: give them absolute paths
        args = copy.copy(args)
        if not (str(args.source).isdigit() and not Path(args.source).exists()):
            args.source = os.path.abspath(args.source)
        for name in ("save", "out"):
            if getattr(args, name, None):
                setattr(args, name, os.path.abspath(getattr(args, name)))
    detect = verb == "detect"
    out_arg = args.save if detect else args.out
    out = Path(out_arg) if out_arg else None
    json_arg = args.json if detect else None
    json_path = Path(json_arg) if json_arg and json_arg != "-" else None
    wider_out = Path(args.wider_out) if detect and args.wider_out else None
    resume = bool(getattr(args, "resume", False))
    batch_size = 16 if args.batch_size is None else args.batch_size
    if batch_size < 1:
        raise FacespotError(f"--batch-size must be at least 1, got {batch_size}")
    if not detect and not 0.0 <= args.margin <= 2.0:
        raise FacespotError(f"--margin must be between 0 and 2, got {args.margin}")
    t_start = time.perf_counter()
    source = open_input(args)
    try:
        if source.kind == "camera":
            raise FacespotError("--engine ray runs images, folders and video files; a camera is one live stream: leave out --engine ray")
        if wider_out is not None and source.kind == "video":
            raise FacespotError("--wider-out writes one file per image; it does not apply to videos or cameras")
        if resume and (json_path is None or source.kind == "video"):
            raise FacespotError("--resume continues a --json FILE for an image or a folder (not standard output, not a video)")
        others = [Output("--wider-out", wider_out, "dir")] if wider_out is not None else []
        if json_path is not None:
            others.append(Output("--json", json_path))
        check_run_outputs(source, out, "--save" if detect else "--out", others)  # the local run's one output check
        if source.kind == "folder" and not source.files:
            run_source(source, None, lambda frame, faces: None, None)  # raises the local run's "nothing found" error
        threshold = min(args.threshold, args.wider_threshold) if wider_out is not None else args.threshold
        build_detector(args, threshold)  # the model and every option are checked here, once, in one line

        done = resume_json(json_path) if resume else set()
        if source.kind != "video":
            items = [(i, p) for i, p in enumerate(source.files) if not done or source.name_of(p) not in done]
            if not items:
                stream = sys.stderr if json_arg == "-" else sys.stdout
                print(f"{verb}: nothing to do: all {len(done)} image(s) are already in {json_path}", file=stream)
                return 0
        handle = None
        if out is not None:
            handle = DetectOutputs(None, None, True, args.threshold, args.wider_threshold, source.kind) if detect else blur_handler(args.method, args.margin)  # fmt: skip
        json_file = None
        if json_arg == "-":
            json_file = sys.stdout
        elif json_path is not None:
            json_file = open_output(json_path, "--json", "a" if resume else "w")
        if wider_out is not None:
            ensure_folder(wider_out, "--wider-out")
        try:
            outs = _Outputs(source, out, json_file, wider_out, args, detect)
            report, cluster, pool, n_results = _execute(args, source, items if source.kind != "video" else None, threshold,
                                                        handle, out, outs, batch_size, json_path, verb)  # fmt: skip
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
    if wider_out is not None:
        report.written.append(wider_out)
    stream = sys.stderr if json_arg == "-" else sys.stdout
    print(report.summary(verb), file=stream)
    if done:
        print(f"resumed: {len(done)} image(s) already in {json_path} were skipped", file=stream)
    unit = "frame(s)" if source.kind == "video" else "result(s)"
    print(f"ray: {pool.describe(cluster)}; {n_results} {unit} in {time.perf_counter() - t_start:.1f} s", file=stream)
    return 0


class _Outputs:
    """The driver's side of the outputs: the local run's writers, fed from result rows."""

    def __init__(self, source, out: Path | None, json_file, wider_out: Path | None, args, detect: bool) -> None:
        from facespot.runtime.pipeline import DetectOutputs, RunReport

        kind = source.kind
        self.source = source
        self.out = out
        self.json = DetectOutputs(json_file, None, False, args.threshold, args.wider_threshold, kind) if json_file else None
        self.wider = DetectOutputs(None, wider_out, False, args.threshold, args.wider_threshold, kind) if wider_out else None
        self.count = DetectOutputs(None, None, False, args.threshold, args.wider_threshold, kind).count if detect else len
        self.report = RunReport(kind=kind, skipped=list(source.skipped), notes=list(source.notes))
        self.sink = None
        self.results = 0

    def take(self, row: dict[str, Any], fps: float = 25.0, size: tuple[int, int] | None = None) -> bool:
        """One result row; False when the run must stop here (a video that ended early)."""
        from facespot.runtime.pipeline import output_path
        from facespot.runtime.sinks import VideoSink
        from facespot.runtime.sources import Failure, Frame
        from facespot.distributed.worker import face_from_record

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
        faces = [face_from_record(r) for r in row["faces"]]
        report.processed += 1
        report.faces += self.count(faces)
        if "frame" in row and self.out is not None:  # a video SOURCE: its frames, in order, to one sink
            if self.sink is None:
                self.sink = VideoSink(output_path(self.source, self.out), fps, size or (w, h))
                report.written.append(self.sink.path)
            self.sink.write(row["frame"])
        if str(row["written"]):
            report.written.append(Path(str(row["written"])))
        if self.wider is not None:
            self.wider(frame, faces)
        if self.json is not None:  # last: a JSON line means everything else for its image is written
            self.json(frame, faces)
        return True

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None


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


def _execute(args, source, items, threshold, handle, out, outs: _Outputs, batch_size: int, json_path, verb: str):
    """Start or join Ray, map the actor pool over the work items, feed the results to ``outs``."""
    import facespot
    from facespot.distributed.session import plan_pool, ray_session, require_ray
    from facespot.distributed.worker import DetectorSpec, Job, model_file
    from facespot.images import DEFAULT_MAX_PIXELS
    from facespot.runtime.pipeline import sigterm_as_interrupt

    ray = require_ray()
    video = source.kind == "video"
    size, fps, announced, limit = None, source.fps or 25.0, None, None
    if video:
        import cv2

        size = (int(source._capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(source._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        announced = source.expected_frames
        limit = min(announced, args.max_frames) if announced and args.max_frames else (announced or args.max_frames)
        source.close()  # each actor opens its own capture
    try:
        with sigterm_as_interrupt(), ray_session(args.address) as cluster:
            import pyarrow as pa

            pool = plan_pool(cluster, args.actors, args.threads)
            if video:
                longest = MAX_SEGMENT if out is None else MAX_SEGMENT // 8  # saved frames travel back: less in flight
                seg = max(batch_size, min(longest, math.ceil(limit / (4 * pool.actors)))) if limit else 2**62
                starts = list(range(0, limit, seg)) if limit else [0]
                table = pa.table({"start": starts, "stop": [min(s + seg, limit) if limit else 2**62 for s in starts]})
                per_call, total = 1, limit
            else:
                table = pa.table({"index": [i for i, _ in items], "path": [str(p) for _, p in items]})
                per_call = max(1, min(batch_size, math.ceil(len(items) / pool.actors)))
                total = None if source.videos else len(items)
            n_calls = math.ceil(table.num_rows / per_call)
            pool.actors = max(1, min(pool.actors, n_calls))
            ns = copy.copy(args)
            ns.threads, ns.func = pool.threads, None
            shipped = model_file(str(args.model))
            spec = DetectorSpec(
                build=_CliBuild(ns, threshold), model=str(args.model), threads=pool.threads,
                model_data=[ray.put(shipped.read_bytes())] if shipped is not None else None,
            )  # fmt: skip
            job = Job(
                mode="video" if video else "files", source_kind=source.kind, spec=source.spec,
                root=str(source.root) if source.root is not None else None, out=str(out) if out else None,
                handle=handle, max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, video_size=size,
                video_frames=announced, max_frames=args.max_frames, return_frames=video and out is not None,
                version=facespot.__version__,
            )  # fmt: skip
            work = (table, min(MAX_BLOCKS, n_calls), per_call, pool.actors, pool.threads, spec, job)
            if cluster.client:  # ray://: Ray Data's executor cannot run in a Ray Client driver; it runs in an actor there
                batches = _through_client(ray, work)
            else:
                batches = result_batches(*work)
            bar = _progress(args.progress, total, verb, video)
            try:
                for batch in batches:
                    going = True
                    for row in _rows(batch):
                        going = outs.take(row, fps, size)
                        if not going:
                            break
                        bar.update(1 if not str(row["note"]) else 0)
                    if not going:
                        break
            finally:
                bar.close()
                outs.close()
    except (FacespotError, KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # Ray's errors, and what reaches us through it: ConnectionError, OSError, ArrowInvalid
        hint = ""
        if json_path is not None and outs.results and not video:
            hint = f"; the {outs.results} result(s) in {json_path} are complete: rerun with --resume to continue"
        raise FacespotError(f"the Ray job failed: {_ray_failure(exc)}{hint}") from None
    return outs.report, cluster, pool, outs.results


class _CliBuild:
    """Picklable ``build(model)`` for the actors: the CLI's :func:`build_detector` on ``args``."""

    def __init__(self, args: argparse.Namespace, threshold: float) -> None:
        self.args = args
        self.threshold = threshold

    def __call__(self, model: str):
        from facespot.cli.detect import build_detector

        args = copy.copy(self.args)
        args.model = model  # the actor's copy of a shipped model file
        return build_detector(args, self.threshold)


def _progress(enabled: bool | None, total: int | None, desc: str, video: bool):
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, desc=desc, unit="frame" if video else "img", disable=not show, file=sys.stderr)
