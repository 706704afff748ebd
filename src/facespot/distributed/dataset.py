"""``detect_dataset``: faces for any Ray Dataset of images, for notebooks and pipelines."""

from __future__ import annotations

import functools
from typing import Any

from facespot.errors import FacespotError


def _load(model: str, **kwargs: Any):
    from facespot.runtime.detector import load

    return load(model, **kwargs)


def detect_dataset(
    dataset,
    model: str = "default",
    *,
    column: str | None = None,
    rgb: bool = True,
    backend: str = "onnxruntime",
    threads: int = 1,
    actors: int | None = None,
    batch_size: int = 16,
    max_pixels: int | None = None,
    **options: Any,
):
    """Add a ``faces`` column (and an ``error`` column) to a Ray Dataset; lazy, like any
    ``map_batches``.

    ``column`` holds either image arrays (``HxWx3`` uint8; RGB unless ``rgb=False``, e.g. from
    ``ray.data.read_images(..., mode="RGB")``) or file paths, which are read with facespot's
    own decoder so a corrupt file gives an ``error`` message instead of failing the job.
    Default: ``"image"`` when the dataset has it, else ``"path"``.

    Each row's ``faces`` is a list of ``{"box": [x1, y1, x2, y2], "score": s, "keypoints":
    [[x, y], ...] or None}`` in the image's pixels (the fields of :meth:`Face.to_dict`,
    unrounded); ``error`` is ``""`` or the message for an image that could not be read.
    Detection runs in a pool of Ray actors, each holding one detector with ``threads``
    threads (and reserving that many CPUs): ``actors`` fixed, or by default a pool that
    grows from 1 to as many as the cluster's CPUs allow (``CPUs // threads``: all of them, so
    upstream read tasks compete with the actors for CPUs; pass a smaller ``actors`` to leave
    them room). ``model``, ``backend`` and ``**options`` are those of :func:`facespot.load`; a
    model *file* is shipped to the actors through Ray's object store.

    >>> import ray, facespot.distributed as fd
    >>> ds = ray.data.read_images("s3://bucket/photos/", mode="RGB", include_paths=True)
    >>> fd.detect_dataset(ds).drop_columns(["image"]).write_parquet("faces/")  # doctest: +SKIP
    """
    import facespot
    from facespot.distributed.session import require_ray
    from facespot.distributed.worker import DetectorSpec, DetectWorker, Job, model_file

    ray = require_ray()
    if batch_size < 1:
        raise FacespotError(f"batch_size must be at least 1, got {batch_size}")
    if threads < 1:
        raise FacespotError(f"threads must be at least 1, got {threads}")
    columns = list(dataset.columns() or [])
    if column is None:
        column = next((c for c in ("image", "path") if c in columns), None)
        if column is None:
            raise FacespotError(f"the dataset has neither an 'image' nor a 'path' column (columns: {', '.join(columns)}); pass column=")
    elif column not in columns:
        raise FacespotError(f"column {column!r} is not in the dataset (columns: {', '.join(columns)})")
    load_kwargs = dict(backend=backend, threads=threads, rgb=rgb, **options)
    if max_pixels is not None:
        load_kwargs["max_pixels"] = max_pixels
    _load(str(model), **load_kwargs)  # bad model names and options fail here, in one line, not in every actor
    shipped = model_file(str(model))
    spec = DetectorSpec(
        build=functools.partial(_load, **load_kwargs), model=str(model), threads=threads,
        model_data=[ray.put(shipped.read_bytes())] if shipped is not None else None,
    )  # fmt: skip
    job = Job(mode="column", column=column, rgb=rgb, max_pixels=max_pixels, version=facespot.__version__)
    if actors is not None:
        if actors < 1:
            raise FacespotError(f"actors must be at least 1, got {actors}")
        compute = ray.data.ActorPoolStrategy(size=actors)
    else:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        compute = ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, cpus // threads))
    return dataset.map_batches(
        DetectWorker, fn_constructor_kwargs={"spec": spec, "job": job}, batch_size=batch_size, compute=compute,
        num_cpus=threads, batch_format="numpy",
    )  # fmt: skip
