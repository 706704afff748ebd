"""The parts of ``--engine ray`` that need no Ray: Ray stays optional, pool sizing, option
checks (the resumable JSON file, shared with the local run: tests/runtime/test_json_lines.py).
These run with or without the ``ray`` extra."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from facespot.cli import main
from facespot.distributed.session import Cluster, plan_pool
from facespot.errors import FacespotError


def test_import_facespot_and_the_local_cli_never_import_ray(tmp_path):
    code = (
        "import sys, facespot\n"
        "from facespot.cli import build_parser\n"
        "build_parser().parse_args(['detect', 'x.jpg', '--engine', 'ray', '--actors', '2'])\n"
        "import facespot.distributed\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


def test_engine_ray_without_ray_is_one_line(tmp_path):
    """As if the extra were not installed: exit 2 and the install command, no traceback."""
    (tmp_path / "a.jpg").write_bytes(b"")
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from facespot.cli import main\n"
        f"sys.exit(main(['detect', {str(tmp_path)!r}, '--engine', 'ray']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and 'pip install "facespot[ray]"' in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("flag", [["--actors", "2"], ["--address", "auto"], ["--batch-size", "8"]])
def test_ray_options_need_the_ray_engine(tmp_path, capsys, flag):
    assert main(["detect", str(tmp_path), *flag]) == 2
    assert "only used with --engine ray" in capsys.readouterr().err


def test_pool_defaults_one_single_threaded_session_per_cpu():
    two = Cluster(cpus=2, node_cpus=2, nodes=1, started=True, address=None)
    assert (plan_pool(two).actors, plan_pool(two).threads) == (2, 1)
    assert (plan_pool(two, actors=1).actors, plan_pool(two, actors=1).threads) == (1, 2)  # the CPUs shared out
    assert (plan_pool(two, threads=2).actors, plan_pool(two, threads=2).threads) == (1, 2)
    big = Cluster(cpus=64, node_cpus=16, nodes=4, started=False, address="auto")
    assert (plan_pool(big).actors, plan_pool(big, actors=2).threads) == (64, 16)  # never more than one node holds
    with pytest.raises(FacespotError, match="needs 4 CPUs but this Ray has 2"):
        plan_pool(two, actors=2, threads=2)
    with pytest.raises(FacespotError, match="largest Ray node has 16"):
        plan_pool(big, threads=32)


@pytest.mark.parametrize(
    "failure, words",
    [
        (ConnectionError("Could not connect to 10.0.0.9:6379"), "Could not connect to 10.0.0.9:6379"),
        (OSError(28, "No space left on device"), "No space left on device"),
    ],
)
def test_non_ray_exceptions_of_the_ray_job_are_one_line(monkeypatch, tmp_path, failure, words):
    """A lost cluster, a full disk or an Arrow error reach the driver as plain Python exceptions;
    they end the run as one FacespotError line (with the --resume hint), never a traceback.
    Ray itself is stubbed out: nothing is started."""
    import contextlib
    from types import SimpleNamespace

    import facespot.distributed.session as session
    from facespot.distributed.options import EngineOptions
    from facespot.distributed.run import _execute
    from facespot.runtime.settings import DetectionSettings

    @contextlib.contextmanager
    def failing_session(address=None, **kwargs):
        raise failure
        yield  # pragma: no cover

    monkeypatch.setattr(session, "require_ray", lambda: SimpleNamespace())
    monkeypatch.setattr(session, "ray_session", failing_session)
    engine = EngineOptions(address="10.0.0.9:6379")
    source = SimpleNamespace(kind="folder", fps=None)
    outs = SimpleNamespace(results=3)
    json_path = tmp_path / "faces.jsonl"
    with pytest.raises(FacespotError) as caught:
        _execute(DetectionSettings("photos"), engine, source, [], 0.5, None, None, outs, 16, json_path, "detect")
    message = str(caught.value)
    assert message.startswith("the Ray job failed: ") and words in message and "\n" not in message
    assert f"the 3 result(s) in {json_path} are complete: rerun with --resume" in message


def test_the_actors_build_their_detector_from_the_cli_runs_settings():
    """What travels to a Ray actor is the CLI's DetectionSettings (plain, picklable data, no
    argparse Namespace), and it builds there the detector the local run builds."""
    from facespot.cli import build_parser
    from facespot.cli.detect import detection_settings
    from facespot.distributed.run import ActorDetector

    args = build_parser().parse_args(["detect", "photos", "--nms-iou", "0.25", "--max-faces", "9", "--multiscale", "--progress"])
    build = pickle.loads(pickle.dumps(ActorDetector(detection_settings(args), 0.3)))
    assert type(build.settings).__module__ == "facespot.runtime.settings"
    det = build("default")
    o = det.options
    assert (o.score_threshold, o.iou_threshold, o.max_faces, o.mode) == (0.3, 0.25, 9, "multiscale")
    assert det.on_views is not None and not det.on_views.show  # the driver shows the run's bars, the actors none
