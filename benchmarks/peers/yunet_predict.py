"""YuNet (``yuface==2023.5.1``, libfacedetection's C++ build) predictions and latency, for facespot's evaluators.

Runs in the ``yunet`` peer venv (``benchmarks/peers/install.sh``), imports nothing of
facespot's. ``yuface.detect(bgr, conf=0.5)`` runs the network compiled into
``libfacedetection.so`` on the image at its own size and returns integer scores in percent,
boxes and 5 landmarks; its default threshold is 0.5.

Caveats, read from the package and checked on WIDER images:

* the library never returns a score below 20 (0.2): whatever ``conf`` is asked for, the AP
  curve is truncated at 0.2 (recall stops there), which lowers YuNet's AP a little, mostly on
  hard faces;
* scores are whole percents, so many detections tie;
* ``yuface.detect`` warns on images larger than 960 px ("may cause detection performance
  degradation"); WIDER images are 1024 px wide and are still given at native size (the warning
  is silenced here);
* the library uses OpenMP (libgomp): ``OMP_NUM_THREADS`` and the CPU pinning follow ``--threads``.

``--json`` keypoints: the 5 landmarks (the person's right eye, left eye, nose, right and left
mouth corner) plus a sixth, the mouth centre, for ``facespot eval dataset --keypoint-map 0,1,2,5``.

    /tmp/facespot-peers/yunet/bin/python benchmarks/peers/yunet_predict.py \\
        --images ../shared/data/wider-val-eval/images --wider-out /tmp/yunet_wider
"""

from __future__ import annotations

import sys
import warnings

import common

SCORE_FLOOR = 0.2


def version() -> str:
    from importlib.metadata import version as v

    return f"yuface {v('yuface')}"


def build(min_score: float, threads: int):
    import cv2
    import yuface  # after common.pin_cpus set OMP_NUM_THREADS

    cv2.setNumThreads(threads)
    warnings.filterwarnings("ignore", message="Image size .* is too large")

    def detect(bgr):
        h, w = bgr.shape[:2]
        confs, boxes, lms = yuface.detect(bgr, conf=min_score)
        out = []
        for c, (x, y, bw, bh), lm in zip(confs, boxes, lms):
            kps = [(float(lm[2 * i]), float(lm[2 * i + 1])) for i in range(5)]
            kps.append(((kps[3][0] + kps[4][0]) / 2, (kps[3][1] + kps[4][1]) / 2))
            # int16 -> Python ints first: x + w must not wrap around
            face = common.clip_face(int(x), int(y), int(x) + int(bw), int(y) + int(bh), int(c) / 100.0, w, h, kps)
            if face is not None and face["score"] >= min_score:
                out.append(face)
        return out

    return detect, None


PEERS = {
    "yunet": common.Peer("YuNet", default_threshold=0.5, low_threshold=0.0, build=build, version=version,
                         note=f"no score below {SCORE_FLOOR}"),  # fmt: skip
}

if __name__ == "__main__":
    sys.exit(common.main("yunet_predict", PEERS, doc=__doc__))
