"""MediaPipe BlazeFace (short / full range) predictions and latency, for facespot's evaluators.

Runs in the ``mediapipe`` peer venv (``benchmarks/peers/install.sh``; mediapipe==0.10.21, whose
wheel ships the ``.tflite`` graphs), imports nothing of facespot's; the CLI, output formats and
timing are those of ``common.py`` (``--images``/``--list``, ``--wider-out``, ``--json``,
``--latency``). Models: ``short`` (the 128x128 front-camera model) and ``full`` (full range,
192x192); MediaPipe resizes every image to its fixed input itself.

Keypoints stay in MediaPipe's own order: right eye, left eye, nose tip, mouth centre, right
ear tragion, left ear tragion (the person's right/left). ``facespot eval dataset
--keypoint-map mediapipe`` maps them onto a data set's landmarks.

Thresholds. ``--min-score`` defaults to 0.05: AP needs the low-score tail that MediaPipe's usual
0.5 would cut. ``FaceDetection(min_detection_confidence=0.05)`` does not reach the graph's
decoder, whose own threshold stays at 0.5 (short) / 0.6 (full) (google-ai-edge/mediapipe issue
#3896; checked again with 0.10.21: the stock call returns no score below those floors). So the
same solution graph is built through ``SolutionBase`` with the threshold also set on the
``TensorsToDetectionsCalculator`` node (:func:`make_face_detection`). What a user of the stock
``FaceDetection()`` gets is therefore scores >= 0.5 (short) and >= 0.6 (full): those are the
default thresholds here (``--min-score default``). MediaPipe has no thread option: the process
pins itself to ``--threads`` CPUs before MediaPipe starts.

Examples (from the repository root)::

    /tmp/facespot-peers/mediapipe/bin/python benchmarks/peers/mediapipe_predict.py --model short \\
        --images ../shared/data/wider-val-eval/images --wider-out /tmp/mp_eval/wider_short
    /tmp/facespot-peers/mediapipe/bin/python benchmarks/peers/mediapipe_predict.py --model full \\
        --list configs/splits/caltech_holdout.txt --root ../shared/data/caltech-webfaces/images \\
        --json /tmp/mp_eval/caltech_full.jsonl
"""

from __future__ import annotations

import sys

import numpy as np

import common

SELECTION = {"short": 0, "full": 1}
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion")


def make_face_detection(model: str, min_score: float, stock: bool = False):
    """MediaPipe's face detection solution graph whose decoder keeps scores >= ``min_score``.

    Same graph and post-processing as ``mp.solutions.face_detection.FaceDetection``; the only
    change is that the threshold is also passed to the subgraph's score decoder (see the
    module docstring). Falls back to the stock call, with a warning, if this mediapipe
    version names the node differently.
    """
    import mediapipe as mp
    from mediapipe.modules.face_detection import face_detection_pb2
    from mediapipe.python.solution_base import SolutionBase
    from mediapipe.python.solutions import face_detection as fd

    selection = SELECTION[model]
    if not stock:
        path, prefix = (
            (fd._FULL_RANGE_GRAPH_FILE_PATH, "facedetectionfullrange")
            if selection == 1
            else (fd._SHORT_RANGE_GRAPH_FILE_PATH, "facedetectionshortrange")
        )
        class _FaceDetectionGraph(SolutionBase):
            def __init__(self) -> None:
                super().__init__(
                    binary_graph_path=path,
                    graph_options=self.create_graph_options(face_detection_pb2.FaceDetectionOptions(), {"min_score_thresh": min_score}),
                    calculator_params={f"{prefix}__facedetection__TensorsToDetectionsCalculator.min_score_thresh": min_score},
                    outputs=["detections"],
                )  # fmt: skip

            def process(self, image: np.ndarray):
                return super().process(input_data={"image": image})

        try:
            return _FaceDetectionGraph()
        except Exception as exc:  # node names differ in other mediapipe versions
            print(f"mediapipe_predict: warning: cannot set the decoder threshold ({exc}); using the stock "
                  "FaceDetection, whose scores stop at 0.5 / 0.6", file=sys.stderr)  # fmt: skip
    return mp.solutions.face_detection.FaceDetection(model_selection=selection, min_detection_confidence=min_score)


def detections(result, width: int, height: int) -> list[dict]:
    """MediaPipe result -> facespot face dicts (pixel ``xyxy`` box clipped to the image)."""
    faces = []
    for det in result.detections or []:
        loc = det.location_data
        rb = loc.relative_bounding_box
        x1, y1 = rb.xmin * width, rb.ymin * height
        kps = [(k.x * width, k.y * height) for k in loc.relative_keypoints]
        face = common.clip_face(x1, y1, x1 + rb.width * width, y1 + rb.height * height, det.score[0], width, height, kps)
        if face is not None:
            faces.append(face)
    faces.sort(key=lambda f: -f["score"])
    return faces


def version() -> str:
    import mediapipe as mp

    return f"mediapipe {mp.__version__}"


def builder(model: str):
    def build(min_score: float, threads: int):
        import cv2

        cv2.setNumThreads(threads)
        fd = make_face_detection(model, min_score)

        def detect(bgr):
            h, w = bgr.shape[:2]
            return detections(fd.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), w, h)

        return detect, fd.close

    return build


PEERS = {
    "short": common.Peer("MediaPipe BlazeFace short-range", default_threshold=0.5, low_threshold=0.05,
                         build=builder("short"), version=version),
    "full": common.Peer("MediaPipe BlazeFace full-range", default_threshold=0.6, low_threshold=0.05,
                        build=builder("full"), version=version, note="the stock graph's decoder keeps >= 0.6"),
}  # fmt: skip

if __name__ == "__main__":
    sys.exit(common.main("mediapipe_predict", PEERS, doc=__doc__))
