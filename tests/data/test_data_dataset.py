"""FaceDataset items, ConcatFaceDataset, and the reproducible hold-out split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facespot.data.caltech import read_caltech
from facespot.data.dataset import ConcatFaceDataset, FaceDataset, select, split_records
from facespot.data.records import FaceRecord
from facespot.data.voc import read_voc
from facespot.errors import FacespotError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "data"


def test_items() -> None:
    ds = FaceDataset(read_caltech(FIX / "caltech" / "WebFaces_GroundThruth.txt"))
    item = ds[0]
    assert set(item) == {"image", "boxes", "landmarks", "name"}
    assert item["image"].shape == (100, 100, 3) and item["image"].dtype == np.uint8
    assert item["boxes"].shape == (2, 4) and item["landmarks"].shape == (2, 4, 2)
    assert item["name"] == "pic00001"
    item["boxes"][:] = 0  # items are copies: the records stay intact
    assert ds.records[0].boxes.max() > 0


def test_transform_applied() -> None:
    ds = FaceDataset(read_voc(FIX / "voc"), transform=lambda s: {**s, "image": s["image"][:10]})
    assert ds[1]["image"].shape == (10, 64, 3)
    assert ds[1]["landmarks"] is None


def test_unreadable_image_raises_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really")
    ds = FaceDataset([FaceRecord(bad, np.zeros((0, 4)))])
    with pytest.raises(FacespotError, match=r"bad\.jpg"):
        ds[0]


def test_concat() -> None:
    a = FaceDataset(read_caltech(FIX / "caltech" / "WebFaces_GroundThruth.txt"))
    b = FaceDataset(read_voc(FIX / "voc"))
    both = ConcatFaceDataset([a, b])
    assert len(both) == 4
    assert both[2]["name"] == "img_a" and both[3]["name"] == "img_b"
    assert [r.name for r in both.records] == ["pic00001", "pic00002", "img_a", "img_b"]
    with pytest.raises(FacespotError):
        ConcatFaceDataset([])


def _recs(n: int) -> list[FaceRecord]:
    return [FaceRecord(Path(f"img{i}.jpg"), np.zeros((0, 4)), name=f"img{i}") for i in range(n)]


def test_split_is_reproducible_and_order_free() -> None:
    recs = _recs(100)
    train, val = split_records(recs, 0.2, seed=3)
    assert len(val) == 20 and len(train) == 80
    assert set(train).isdisjoint(val) and set(train) | set(val) == {r.name for r in recs}
    assert split_records(recs[::-1], 0.2, seed=3)[1] == sorted(val, key=lambda n: int(n[3:]), reverse=True)
    assert set(split_records(recs, 0.2, seed=4)[1]) != set(val)
    assert [r.name for r in select(recs, val)] == val


def test_split_edges() -> None:
    assert split_records(_recs(5), 0.0) == ([f"img{i}" for i in range(5)], [])
    assert len(split_records(_recs(5), 0.01)[1]) == 1  # a positive fraction holds out at least one
    with pytest.raises(FacespotError, match=r"val_fraction must be in \[0, 1\)"):
        split_records(_recs(5), 1.0)
