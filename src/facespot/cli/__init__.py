"""The ``facespot`` command: argument parsing only, each command group in its own module.

Every group module has ``register(subparsers)`` that adds its parser and sets
``func(args) -> int``. User errors (:class:`facespot.errors.FacespotError`) print one
line and exit non-zero; they never show a traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import select
import sys
from importlib import import_module

from facespot import __version__
from facespot.errors import FacespotError, Terminated, sigterm_as_interrupt

# Command group modules under facespot.cli, in the order `facespot --help` lists them.
_GROUPS = ("detect", "blur", "serve", "export", "data", "eval", "models", "train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facespot", description="Train, evaluate and run face detectors.")
    parser.add_argument("--version", action="version", version=f"facespot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in _GROUPS:
        import_module(f"facespot.cli.{group}").register(sub)
    return parser


def _stdout_reader_gone() -> bool:
    """True when standard output is a pipe whose reading end is closed (``| head -1`` has read
    what it wanted): the pipe then reports an error condition to ``poll``."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or stdout is no file
        return False


# What a write meets when the disk (or quota, or file size limit) is full: an OSError no command
# handles on its own, e.g. `facespot models > /full/disk/file`.
_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _stdout_fails() -> bool:
    """True when standard output cannot take what it still holds (the disk behind it is full)."""
    try:
        sys.stdout.flush()
        return False
    except OSError:
        return True


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM (`kill`, `timeout`, `docker stop`) ends every command as Ctrl-C does, so the `finally`
    # blocks that remove temporary files and close writers run (an export's `.tmp` used to stay)
    with sigterm_as_interrupt():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # now, not at exit: a closed pipe must reach the handler below
        return code
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise
        # The reader left (`facespot models | head -1`): end quietly as Unix tools do, with
        # 128 + SIGPIPE, and nothing more for the closed pipe at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except FacespotError as exc:
        print(f"facespot: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:  # SIGTERM: the shell convention is 128 + 15, so scripts can tell it from Ctrl-C
        print("facespot: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("facespot: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in _FULL:
            raise
        if _stdout_fails():  # what it could not take is dropped, not retried (and reported) at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        where = f"{exc.filename}: cannot write" if exc.filename else "cannot write the output"
        print(f"facespot: error: {where} ({exc.strerror or exc})", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
