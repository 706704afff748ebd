"""Export a facespot model to ONNX and check it against PyTorch.

The graph ends at the dense outputs (``deltas``, ``logits``, ``points``); decoding and
suppression stay in NumPy (:func:`facespot.models.base.decode_outputs`, anchors from
``model.anchors``), so one runtime path serves every model and the ONNX file has no
post-processing ops that differ between runtimes.

Height and width are dynamic axes for fully convolutional models; fixed-size models
(BlazeFace) are exported at their size only. The batch axis is always dynamic. We use
the TorchScript-based exporter (``dynamo=False``): it needs no extra dependency
(the dynamo exporter needs ``onnxscript``) and handles these plain conv nets well.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facespot.errors import FacespotError
from facespot.files import write_atomically
from facespot.models.io import HALF_MIN_SIZE

INPUT_NAME = "images"
OUTPUT_NAMES = ("deltas", "logits", "points")


def output_names(model: torch.nn.Module) -> list[str]:
    """``deltas, logits`` plus ``points`` for keypoint models."""
    k = int(getattr(model, "num_keypoints", 0) or 0)
    return list(OUTPUT_NAMES if k > 0 else OUTPUT_NAMES[:2])


class _Exportable(torch.nn.Module):
    """Wrapper returning a tuple (ONNX needs a fixed output arity)."""

    def __init__(self, model: torch.nn.Module, n_out: int) -> None:
        super().__init__()
        self.model = model
        self.n_out = n_out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(x)
        return tuple(out[: self.n_out])


def export_onnx(
    model: torch.nn.Module,
    path: str | Path,
    height: int | None = None,
    width: int | None = None,
    opset: int = 17,
    dynamic: bool = True,
) -> Path:
    """Write ``model`` (in eval mode) to ``path`` as ONNX; returns the path.

    ``height``/``width`` give the tracing size (default: the model's fixed size, else
    its training size). ``dynamic`` makes H and W dynamic unless the model has a
    ``fixed_input_size``, where a different size would silently break the anchors.
    The file is written atomically.
    """
    fixed = getattr(model, "fixed_input_size", None)
    if fixed is not None:
        if (height, width) not in ((None, None), tuple(fixed)):
            raise FacespotError(
                f"model {getattr(model, 'name', '')!r} has a fixed input size {fixed[1]}x{fixed[0]} (WxH); "
                f"cannot export at {width}x{height}"
            )
        height, width = fixed
    if height is None or width is None:
        height, width = getattr(model, "train_input_size", (640, 640))
    names = output_names(model)
    axes: dict[str, dict[int, str]] = {INPUT_NAME: {0: "batch"}}
    if dynamic and fixed is None:
        axes[INPUT_NAME].update({2: "height", 3: "width"})
    for n in names:
        axes[n] = {0: "batch", 1: "anchors"} if (dynamic and fixed is None) else {0: "batch"}

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    dummy = torch.zeros(1, 3, int(height), int(width), device=device)
    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer / deprecation chatter
            torch.onnx.export(
                _Exportable(model, len(names)),
                (dummy,),
                tmp,
                input_names=[INPUT_NAME],
                output_names=names,
                dynamic_axes=axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )

    try:
        return write_atomically(path, write)
    finally:
        model.train(was_training)


@dataclass
class OnnxCheck:
    """Largest absolute difference per output between ONNX Runtime and PyTorch."""

    height: int
    width: int
    max_abs_diff: dict[str, float]

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff.values()) if self.max_abs_diff else 0.0


def check_onnx(
    model: torch.nn.Module,
    path: str | Path,
    height: int | None = None,
    width: int | None = None,
    batch: int = 1,
    seed: int = 0,
) -> OnnxCheck:
    """Run the same random input through ONNX Runtime and PyTorch; report max |diff|.

    Use a size different from the export size to check that the dynamic axes work.
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise FacespotError(f"{path}: ONNX file not found")
    fixed = getattr(model, "fixed_input_size", None)
    if height is None or width is None:
        height, width = fixed or getattr(model, "train_input_size", (640, 640))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3, int(height), int(width))).astype(np.float32)
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise FacespotError(f"{path}: ONNX Runtime cannot load it ({exc})") from None
    names = [o.name for o in sess.get_outputs()]
    got = sess.run(names, {sess.get_inputs()[0].name: x})
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        with torch.no_grad():
            ref = model(torch.from_numpy(x).to(device))
    finally:
        model.train(was_training)
    diffs = {}
    for name, a, b in zip(names, got, ref):
        b = b.detach().float().cpu().numpy()
        if a.shape != b.shape:
            raise FacespotError(f"{path}: output {name!r} has shape {a.shape}, PyTorch gives {b.shape}")
        diffs[name] = float(np.max(np.abs(a - b))) if a.size else 0.0
    return OnnxCheck(int(height), int(width), diffs)


def halve_weights(path: str | Path, min_size: int = HALF_MIN_SIZE) -> Path:
    """Store an ONNX file's float32 weights as float16, computed in float32 all the same.

    Each float32 initializer of at least ``min_size`` values becomes a float16 one followed by
    a ``Cast`` back to float32; ONNX Runtime folds those casts into float32 constants when it
    loads the file, so inference runs exactly as with float32 weights rounded to float16, at the
    same speed, from a file half the size (packaged models: ``scripts/ship_model.py --half``).
    Rewritten in place, atomically."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    path = Path(path)
    model = onnx.load(str(path))
    graph = model.graph
    casts = []
    for init in list(graph.initializer):
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < min_size:
            continue
        arr = numpy_helper.to_array(init).astype(np.float16)
        half = numpy_helper.from_array(arr, name=f"{init.name}__fp16")
        graph.initializer.remove(init)
        graph.initializer.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=f"{init.name}__cast"))
    for node in reversed(casts):
        graph.node.insert(0, node)
    return write_atomically(path, lambda tmp: onnx.save(model, tmp))
