"""Where the network runs: PyTorch or ONNX Runtime, behind one ``run(x) -> outputs`` call.

Both take a normalised ``(B, 3, H, W)`` float32 NumPy batch and return the dense outputs
(``deltas``, ``logits`` and, for keypoint models, ``points``) as NumPy, so everything
before and after the network is shared and the two backends can be compared output for
output.

Threads: ONNX Runtime gets ``intra_op_num_threads`` = the ``threads`` argument, else the
number of *physical* cores this process may use (hyper-threads slow convolution down more
often than they help). ``inter_op`` is 1: these graphs are a single chain. PyTorch's thread
count is process-wide (``torch.set_num_threads``); the torch backend sets it only when
``threads`` is given. Its OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE``, set by
``import facespot`` unless the environment says otherwise): busy-waiting threads made the
torch backend ~10x slower on the main thread of a machine whose cores were shared. Import
facespot before torch (or export the variable yourself) for this to take effect.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np

from facespot.errors import FacespotError

BACKENDS = ("onnxruntime", "torch")


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (Linux); else ``os.cpu_count()``."""
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        allowed = set(range(os.cpu_count() or 1))
    cores: set[tuple[str, str]] = set()
    try:
        cpu = None
        phys = core = ""
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f.read().splitlines() + [""]:
                if not line.strip():
                    if cpu is not None and cpu in allowed:
                        cores.add((phys, core or str(cpu)))
                    cpu, phys, core = None, "", ""
                    continue
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "processor" and value.isdigit():
                    cpu = int(value)
                elif key == "physical id":
                    phys = value
                elif key == "core id":
                    core = value
    except OSError:
        pass
    return max(1, len(cores) if cores else len(allowed))


class Backend(Protocol):
    name: str
    threads: int | None

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """``(B, 3, H, W)`` float32 -> dense outputs, batch axis first."""
        ...


class TorchBackend:
    """Runs the ``torch.nn.Module`` in eval mode under ``torch.inference_mode``."""

    name = "torch"

    def __init__(self, model, threads: int | None = None, device: str = "cpu") -> None:
        import torch

        if threads is not None:
            torch.set_num_threads(int(threads))
        self.threads = threads if threads is not None else torch.get_num_threads()
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.n_out = 3 if int(getattr(model, "num_keypoints", 0) or 0) > 0 else 2

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            out = self.model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device))
        return [t.float().cpu().numpy() for t in out[: self.n_out]]


def session_options(threads: int | None):
    """ONNX Runtime options: intra-op threads, one inter-op thread, all graph optimisations."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads) if threads else physical_cores()
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3  # errors only: no "removing initializer" chatter
    return so


class OnnxRuntimeBackend:
    """An ``onnxruntime.InferenceSession`` on the CPU execution provider."""

    name = "onnxruntime"

    def __init__(self, model_bytes_or_path: bytes | str | Path, threads: int | None = None, source: str = "") -> None:
        import onnxruntime as ort

        so = session_options(threads)
        self.threads = so.intra_op_num_threads
        self.source = source or "ONNX model"
        what = model_bytes_or_path if isinstance(model_bytes_or_path, bytes) else str(model_bytes_or_path)
        try:
            self.session = ort.InferenceSession(what, sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise FacespotError(f"{source or 'ONNX model'}: ONNX Runtime cannot load it ({exc})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        try:
            return self.session.run(self.output_names, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})
        except Exception as exc:
            if not type(exc).__module__.startswith("onnxruntime"):
                raise
            # ONNX Runtime refuses the input (a graph traced for another input size or model than
            # its facespot metadata says) or fails inside: one line naming the file, not a traceback
            detail = " ".join(str(exc).split())
            raise FacespotError(
                f"{self.source}: ONNX Runtime cannot run it on a {'x'.join(map(str, x.shape))} input ({detail}); "
                "is it a `facespot export` of the model its metadata names?"
            ) from None


def export_to_bytes(model, metadata: dict[str, str] | None = None) -> bytes:
    """Export a torch model to ONNX in memory (through a temp file), with facespot metadata.

    Traced at the model's fixed size, else its training size; H and W stay dynamic.
    """
    from facespot.runtime.onnx_export import export_onnx
    from facespot.runtime.onnx_meta import add_metadata

    with tempfile.TemporaryDirectory(prefix="facespot-onnx-") as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(model, path)
        if metadata:
            add_metadata(path, metadata)
        return path.read_bytes()
