"""Reading the official ``.mat`` ground truth: the tiny fixture, the real files, bad files."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import savemat

from facespot.data.wider_mat import SETTINGS, read_wider_mat, write_wider_mat
from facespot.errors import FacespotError

from .helpers import EVAL, FIXTURES, gt_image


def test_fixture_reads_as_written_by_hand():
    gt = read_wider_mat(FIXTURES / "wider_gt")
    assert [g.key for g in gt] == ["0--Parade/0_Parade_a", "0--Parade/0_Parade_b", "1--Handshaking/1_Handshaking_c"]
    # x y w h (10, 10, 40, 40) -> xyxy (10, 10, 50, 50)
    np.testing.assert_array_equal(gt[0].boxes, [[10, 10, 50, 50], [100, 10, 140, 50], [200, 200, 208, 208]])
    assert gt[0].boxes.dtype == np.float64
    np.testing.assert_array_equal(gt[0].keep["easy"], [0, 1])  # stored 1-based as [1, 2]
    np.testing.assert_array_equal(gt[0].keep["hard"], [0, 1, 2])
    np.testing.assert_array_equal(gt[2].counted("easy"), [True, False])


def test_round_trip(tmp_path):
    imgs = [
        gt_image("1--A/x", [[1, 2, 3, 4], [5, 6, 7, 8]], {"easy": [1], "medium": [0, 1], "hard": [0, 1]}),
        gt_image("2--B/y", np.zeros((0, 4)), []),
        gt_image("1--A/z", [[0.5, 0, 10, 10]]),
    ]
    write_wider_mat(tmp_path, imgs)
    back = read_wider_mat(tmp_path)
    # grouped by event in first-seen order, like the official files
    assert [g.key for g in back] == ["1--A/x", "1--A/z", "2--B/y"]
    by = {g.key: g for g in back}
    for g in imgs:
        np.testing.assert_allclose(by[g.key].boxes, g.boxes)
        for s in SETTINGS:
            np.testing.assert_array_equal(by[g.key].keep[s], g.keep[s])


def col(*items) -> np.ndarray:
    """A MATLAB cell column: ``(n, 1)`` object array (np.array would merge nested arrays)."""
    out = np.empty((len(items), 1), dtype=object)
    for i, x in enumerate(items):
        out[i, 0] = x
    return out


def _official_like(tmp_path, **override):
    """Write the four files with MATLAB-like nesting, replacing some variables."""
    ev = col(np.array(["0--Parade"]))
    fl = col(col(np.array(["img1"])))
    bb = col(col(np.array([[1, 2, 3, 4]], dtype=np.int32)))
    gl = col(col(np.array([[1]], dtype=np.uint8)))
    files = {"main": {"event_list": ev, "file_list": fl, "face_bbx_list": bb}}
    files.update({s: {"event_list": ev, "file_list": fl, "gt_list": gl} for s in SETTINGS})
    for part, changes in override.items():
        for k, v in changes.items():  # None drops the variable
            if v is None:
                files[part].pop(k)
            else:
                files[part][k] = v
    for part, variables in files.items():
        name = "wider_face_val.mat" if part == "main" else f"wider_{part}_val.mat"
        savemat(tmp_path / name, variables)
    return tmp_path


def test_official_like_layout_reads(tmp_path):
    gt = read_wider_mat(_official_like(tmp_path))
    assert gt[0].key == "0--Parade/img1"
    np.testing.assert_array_equal(gt[0].boxes, [[1, 2, 4, 6]])


@pytest.mark.parametrize(
    "override, message",
    [
        ({"main": {"face_bbx_list": None}}, r"wider_face_val\.mat: missing variable\(s\) face_bbx_list"),
        ({"easy": {"gt_list": None}}, r"wider_easy_val\.mat: missing variable\(s\) gt_list"),
        ({"main": {"event_list": np.zeros((3, 2))}}, r"wider_face_val\.mat: event_list should be an \(n, 1\) cell array, got \(3, 2\)"),
        ({"hard": {"gt_list": col(col(np.array([[1]])), col(np.array([[1]])))}}, r"wider_hard_val\.mat: gt_list has 2 entries, expected 1"),
        ({"medium": {"gt_list": col(col(np.array([[2]])))}}, r"wider_medium_val\.mat: gt_list\{1\} \(0--Parade\) image img1: indices must be integers in 1\.\.1"),
        ({"main": {"face_bbx_list": col(col(np.array([[1, 2, 3]])))}}, r"face_bbx_list\{1\} \(0--Parade\) image img1: boxes should be \(N, 4\)"),
        ({"easy": {"event_list": col(np.array(["9--Other"]))}}, r"wider_easy_val\.mat: event 1 is '9--Other' but wider_face_val\.mat has '0--Parade'"),
    ],
)
def test_bad_structure_names_file_and_problem(tmp_path, override, message):
    _official_like(tmp_path, **override)
    with pytest.raises(FacespotError, match=message):
        read_wider_mat(tmp_path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FacespotError, match=r"wider_face_val\.mat: file not found"):
        read_wider_mat(tmp_path)
    (tmp_path / "wider_face_val.mat").write_text("hello")
    with pytest.raises(FacespotError, match=r"wider_face_val\.mat: not a readable MATLAB \.mat file"):
        read_wider_mat(tmp_path)
    with pytest.raises(FacespotError, match="unknown WIDER setting 'extreme'"):
        read_wider_mat(tmp_path, settings=["extreme"])


def test_real_ground_truth_counts(real_gt):
    assert len(real_gt) == 3226
    assert sum(len(g.boxes) for g in real_gt) == 39708
    # faces that count per setting (the hard set includes medium, medium includes easy)
    assert {s: sum(len(g.keep[s]) for g in real_gt) for s in SETTINGS} == {"easy": 7211, "medium": 13319, "hard": 31958}
    for g in real_gt[:200]:
        assert set(g.keep["easy"]) <= set(g.keep["medium"]) <= set(g.keep["hard"])
    first = real_gt[0]
    assert first.key == "0--Parade/0_Parade_marchingband_1_465"
    np.testing.assert_array_equal(first.boxes[0], [345, 211, 349, 215])  # 345 211 4 4


def test_real_mat_agrees_with_the_eval_annotation_text(real_gt):
    """The 500 eval images' official text lines hold the same boxes as the .mat."""
    txt = EVAL / "wider_face_split" / "wider_face_val_bbx_gt.txt"
    if not txt.is_file():
        pytest.skip("wider-val-eval not present")
    lines = txt.read_text().split("\n")
    by = {g.key: g for g in real_gt}
    i, n_images = 0, 0
    while i < len(lines) and lines[i].strip():
        key = lines[i].strip()[: -len(".jpg")]
        n = int(lines[i + 1])
        rows = [list(map(float, ln.split()[:4])) for ln in lines[i + 2 : i + 2 + max(n, 1)]]
        expected = np.array(rows).reshape(-1, 4)
        expected[:, 2:] += expected[:, :2]
        np.testing.assert_array_equal(by[key].boxes, expected, err_msg=key)
        i += 2 + max(n, 1)
        n_images += 1
    assert n_images == 500
