"""`facespot data preview` through the CLI entry point: sheet size, the recipe's pipeline
really used (boxes land where hand-computed), and bad input as one-line errors (exit 2)."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from facespot.cli import main

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "data"
GREEN = (0, 255, 0)  # as RGB; cv2.imread gives BGR, which for pure green is the same


def test_sheet_pixel_size_from_n_size_and_columns(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sheet.jpg"
    rc = main(["data", "preview", str(FIX / "wider"), "--n", "6", "--size", "64", "--seed", "3", "--out", str(out)])
    assert rc == 0
    img = cv2.imread(str(out))
    assert img.shape == (128, 256, 3)  # 6 tiles, 4 per row -> 2 rows x 4 columns of 64 px
    assert "wrote" in capsys.readouterr().out


def test_columns_capped_by_n_and_same_seed_same_sheet(tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for out in (a, b):
        assert main(["data", "preview", str(FIX / "voc"), "--n", "3", "--size", "32", "--seed", "7", "--out", str(out)]) == 0
    ia, ib = cv2.imread(str(a)), cv2.imread(str(b))
    assert ia.shape == (32, 96, 3)  # 3 tiles: one row of 3 (not 4) columns
    assert (ia == ib).all()


def test_recipe_augment_and_input_size_are_used(tmp_path: Path) -> None:
    # A recipe whose only step is a plain resize to 96x128 (HxW): img_a (64x48) doubles,
    # so its first box, VOC (11, 6, 30, 25) = 0-based (10, 5, 30, 25), becomes
    # (20, 10, 60, 50); a 128-px tile draws it 1:1. (The second box starts at x = 80.)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"data:\n  train:\n    - {{format: voc, path: {FIX / 'voc'}}}\n  input_size: [96, 128]\n"
        "augment:\n  - resize: {}\n",
        encoding="utf-8",
    )
    out = tmp_path / "one.png"
    xml = FIX / "voc" / "annotations" / "img_a.xml"  # one image only: the tile is known
    assert main(["data", "preview", str(xml), "--recipe", str(recipe), "--n", "1", "--size", "128", "--out", str(out)]) == 0
    t = cv2.imread(str(out))
    assert t.shape == (128, 128, 3)
    assert tuple(t[10, 40]) == GREEN and tuple(t[50, 40]) == GREEN  # top and bottom edges
    assert tuple(t[30, 20]) == GREEN and tuple(t[30, 60]) == GREEN  # left and right edges
    assert tuple(t[30, 40]) != GREEN  # inside the box
    assert tuple(t[10, 70]) != GREEN  # between the two boxes
    assert tuple(t[30, 80]) == GREEN  # second box's left edge
    assert (t[100:110, 100:128] == 40).all()  # below the 96-px-high image: letterbox grey


def test_recipe_sources_used_when_no_dataset(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"data:\n  train:\n    - {{format: voc, path: {FIX / 'voc'}}}\n", encoding="utf-8")
    out = tmp_path / "s.png"
    assert main(["data", "preview", "--recipe", str(recipe), "--input", "64", "--n", "2", "--size", "32", "--out", str(out)]) == 0
    assert cv2.imread(str(out)).shape == (32, 64, 3)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{fix}/no_such_folder"], "no such file or folder"),
        (["{fix}/voc", "--format", "pascal"], "unknown data format"),
        (["{fix}/voc", "--input", "big"], "--input 'big'"),
        (["{fix}/voc", "--n", "0"], "--n and --columns"),
        ([], "give a DATASET"),
        (["{fix}/voc", "--recipe", "{fix}/missing.yaml"], "recipe not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys, argv, message) -> None:
    out = tmp_path / "x.png"
    argv = [a.replace("{fix}", str(FIX)) for a in argv]
    assert main(["data", "preview", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("facespot: error:")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_no_readable_image_and_bad_out_extension(tmp_path: Path, capsys) -> None:
    root = tmp_path / "voc"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    xml = (FIX / "voc" / "annotations" / "img_a.xml").read_text(encoding="utf-8")
    (root / "annotations" / "img_a.xml").write_text(xml, encoding="utf-8")
    (root / "images" / "img_a.jpg").write_bytes(b"not a jpeg")
    assert main(["data", "preview", str(root), "--out", str(tmp_path / "o.png")]) == 2
    assert "no image could be read" in capsys.readouterr().err
    assert main(["data", "preview", str(FIX / "voc"), "--out", str(tmp_path / "o.gif")]) == 2
    assert "expected an image file name" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "o.gif").exists()
