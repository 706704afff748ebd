"""Format detection and open_records over every fixture layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from facespot.data.formats import detect_format, open_records
from facespot.errors import FacespotError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "data"


@pytest.mark.parametrize(
    "rel, fmt, images, faces",
    [
        ("wider", "wider", 3, 2),  # WiderFace defaults drop the invalid w=0 box
        ("wider/wider_face_split/wider_face_val_bbx_gt.txt", "wider", 3, 3),
        ("voc", "voc", 2, 4),
        ("voc/annotations/img_a.xml", "voc", 1, 2),
        ("yolo", "yolo", 2, 2),
        ("coco", "coco", 2, 2),
        ("coco/annotations.json", "coco", 2, 2),
        ("caltech", "caltech", 2, 3),
        ("caltech/WebFaces_GroundThruth.txt", "caltech", 2, 3),
        ("fddb", "fddb", 3, 4),
        ("fddb/FDDB-folds", "fddb", 3, 4),
        ("fddb/FDDB-folds/FDDB-fold-02-ellipseList.txt", "fddb", 1, 1),
    ],
)
def test_detect_and_open(rel: str, fmt: str, images: int, faces: int) -> None:
    path = FIX / rel
    assert detect_format(path) == fmt
    recs = open_records(path)
    assert len(recs) == images
    assert sum(len(r) for r in recs) == faces
    assert all(r.image_path.is_file() for r in recs), [str(r.image_path) for r in recs]


def test_explicit_format_and_options() -> None:
    recs = open_records(FIX / "wider", format="wider", split="val", drop_invalid=False)
    assert sum(len(r) for r in recs) == 3
    assert sum(len(r) for r in open_records(FIX / "yolo", "yolo", face_classes=[0])) == 1
    with pytest.raises(FacespotError, match=r"option\(s\) \['split'\] do not apply to the voc format"):
        open_records(FIX / "voc", split="val")
    with pytest.raises(FacespotError, match="unknown data format 'pascal'"):
        open_records(FIX / "voc", format="pascal")


def test_unrecognised_folder_lists_layouts(tmp_path: Path) -> None:
    with pytest.raises(FacespotError, match=r"no annotations I recognise\naccepted layouts:\n  wider:"):
        detect_format(tmp_path)
    (tmp_path / "photo.jpg").write_bytes(b"x")
    with pytest.raises(FacespotError, match="images but no annotations I recognise"):
        open_records(tmp_path)
    with pytest.raises(FacespotError, match="no such file or folder"):
        open_records(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("hello world\n")
    with pytest.raises(FacespotError, match=r"notes\.txt: cannot tell the annotation format"):
        detect_format(tmp_path / "notes.txt")


def test_wider_with_two_splits_needs_a_choice(tmp_path: Path) -> None:
    split = tmp_path / "wider_face_split"
    split.mkdir()
    text = (FIX / "wider" / "wider_face_split" / "wider_face_val_bbx_gt.txt").read_text()
    (split / "wider_face_val_bbx_gt.txt").write_text(text)
    (split / "wider_face_train_bbx_gt.txt").write_text(text)
    with pytest.raises(FacespotError, match=r"pick a WIDER FACE split \(found: train, val\)"):
        open_records(tmp_path)
