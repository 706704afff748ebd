"""The ``--json FILE`` of ``facespot detect``, for both engines: one writer at a time, resumable,
with the settings that decided its faces recorded beside it.

* **One writer.** The file is opened without truncating it and locked (``flock``, exclusive,
  not waiting) before anything is written, so a second run given the same path stops with one
  line instead of interleaving its lines with the first run's. The lock goes with the process:
  a crashed run leaves none behind. A file replaced while a run waited for its lock is opened
  again, so the lock always holds the file at the path.
* **Settings.** ``FILE.settings.json`` records the model (the name given and the SHA-256 of
  the weights it loaded) and every option that decides which faces a line holds.
* **Resume.** ``--resume`` keeps the earlier run's complete records (its error lines, repeated
  sources and a half-written last line are dropped; the file is rewritten atomically, the new
  one locked before it takes the old one's place) and returns their sources, so only the rest
  is processed. It refuses a file written with other settings: continuing it would mix two
  detectors' answers in one file without a trace.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facespot import __version__
from facespot.errors import FacespotError, OutputError
from facespot.files import create_beside, write_atomically

if TYPE_CHECKING:  # pragma: no cover
    from facespot.runtime.settings import DetectionSettings

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; one writer is then the user's care
    fcntl = None  # type: ignore[assignment]

SETTINGS_SUFFIX = ".settings.json"

# settings key -> the option a user changes it with (in error messages)
_OPTIONS = {
    "model": "--model", "weights_sha256": "the weights' SHA-256", "backend": "--backend", "threshold": "--threshold",
    "nms_iou": "--nms-iou", "max_faces": "--max-faces", "min_size": "--min-size", "resize": "--resize",
    "max_side": "--max-side", "min_side": "--min-side", "multiscale": "--multiscale",
}  # fmt: skip


def settings_path(path: str | Path) -> Path:
    """Where the settings of the JSON lines in ``path`` are recorded."""
    path = Path(path)
    return path.with_name(path.name + SETTINGS_SUFFIX)


def run_settings(settings: DetectionSettings, detector: Any) -> dict[str, Any]:
    """What decides the faces of a JSON line: the model as given and the SHA-256 of the weights
    file it loaded (a retrained file under the same name differs), and the detection options.
    Not threads, batch sizes or actors: they change how fast, never which faces."""
    from facespot.runtime.packaged import sha256_file

    s = settings
    weights = Path(str(getattr(detector, "source", "") or ""))
    return {
        "model": str(s.model), "weights_sha256": sha256_file(weights) if weights.is_file() else None,
        "backend": s.backend, "threshold": float(s.threshold), "nms_iou": float(s.nms_iou),
        "max_faces": int(s.max_faces), "min_size": float(s.min_size), "resize": str(s.resize),
        "max_side": int(s.max_side), "min_side": int(s.min_side), "multiscale": bool(s.multiscale),
    }  # fmt: skip


def _lock(fd: int, path: Path) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise OutputError(
            f"--json {path}: another facespot run is writing this file; wait for it to finish, or give another path"
        ) from None


def _open_locked(path: Path) -> int:
    """A descriptor of ``path`` (created when missing, never truncated), locked by this run."""
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            _lock(fd, path)
            mine, now = os.fstat(fd), os.stat(path)
        except FileNotFoundError:  # replaced or removed while we locked it: take the new one
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            raise
        if (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino):
            return fd
        os.close(fd)
    raise OutputError(f"--json {path}: the file keeps being replaced by another program; give another path")


def _kept_records(path: Path) -> tuple[list[bytes], set[str]]:
    """The complete ``facespot detect`` image records of ``path`` (each source once) and their sources."""
    kept: list[bytes] = []
    done: set[str] = set()
    lines = 0
    with open(path, "rb") as src:
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
                kept.append(line)
    if lines and not done and not _only_detect_records(path):
        raise FacespotError(f"{path}: --resume: this is not a `facespot detect --json` file; not touching it")
    return kept, done


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


def _check_settings(path: Path, settings: dict[str, Any]) -> None:
    """Refuse to continue ``path`` unless it was written with ``settings``."""
    recorded_at = settings_path(path)
    try:
        recorded = json.loads(recorded_at.read_text(encoding="utf-8"))["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        raise FacespotError(
            f"--resume {path}: the settings it was written with are unknown ({recorded_at} is missing or unreadable), "
            "so its lines may come from another model or thresholds; run without --resume to start it afresh"
        ) from None
    differ = [k for k in _OPTIONS if recorded.get(k) != settings.get(k)]
    if differ:
        what = ", ".join(f"{_OPTIONS[k]} {recorded.get(k)} (this run: {settings.get(k)})" for k in differ)
        raise FacespotError(
            f"--resume {path}: it was written with {what}; resume with the same settings, or write another --json file"
        )


def _replace_locked(path: Path, old_fd: int, lines: list[bytes]) -> int:
    """``path`` rewritten to ``lines`` atomically; returns the new file's descriptor, locked
    before it replaced the old one (whose lock is given up only then)."""
    fd, tmp = create_beside(path)
    try:
        _lock(fd, path)
        os.write(fd, b"".join(lines))
        os.fsync(fd)
        os.replace(tmp, path)
    except BaseException:
        os.close(fd)
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    os.close(old_fd)
    return fd


def open_json_lines(path: str | Path, settings: dict[str, Any], resume: bool = False) -> tuple[JsonLinesFile, set[str]]:
    """Open ``path`` for a run's JSON lines: locked for this run, ``settings`` recorded beside it.

    Without ``resume`` the file is emptied; with it, the earlier run's complete records are
    kept (refused when its recorded settings differ from ``settings``) and their ``source``
    names returned: the run processes only the others and appends. Errors are one line.
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # /dev/null, a FIFO: no truncating, locking or settings beside it
        raise OutputError(
            f"--json {path}: not a regular file (a device or a pipe); give a file, or '-' for standard output"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _open_locked(path)
    except FacespotError:
        raise
    except OSError as exc:
        raise OutputError(f"--json {path}: cannot write ({exc.strerror or exc})") from None
    try:
        done: set[str] = set()
        if resume:
            kept, done = _kept_records(path)
            if done:
                _check_settings(path, settings)  # before anything is changed
            try:
                fd = _replace_locked(path, fd, kept)
            except FacespotError:
                raise
            except OSError as exc:
                raise OutputError(f"--json {path}: cannot write ({exc.strerror or exc})") from None
        else:
            os.ftruncate(fd, 0)
        record = {"facespot": __version__, "settings": settings}
        write_atomically(settings_path(path), lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8"))
        return JsonLinesFile(fd, path), done
    except BaseException:
        os.close(fd)
        raise


class JsonLinesFile:
    """The open ``--json`` file of a run: each :meth:`write` lands whole or not at all.

    A text file object buffers, so a full disk (or a quota) would leave a cut-off last line and
    surface as a raw ``OSError`` at the next flush or at close. Here every write is one
    unbuffered ``os.write`` of whole lines; when it fails, the file is cut back to the lines
    before it and the error is one line (:class:`OutputError`) that says they are kept."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd, self.path = fd, path
        self.closed = False

    @property
    def name(self) -> str:
        return str(self.path)

    def write(self, text: str) -> int:
        data = memoryview(text.encode("utf-8"))
        start = os.lseek(self.fd, 0, os.SEEK_END)
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except BaseException as exc:  # a full disk, or a stop between two parts of a long write
            try:
                os.ftruncate(self.fd, start)
            except OSError:
                pass
            if not isinstance(exc, OSError):
                raise
            raise OutputError(
                f"--json {self.path}: cannot write ({exc.strerror or exc}); the lines written before are complete"
            ) from None
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered: :meth:`write` went to the file."""

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)

    def __enter__(self) -> "JsonLinesFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
