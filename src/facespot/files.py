"""Writing files safely: atomic writes (a crash or a full disk never leaves a half-written
weights file, checkpoint or export where a complete one is expected) and the one check every
command runs on its outputs before it starts (:func:`check_outputs`: never overwrite an
input, fail early with one line when a path cannot be written)."""

from __future__ import annotations

import errno
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from facespot.errors import FacespotError, OutputError


def create_beside(path: Path, suffix: str = ".tmp") -> tuple[int, str]:
    """``(fd, name)`` of a new file with a unique hidden name beside ``path``, open for reading
    and writing. Its permissions are what a plain ``open()`` gives (0o666 less the umask, which
    the kernel applies): ``tempfile.mkstemp`` makes 0600 files, and reading the umask means
    setting it, which other threads would see (their files made with the wrong mode)."""
    for _ in range(100):
        name = path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        try:
            return os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), str(name)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))


def write_atomically(path: str | Path, write: Callable[[str], object], suffix: str = ".tmp") -> Path:
    """Call ``write(tmp_name)`` on a temporary file beside ``path``, then rename it over
    ``path`` (``os.replace`` is atomic on one file system). The temporary file is removed
    whatever goes wrong. ``suffix``: for writers that insist on an extension."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = create_beside(path, suffix)
        mode = os.fstat(fd).st_mode & 0o7777  # what a plain open() gives here (0o666 less the umask)
    except OSError as exc:  # read-only, no permission, a file where the folder should be
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, mode)  # a writer that replaced the file (safetensors does) may have made it private
        os.replace(tmp, path)
    except OSError as exc:  # disk full, the target is a folder, ...
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# ---------------------------------------------------------------------- output checks


@dataclass(frozen=True)
class Output:
    """A path a command will write: ``option`` names it in errors (``--json``), ``kind`` is
    ``"file"`` or ``"dir"`` (a folder the command writes files into)."""

    option: str
    path: Path
    kind: str = "file"


def resolved_path(path: str | Path) -> Path:
    """Absolute path with links followed (a link loop: the plain absolute path)."""
    try:
        return Path(os.path.abspath(Path(path).expanduser())).resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare the plain absolute path
        return Path(os.path.abspath(path))


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _can_create_in(folder: Path, cache: dict[Path, str | None]) -> str | None:
    """None when a file can be created in ``folder`` (tried for real: permissions, read-only
    mounts and root all answer correctly), else the reason."""
    if folder not in cache:
        try:
            fd, tmp = tempfile.mkstemp(prefix=".facespot-write-check-", dir=folder)
        except OSError as exc:
            cache[folder] = exc.strerror or str(exc)
        else:
            os.close(fd)
            os.unlink(tmp)
            cache[folder] = None
    return cache[folder]


def _writable_problem(kind: str, path: Path, cache: dict[Path, str | None]) -> str | None:
    if path.exists():
        if kind == "file" and path.is_dir():
            return "is a folder; give a file name"
        if kind == "dir" and not path.is_dir():
            return "is a file; give a folder"
        if kind == "file" and not path.is_file():  # opening a FIFO to try it would wait for a reader
            return "is a device or a pipe, not a regular file; give a file name"
        if kind == "file":
            try:
                with open(path, "ab"):  # append mode: nothing is changed
                    pass
            except OSError as exc:
                return f"cannot write ({exc.strerror or exc})"
            return None
        reason = _can_create_in(path, cache)
        return None if reason is None else f"cannot write into it ({reason})"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot create it: {parent} is a file, not a folder"
    reason = _can_create_in(parent, cache)
    return None if reason is None else f"cannot create it in {parent} ({reason})"


def check_outputs(outputs: Iterable[Output], inputs: Iterable[str | Path | None] = ()) -> None:
    """The one check every command runs on what it will write, before any work starts.

    Raises :class:`FacespotError` (naming the option and the path) when an output

    * is one of the ``inputs`` (same file after following links, or hard-linked to it), an
      input folder, or an existing file inside an input folder -- so no command can replace
      a photo, a video, a recipe, weights or ground truth with its results;
    * is a folder where a file is expected or the other way round;
    * is also another of the ``outputs`` (same path or hard link): two writers would clobber
      one file (``--save out.jpg --json out.jpg``);
    * cannot be written (read-only, no permission, a file in the way of its folder).

    Nothing is left behind: writability is tried with a temporary file that is removed at
    once, and the writers make missing folders when they write. Inputs and outputs are
    compared through sets, so a folder of 100k images costs a stat per file.
    """
    by_path: dict[Path, Path] = {}
    by_id: dict[tuple[int, int], Path] = {}
    in_dirs: dict[Path, Path] = {}
    for given in (Path(i) for i in inputs if i is not None and str(i) != ""):
        resolved = resolved_path(given)
        by_path.setdefault(resolved, given)
        if resolved.is_dir():
            in_dirs.setdefault(resolved, given)
        else:
            fid = _file_id(resolved)
            if fid is not None:
                by_id.setdefault(fid, given)
    cache: dict[Path, str | None] = {}
    written: dict[Path, Output] = {}
    written_ids: dict[tuple[int, int], Output] = {}
    for out in outputs:
        if out.path is None or str(out.path) in ("", "-"):
            continue
        target = resolved_path(out.path)
        exists = target.exists()
        fid = _file_id(target) if exists else None
        given = by_path.get(target) or (by_id.get(fid) if fid is not None else None)
        if given is not None:
            raise FacespotError(f"{out.option} {out.path}: this is the input {given}; writing it would destroy the input")
        other = written.get(target) or (written_ids.get(fid) if fid is not None else None)
        if other is not None:
            raise FacespotError(
                f"{out.option} {out.path}: the same file as {other.option} {other.path}; "
                "two outputs would overwrite each other -- give them different paths"
            )
        written[target] = out
        if fid is not None:
            written_ids[fid] = out
        if out.kind == "file" and exists and in_dirs:
            folder = next((in_dirs[p] for p in target.parents if p in in_dirs), None)
            if folder is not None:
                raise FacespotError(
                    f"{out.option} {out.path}: an existing file inside the input folder {folder}; writing it would "
                    "destroy input data -- choose another path"
                )
        problem = _writable_problem(out.kind, target, cache)
        if problem:
            raise OutputError(f"{out.option} {out.path}: {problem}")


def open_output(path: str | Path, option: str = "output", mode: str = "w"):
    """Open an output text file (making its folder) with one-line errors instead of tracebacks."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, mode, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot write ({exc.strerror or exc})") from None


def ensure_folder(path: str | Path, option: str = "output") -> Path:
    """Make an output folder (and its parents) with one-line errors instead of tracebacks."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot create the folder ({exc.strerror or exc})") from None
    return path
