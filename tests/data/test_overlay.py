"""Label overlays: a teacher's landmarks and ignore regions laid over a source's own boxes."""

from __future__ import annotations

import gzip
from pathlib import Path
import json

import numpy as np
import pytest
import torch

from facespot.data.augment import Sample, build_augment
from facespot.data.overlay import apply_overlay, read_overlay, write_overlay
from facespot.data.records import FaceRecord
from facespot.errors import FacespotError
from facespot.train.loader import TrainDataset, collate
from facespot.train.targets import IGNORE, POSITIVE, build_targets


def _records():
    return [
        FaceRecord("a.jpg", [[10, 10, 50, 50], [100, 100, 120, 124]], name="ev/a"),
        FaceRecord("b.jpg", [[0, 0, 30, 30]], name="ev/b"),
    ]


def _entry_a():
    pts = [[20, 25], [40, 25], [30, 35], [22, 45], [38, 45]]
    # box slightly off the record's (IoU > 0.7) -> matched; a second, unmatched face -> ignored
    return {"name": "ev/a", "faces": [{"box": [11, 10, 50, 51], "keypoints": pts}], "ignore": [[200, 200, 230, 230]]}


def test_overlay_round_trip_gz_and_plain(tmp_path):
    for name in ("o.jsonl.gz", "o.jsonl"):
        path = write_overlay(tmp_path / name, [_entry_a()], 5, teacher="t")
        header, entries = read_overlay(path)
        assert header["teacher"] == "t" and header["keypoints"] == 5
        assert entries["ev/a"]["keypoints"].shape == (1, 5, 2)
        np.testing.assert_allclose(entries["ev/a"]["ignore"], [[200, 200, 230, 230]])
    # the same labels give the same bytes (gzip without a timestamp): commits stay small
    a = (tmp_path / "o.jsonl.gz").read_bytes()
    write_overlay(tmp_path / "o.jsonl.gz", [_entry_a()], 5, teacher="t")
    assert (tmp_path / "o.jsonl.gz").read_bytes() == a


def test_apply_overlay_matches_boxes_by_overlap(tmp_path):
    path = write_overlay(tmp_path / "o.jsonl", [_entry_a()], 5)
    recs = apply_overlay(_records(), path)
    a, b = recs
    assert a.landmarks.shape == (2, 5, 2)
    np.testing.assert_allclose(a.landmarks[0, 2], [30, 35])
    assert np.isnan(a.landmarks[1]).all()  # no teacher face on it: not supervised
    np.testing.assert_allclose(a.ignore_boxes, [[200, 200, 230, 230]])
    np.testing.assert_allclose(a.boxes, [[10, 10, 50, 50], [100, 100, 120, 124]])  # the truth is untouched
    assert b.landmarks is None and b.ignore_boxes is None


def test_overlay_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "other"}\n')
    with pytest.raises(FacespotError, match="not a facespot label overlay"):
        read_overlay(bad)
    bad.write_text('{"format": "facespot-overlay-1", "keypoints": 5}\n{"name": "x", "faces": [{"box": [1, 2]}]}\n')
    with pytest.raises(FacespotError, match=":2:"):
        read_overlay(bad)
    other = write_overlay(tmp_path / "other.jsonl", [{"name": "elsewhere/z", "faces": [], "ignore": [[0, 0, 5, 5]]}], 5)
    with pytest.raises(FacespotError, match="names none"):
        apply_overlay(_records(), other)
    with pytest.raises(FacespotError, match="not found"):
        read_overlay(tmp_path / "missing.jsonl.gz")
    (tmp_path / "trunc.jsonl.gz").write_bytes(gzip.compress(b'{"format": "facespot-overlay-1"}\n')[:-6])
    with pytest.raises(FacespotError):
        read_overlay(tmp_path / "trunc.jsonl.gz")


def test_ignore_regions_travel_through_augmentation_apart_from_faces(tmp_path):
    img = np.full((200, 300, 3), 90, np.uint8)
    rec = FaceRecord(tmp_path / "x.png", [[20, 20, 60, 60]], landmarks=np.full((1, 5, 2), 40.0), name="x",
                     ignore_boxes=[[150, 100, 190, 140]])  # fmt: skip
    ds = TrainDataset([rec], build_augment([{"resize": {}}, {"hflip": {"p": 1.0}}], (100, 150)), image_source=lambda i: img)
    batch = collate([ds[0]])
    assert batch.boxes[0].shape == (1, 4) and batch.points[0].shape == (1, 5, 2)
    # mirrored: x 150..190 of 300 -> 110..150 -> normalised 0.3667..0.5
    np.testing.assert_allclose(batch.ignore_boxes[0].numpy(), [[110 / 300, 0.5, 150 / 300, 0.7]], atol=1e-5)
    np.testing.assert_allclose(batch.boxes[0].numpy(), [[240 / 300, 0.1, 280 / 300, 0.3]], atol=1e-5)


