"""MTCNN (``facenet-pytorch==2.6.0``, torch CPU) predictions and latency, for facespot's evaluators.

Runs in the optional ``mtcnn`` peer venv (``benchmarks/peers/install.sh --with-mtcnn``),
imports nothing of facespot's. facenet-pytorch ships the P/R/O-Net weights in the wheel. It
pins torch<2.3 and torchvision, so it is installed ``--no-deps`` on the current CPU torch, and
torchvision is *not* installed: its detection path needs only
``torchvision.ops.boxes.batched_nms``, shimmed here with OpenCV's ``NMSBoxes`` (same IoU, boxes
of different images/levels kept apart by offsetting them), and imports
``torchvision.transforms.functional`` only for ``extract_face`` (not called; stubbed).

``MTCNN(keep_all=True).detect(rgb, landmarks=True)`` runs the P/R/O-Net cascade on the image at
its own size (image pyramid from ``min_face_size=20``, factor 0.709). Stage thresholds default to
0.6 / 0.7 / 0.7; a user gets every face whose O-Net score passes 0.7, so the default threshold is
0.7. For AP the last stage's threshold is lowered to 0.05 (the first two stages unchanged, so the
candidate set is the same, only the low-score tail of the final scores is kept). Faces smaller
than about 20 px are not searched (the package's ``min_face_size``).

``--json`` keypoints: the 5 landmarks (the person's right eye, left eye, nose, right and left
mouth corner) plus a sixth, the mouth centre, for ``facespot eval dataset --keypoint-map 0,1,2,5``.

    /tmp/facespot-peers/mtcnn/bin/python benchmarks/peers/mtcnn_predict.py --check
"""

from __future__ import annotations

import sys
import types

import common

DEFAULT_THRESHOLDS = (0.6, 0.7, 0.7)


def _shim_torchvision() -> None:
    """Install a minimal ``torchvision`` (batched_nms only) unless the real one imports."""
    try:
        import torchvision.ops.boxes  # noqa: F401

        return
    except ImportError:
        pass
    import cv2
    import numpy as np
    import torch

    def batched_nms(boxes, scores, idxs, iou_threshold):
        if boxes.numel() == 0:
            return torch.empty((0,), dtype=torch.int64)
        b = boxes.detach().cpu().numpy().astype(np.float64)
        off = (b.max() + 1) * idxs.detach().cpu().numpy().astype(np.float64)[:, None]
        b = b + off
        rects = np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)
        sc = scores.detach().cpu().numpy().astype(np.float64)
        sc = sc - sc.min() + 1.0  # NMSBoxes keeps scores above a threshold >= 0: shift, order kept
        keep = cv2.dnn.NMSBoxes(rects.tolist(), sc.tolist(), 0.0, float(iou_threshold))
        keep = np.asarray(keep, dtype=np.int64).reshape(-1)
        return torch.as_tensor(keep, dtype=torch.int64, device=boxes.device)

    def _missing(*_a, **_k):
        raise RuntimeError("torchvision is not installed (shim): extract_face is unavailable")

    mods = {name: types.ModuleType(name) for name in ("torchvision", "torchvision.ops", "torchvision.ops.boxes",
                                                       "torchvision.transforms", "torchvision.transforms.functional")}  # fmt: skip
    mods["torchvision.ops.boxes"].batched_nms = batched_nms
    mods["torchvision.ops"].boxes = mods["torchvision.ops.boxes"]
    mods["torchvision.transforms.functional"].to_tensor = _missing
    mods["torchvision.transforms"].functional = mods["torchvision.transforms.functional"]
    mods["torchvision"].ops, mods["torchvision"].transforms = mods["torchvision.ops"], mods["torchvision.transforms"]
    sys.modules.update(mods)


def version() -> str:
    from importlib.metadata import version as v

    return f"facenet-pytorch {v('facenet-pytorch')}, torch {v('torch')}"


def build(min_score: float, threads: int):
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    _shim_torchvision()
    from facenet_pytorch import MTCNN

    thresholds = [DEFAULT_THRESHOLDS[0], DEFAULT_THRESHOLDS[1], min(min_score, DEFAULT_THRESHOLDS[2])]
    mtcnn = MTCNN(keep_all=True, thresholds=thresholds, device="cpu").eval()

    def detect(bgr):
        h, w = bgr.shape[:2]
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        with torch.inference_mode():
            boxes, probs, points = mtcnn.detect(rgb, landmarks=True)
        out = []
        if boxes is None:
            return out
        for box, p, pts in zip(boxes, probs, points):
            if p is None or p < min_score:
                continue
            kps = [(float(x), float(y)) for x, y in pts]
            kps.append(((kps[3][0] + kps[4][0]) / 2, (kps[3][1] + kps[4][1]) / 2))
            face = common.clip_face(box[0], box[1], box[2], box[3], p, w, h, kps)
            if face is not None:
                out.append(face)
        return out

    return detect, None


PEERS = {
    "mtcnn": common.Peer("MTCNN", default_threshold=DEFAULT_THRESHOLDS[2], low_threshold=0.05, build=build,
                         version=version),  # fmt: skip
}


def check() -> int:
    """Install check: the shim imports and the cascade runs on a synthetic frame."""
    import numpy as np

    common.pin_cpus(1)
    fn, _ = build(0.7, 1)
    fn(np.full((120, 160, 3), 128, np.uint8))
    print(f"mtcnn ok ({version()})")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(check())
    sys.exit(common.main("mtcnn_predict", PEERS, doc=__doc__))
