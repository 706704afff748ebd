"""The ``--engine ray`` options of ``facespot detect`` and ``facespot blur`` (no Ray import here:
the local CLI only builds its parser from this)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class EngineOptions:
    """Where and how wide a Ray run goes: ``address`` (None: start Ray here), ``actors`` and
    ``batch_size`` (None: their defaults, see :func:`add_engine_arguments`)."""

    address: str | None = None
    actors: int | None = None
    batch_size: int | None = None


def add_engine_arguments(p: argparse.ArgumentParser, resume: bool = False) -> None:
    g = p.add_argument_group("engine (facespot[ray])")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="'local' (default) or 'ray': detection in a Ray Data actor pool, on this machine or a cluster")  # fmt: skip
    g.add_argument("--address", metavar="ADDR",
                   help="with --engine ray: join a Ray cluster ('auto', 'HOST:PORT' or 'ray://HOST:PORT'); default: start Ray on this machine")  # fmt: skip
    g.add_argument("--actors", type=int, metavar="N",
                   help="with --engine ray: detector actors (default: the cluster's CPUs divided by --threads)")  # fmt: skip
    g.add_argument("--batch-size", type=int, metavar="B",
                   help="with --engine ray: images per actor call (default: 16); the network still sees one image at a time")  # fmt: skip
    if resume:
        g.add_argument("--resume", action="store_true",
                       help="keep the complete lines of an earlier run's --json file and process only the rest "
                            "(refused when that run used another model or thresholds)")  # fmt: skip


def check_local(args: argparse.Namespace) -> None:
    """Ray-only options given without ``--engine ray`` are a mistake worth one line."""
    from facespot.errors import FacespotError

    given = [flag for flag, value in (("--address", args.address), ("--actors", args.actors), ("--batch-size", args.batch_size))
             if value is not None]  # fmt: skip
    if given:
        raise FacespotError(f"{', '.join(given)}: only used with --engine ray")


def engine_options(args: argparse.Namespace) -> EngineOptions:
    """The :class:`EngineOptions` of a parsed command line."""
    return EngineOptions(address=args.address, actors=args.actors, batch_size=args.batch_size)
