"""Joining or starting Ray, and sizing the actor pool. Ray does all scheduling.

* :func:`require_ray` -- a one-line :class:`FacespotError` with the install command when the
  ``ray`` extra is missing (``import facespot`` and the local CLI never import Ray).
* :func:`ray_session` -- reuses a Ray already initialised in this process (a notebook, a
  test), else starts a local Ray on this machine (``address=None``) or joins a cluster
  (``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:PORT"``); shuts down only what it started.
* :func:`plan_pool` -- how many actors and how many threads each: by default one
  single-threaded ONNX Runtime session per CPU of the cluster (parallel images scale better
  than threads inside one small network), each actor reserving as many CPUs as it has threads.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from facespot.errors import FacespotError

INSTALL_HINT = 'pip install "facespot[ray]"'


def require_ray():
    """Import Ray (and Ray Data), or say how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise FacespotError(f"--engine ray needs Ray Data, which is not installed ({exc}); install it with: {INSTALL_HINT}") from None
    return ray


@dataclass
class Cluster:
    """What the session runs on: total CPUs, the largest node's CPUs, whether we started it."""

    cpus: int
    node_cpus: int
    nodes: int
    started: bool
    address: str | None

    @property
    def client(self) -> bool:
        """Joined through Ray Client (``ray://``): the driver is a client of the cluster."""
        return bool(self.address) and str(self.address).startswith("ray://")


def _cluster(ray, started: bool, address: str | None) -> Cluster:
    cpus = int(ray.cluster_resources().get("CPU", 0))
    alive = [n for n in ray.nodes() if n.get("Alive")]
    node_cpus = max((int(n.get("Resources", {}).get("CPU", 0)) for n in alive), default=cpus)
    return Cluster(cpus=max(cpus, 1), node_cpus=max(node_cpus, 1), nodes=max(len(alive), 1), started=started, address=address)


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes, when a ``HOST:PORT`` / ``ray://HOST:PORT`` has nobody
    listening (Ray itself retries for a long time). ``auto`` is left to Ray (it fails fast)."""
    import socket

    target = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = target.rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as exc:
        raise FacespotError(
            f"--address {address}: nothing answers there ({exc.strerror or exc}); start the head with "
            f"`ray start --head` and give its address, or leave out --address to run on this machine"
        ) from None


@contextmanager
def ray_session(
    address: str | None = None, *, num_cpus: int | None = None, object_store_memory: int | None = None
) -> Iterator[Cluster]:
    """A Ray session for one run: the current one if any, a new local one, or a cluster's."""
    ray = require_ray()
    if ray.is_initialized():
        yield _cluster(ray, False, address)
        return
    # quiet: no dashboard, no start-up banners; actors' output stays in Ray's logs so that it can
    # never mix into `--json -` on standard output (their errors still arrive as exceptions)
    kwargs = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    try:
        if address:
            _reachable(address)
            ray.init(address=address, **kwargs)
        else:  # "local": always a fresh Ray on this machine, even when RAY_ADDRESS is set
            ray.init(address="local", num_cpus=num_cpus, object_store_memory=object_store_memory, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if address:
            raise FacespotError(
                f"--address {address}: cannot join a Ray cluster ({first}); start one with `ray start --head` "
                f"(and `ray start --address=HEAD:6379` on the other machines), or leave out --address to run on this "
                f"machine; a cluster with token authentication (Ray >= 2.59 turns it on for `ray start --head`) also "
                f"needs RAY_AUTH_MODE=token and RAY_AUTH_TOKEN=<`ray get-auth-token` on the head> here"
            ) from None
        raise FacespotError(f"cannot start a local Ray ({first})") from None
    try:
        yield _cluster(ray, True, address)
    finally:
        ray.shutdown()


@contextmanager
def data_context(preserve_order: bool = True) -> Iterator[None]:
    """Ray Data settings for a CLI run (restored afterwards: a notebook keeps its own).

    Results in source order (so JSON lines, WIDER files and video frames come out as the
    local run writes them), no Ray progress bars (the CLI has its own), no plan banners.
    """
    import ray.data

    ctx = ray.data.DataContext.get_current()
    saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars, ctx.enable_auto_log_stats,
             ctx.print_on_execution_start)  # fmt: skip
    loggers = [logging.getLogger(n) for n in ("ray.data", "ray")]
    levels = [lg.level for lg in loggers]
    ctx.execution_options.preserve_order = preserve_order
    ctx.enable_progress_bars = False
    ctx.enable_auto_log_stats = False
    ctx.print_on_execution_start = False
    for lg in loggers:  # Ray Data warns about the very settings above ("progress bars disabled")
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        (ctx.execution_options.preserve_order, ctx.enable_progress_bars, ctx.enable_auto_log_stats,
         ctx.print_on_execution_start) = saved  # fmt: skip
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@dataclass
class Pool:
    actors: int
    threads: int

    def describe(self, cluster: Cluster) -> str:
        where = f"{cluster.nodes} node(s), {cluster.cpus} CPU(s)"
        return f"{self.actors} actor(s) x {self.threads} thread(s) on {where}"


def plan_pool(cluster: Cluster, actors: int | None = None, threads: int | None = None) -> Pool:
    """Actors and threads per actor (each actor reserves ``threads`` CPUs).

    Neither given: one 1-thread actor per CPU. ``actors`` only: the CPUs shared out among
    them (at most one node's worth each). ``threads`` only: as many actors as fit.
    """
    if actors is not None and actors < 1:
        raise FacespotError(f"--actors must be at least 1, got {actors}")
    if threads is not None and threads < 1:
        raise FacespotError(f"--threads must be at least 1, got {threads}")
    if threads is None:
        threads = 1 if actors is None else max(1, min(cluster.node_cpus, cluster.cpus // actors))
    if threads > cluster.node_cpus:
        raise FacespotError(
            f"--threads {threads}: each actor needs that many CPUs on one machine, but the largest Ray node has {cluster.node_cpus}"
        )
    if actors is None:
        actors = max(1, cluster.cpus // threads)
    if actors * threads > cluster.cpus and cluster.started:
        raise FacespotError(
            f"--actors {actors} x {threads} thread(s) needs {actors * threads} CPUs but this Ray has {cluster.cpus}; "
            f"use fewer actors or threads, or join a larger cluster with --address"
        )
    return Pool(actors=actors, threads=threads)