def test_sample_keep_filters_the_ignore_flags():
    s = Sample(np.zeros((4, 4, 3), np.uint8), np.zeros((3, 4), np.float32), None, "n", np.array([False, True, True]))
    assert s.keep(np.array([True, False, True])).ignore.tolist() == [False, True]


def test_ignore_region_turns_background_anchors_to_ignore_but_never_a_positive():
    from facespot.models import build
    from facespot.train.objective import level_sizes

    m = build("spotnet_s")
    size = (320, 320)
    anchors = torch.from_numpy(np.asarray(m.anchors(*size), np.float32))
    gt = [torch.tensor([[0.1, 0.1, 0.3, 0.3]])]
    kw = dict(assigner="atss", level_sizes=level_sizes(m, size), aspect=(320.0, 320.0))
    plain = build_targets(gt, anchors, "ssd", (0.1, 0.2), **kw)
    # a region far from the face: its anchors stop being background
    far = build_targets(gt, anchors, "ssd", (0.1, 0.2), ignore_boxes=[torch.tensor([[0.6, 0.6, 0.75, 0.75]])], **kw)
    assert int((plain.labels == IGNORE).sum()) == 0 and int((far.labels == IGNORE).sum()) > 0
    assert torch.equal(plain.labels == POSITIVE, far.labels == POSITIVE)
    # a region on top of the real face: the face's positives stay positive
    on = build_targets(gt, anchors, "ssd", (0.1, 0.2), ignore_boxes=[torch.tensor([[0.1, 0.1, 0.3, 0.3]])], **kw)
    assert torch.equal(plain.labels == POSITIVE, on.labels == POSITIVE)


def test_recipe_source_reads_its_overlay(tmp_path):
    from facespot.train.config import config_from_dict
    from facespot.train.sources import load_sources

    import cv2

    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), np.zeros((60, 60, 3), np.uint8))
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>60</width><height>60</height></size>"
        "<object><name>face</name><bndbox><xmin>10</xmin><ymin>10</ymin><xmax>50</xmax><ymax>50</ymax></bndbox></object>"
        "</annotation>"
    )
    write_overlay(tmp_path / "o.jsonl", [{**_entry_a(), "name": "a"}], 5)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("")
    cfg = config_from_dict({"data": {"train": [{"format": "voc", "path": str(tmp_path), "labels": "o.jsonl"}]}}, str(recipe))
    (rec,) = load_sources(cfg.data.train, str(recipe))
    assert rec.landmarks.shape == (1, 5, 2) and rec.ignore_boxes.shape == (1, 4)
    json.loads((tmp_path / "o.jsonl").read_text().splitlines()[0])


def test_caltech_points_fill_a_five_point_models_eyes_and_nose_only(tmp_path):
    """Caltech's fourth point is the mouth's centre: it must not teach slot 3 (a mouth corner)."""
    from facespot.train.config import config_from_dict
    from facespot.train.sources import load_sources

    root = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "caltech"
    recipe = tmp_path / "r.yaml"
    recipe.write_text("")
    src = {"format": "caltech", "path": str(root), "keypoints": [0, 1, 2, None, None]}
    cfg = config_from_dict({"data": {"train": [src]}}, str(recipe))
    plain = load_sources(config_from_dict({"data": {"train": [{"format": "caltech", "path": str(root)}]}}, str(recipe)).data.train, str(recipe))
    mapped = load_sources(cfg.data.train, str(recipe))
    for a, b in zip(plain, mapped):
        pa, pb = a.landmarks.reshape(len(a), -1, 2), b.landmarks
        assert pb.shape == (len(a), 5, 2)
        np.testing.assert_array_equal(pb[:, :3], pa[:, :3])
        assert np.isnan(pb[:, 3:]).all()
    bad = config_from_dict({"data": {"train": [{**src, "keypoints": [0, 7]}]}}, str(recipe))
    with pytest.raises(FacespotError, match="names point 7"):
        load_sources(bad.data.train, str(recipe))
