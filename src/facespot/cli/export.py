"""``facespot export``: write a model to ONNX (optionally int8) and check it against PyTorch
(argument parsing only; the work is in :mod:`facespot.runtime`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a model to ONNX (optionally int8-quantised)",
        description=(
            "Export weights (.safetensors) or an untrained registry model (--untrained) to ONNX with facespot "
            "metadata inside, so `facespot detect --model OUT.onnx` needs nothing else. The ONNX Runtime outputs "
            "are compared with PyTorch at a second input size (dynamic axes). --quantize dynamic also writes "
            "OUT stem + .int8.onnx and reports how much outputs and faces move."
        ),
    )
    p.add_argument("model", metavar="MODEL_OR_WEIGHTS",
                   help="a .safetensors weights file, a packaged name (default, blazeface-front, ...), or a registry "
                        "name with --untrained")  # fmt: skip
    p.add_argument("--onnx", required=True, metavar="OUT", help="output .onnx file")
    p.add_argument("--height", type=int, help="tracing height (default: the model's fixed or training size)")
    p.add_argument("--width", type=int, help="tracing width")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    p.add_argument("--static", action="store_true", help="fixed height and width instead of dynamic axes")
    p.add_argument("--quantize", choices=("dynamic",), help="also write an int8 dynamically quantised copy")
    p.add_argument("--half", action="store_true",
                   help="store the weights as float16 in the file (half its size; ONNX Runtime computes in float32)")
    p.add_argument("--untrained", action="store_true", help="allow a bare registry name (random weights)")
    p.add_argument("--tolerance", type=float, default=1e-3, help="largest ONNX-vs-torch difference accepted (default: 1e-3)")
    p.set_defaults(func=run)


HALF_TOLERANCE = 0.05  # largest output change allowed from float16 weights (logits, box deltas)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from facespot.errors import FacespotError
    from facespot.files import Output, check_outputs
    from facespot.runtime.packaged import packaged_files, packaged_names, resolve_packaged, sha256_file

    out = Path(args.onnx)
    if out.suffix.lower() != ".onnx":
        raise FacespotError(f"{out}: the output name must end with .onnx")
    if (args.height is None) != (args.width is None):
        raise FacespotError("give both --height and --width, or neither")
    weights: Path | None = None
    inputs: list[Path] = []
    if Path(args.model).is_file():
        weights = Path(args.model)
        inputs = [weights]
    elif args.model in packaged_names():
        weights = resolve_packaged(args.model)  # the .safetensors, hash-checked
        inputs = packaged_files(args.model)  # its .onnx too: exporting over it would break the package
    outputs = [Output("--onnx", out)]
    if args.quantize == "dynamic":
        outputs.append(Output("--quantize", out.with_name(out.stem + ".int8.onnx")))
    check_outputs(outputs, inputs)  # before any model is built: never over an input, and writable

    from facespot.models import available, build
    from facespot.models.io import load_model
    from facespot.runtime.onnx_export import check_onnx, export_onnx, halve_weights
    from facespot.runtime.onnx_meta import META_SOURCE_SHA, add_metadata, model_metadata

    extra = {}
    if weights is None:
        if args.model not in available():
            known = ", ".join(available() + packaged_names())
            raise FacespotError(f"{args.model}: neither a weights file nor a known model; known names: {known}")
        if not args.untrained:
            raise FacespotError(f"{args.model!r} is a model architecture, not trained weights; pass a weights file or --untrained")
        model = build(args.model).eval()
        trained = False
    else:
        model = load_model(weights)
        extra[META_SOURCE_SHA] = sha256_file(weights)
        trained = True
    t = time.perf_counter()
    export_onnx(model, out, args.height, args.width, opset=args.opset, dynamic=not args.static)
    if args.half:
        halve_weights(out)
    add_metadata(out, model_metadata(model, extra))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {time.perf_counter() - t:.1f} s)")

    fixed = getattr(model, "fixed_input_size", None)
    if fixed is not None:
        h0, w0 = fixed
    elif args.height is not None:
        h0, w0 = args.height, args.width
    else:
        h0, w0 = model.train_input_size
    if fixed is None and not args.static:
        h1, w1 = max(32, int(h0) * 3 // 4 + 5), max(32, int(w0) + 37)  # another, non-square, odd size
    else:
        h1, w1 = int(h0), int(w0)
    check = check_onnx(model, out, h1, w1)
    diffs = ", ".join(f"{k} {v:.2e}" for k, v in check.max_abs_diff.items())
    print(f"ONNX Runtime vs PyTorch at {w1}x{h1}: max |diff| {diffs}")
    # float16 weights round the (BatchNorm-folded) float32 ones: outputs move by ~1e-2 in logit units
    tolerance = max(args.tolerance, HALF_TOLERANCE) if args.half else args.tolerance
    if check.worst > tolerance:
        raise FacespotError(f"{out}: ONNX Runtime differs from PyTorch by {check.worst:.2e} (> {tolerance})")

    if args.quantize == "dynamic":
        from facespot.runtime.quantize import compare_outputs, quantize_dynamic_onnx

        q = out.with_name(out.stem + ".int8.onnx")
        quantize_dynamic_onnx(out, q)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((1, 3, h1, w1)).astype(np.float32)
        d = compare_outputs(out, q, x)
        print(f"wrote {q} ({q.stat().st_size / 1e6:.2f} MB, int8 dynamic)")
        print("int8 vs float outputs (random input): " + ", ".join(
            f"{k} max {d.max_abs[k]:.3g} mean {d.mean_abs[k]:.3g}" for k in d.max_abs))  # fmt: skip
        if trained:
            print(
                f"note: to measure what int8 costs in accuracy (WIDER AP), run `facespot detect IMAGES --model {out} "
                f"--wider-out A` and the same with --model {q} --wider-out B, then `facespot eval wider` on A and on B"
            )
        else:
            print("note: these weights are untrained (--untrained), so these numbers say nothing about accuracy; "
                  "export trained weights to measure what int8 costs")  # fmt: skip
    return 0
