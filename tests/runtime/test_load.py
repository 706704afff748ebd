"""facespot.load: model resolution, packaged weights (hash-checked), bad inputs."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

import facespot
from facespot.errors import FacespotError
from facespot.models import build
from facespot.models.io import save_weights
from facespot.runtime.packaged import add_packaged, packaged_names, resolve_packaged, sha256_file


def test_default_without_packaged_weights_says_what_is_missing(tmp_path, monkeypatch):
    pkg = _fake_package(tmp_path, monkeypatch)  # a build of facespot with an empty weights folder
    with pytest.raises(FacespotError) as exc:
        resolve_packaged("default", package=pkg.name)
    msg = str(exc.value)
    assert "manifest.json" in msg and "ships no trained weights" in msg
    assert "facespot train" in msg and "--model" in msg and "ship_model.py" in msg


def test_registry_name_needs_untrained_flag():
    with pytest.raises(FacespotError, match="untrained=True"):
        facespot.load("blazeface_front")
    det = facespot.load("blazeface_front", backend="torch", untrained=True)
    assert not det.trained and "UNTRAINED" in repr(det)


def test_unknown_names_and_missing_files():
    with pytest.raises(FacespotError, match="known names"):
        facespot.load("not_a_model")
    with pytest.raises(FacespotError, match="weights file not found"):
        facespot.load("missing/weights.safetensors")
    with pytest.raises(FacespotError, match="unknown backend"):
        facespot.load("blazeface_front", backend="tensorrt", untrained=True)
    with pytest.raises(FacespotError, match="unknown detector option"):
        facespot.load("blazeface_front", untrained=True, backend="torch", thresh=0.3)


def test_weights_of_an_unknown_model(tmp_path):
    model = build("blazeface_front")
    model.config["name"] = "mystery_net"
    path = save_weights(model, tmp_path / "m.safetensors")
    with pytest.raises(FacespotError, match="unknown model 'mystery_net'"):
        facespot.load(path)


def test_bad_arrays_and_pixel_limit(tiny_weights, tmp_path):
    det = facespot.load(tiny_weights, backend="torch", max_pixels=10_000)
    with pytest.raises(FacespotError, match="over the limit of 10000"):
        det(np.zeros((101, 100, 3), np.uint8))
    assert isinstance(det(np.zeros((100, 100, 3), np.uint8)), list)
    with pytest.raises(FacespotError, match="zero size"):
        det(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(FacespotError, match="channels"):
        det(np.zeros((10, 10, 5), np.uint8))
    import cv2

    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.zeros((120, 100, 3), np.uint8))
    with pytest.raises(FacespotError, match="big.png.*over the limit"):
        det(big)
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    with pytest.raises(FacespotError, match="cut.jpg"):
        det(str(bad))


def test_onnx_file_roundtrip_and_torch_refusal(tiny_weights, tmp_path):
    from facespot.cli import main

    out = tmp_path / "tiny.onnx"
    assert main(["export", str(tiny_weights), "--onnx", str(out)]) == 0
    img = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    a = facespot.load(out, threads=1, score_threshold=0.2)(img)
    b = facespot.load(tiny_weights, backend="torch", score_threshold=0.2)(img)
    assert len(a) == len(b) > 0
    np.testing.assert_allclose([f.box for f in a], [f.box for f in b], atol=1e-2)
    with pytest.raises(FacespotError, match="only with backend 'onnxruntime'"):
        facespot.load(out, backend="torch")


def _fake_package(tmp_path, monkeypatch, name="fs_test_weights"):
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)
    return pkg


def test_packaged_weights_hash_checked(tmp_path, monkeypatch):
    pkg = _fake_package(tmp_path, monkeypatch)
    with pytest.raises(FacespotError, match="manifest.json does not exist"):
        resolve_packaged("default", package=pkg.name)
    torch.manual_seed(0)
    weights = save_weights(build("blazeface_front"), pkg / "bf.safetensors")
    add_packaged(weights, "bf-test", folder=pkg, default=True)
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert manifest["default"] == "bf-test"
    assert manifest["models"]["bf-test"]["sha256"] == sha256_file(weights)
    assert packaged_names(pkg.name) == ["default", "bf-test"]
    assert resolve_packaged("default", package=pkg.name) == weights
    assert resolve_packaged("bf-test", package=pkg.name) == weights
    det = facespot.load(resolve_packaged(package=pkg.name), backend="torch")
    assert det.model_name == "blazeface_front" and det.trained

    data = bytearray(weights.read_bytes())  # flip one byte of a tensor
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(FacespotError, match="does not match"):
        resolve_packaged("default", package=pkg.name)
    weights.unlink()
    with pytest.raises(FacespotError, match="file is missing"):
        resolve_packaged("default", package=pkg.name)
    with pytest.raises(FacespotError, match="no usable entry 'other'"):
        resolve_packaged("other", package=pkg.name)


def test_packaged_onnx_is_preferred_by_onnxruntime_and_hash_checked(tmp_path, monkeypatch):
    from facespot.runtime.onnx_export import export_onnx

    pkg = _fake_package(tmp_path, monkeypatch)
    torch.manual_seed(0)
    model = build("blazeface_front").eval()
    weights = save_weights(model, pkg / "bf.safetensors")
    onnx_file = export_onnx(model, pkg / "bf.onnx")
    add_packaged(weights, "bf", folder=pkg, default=True, onnx=onnx_file)
    assert resolve_packaged("default", package=pkg.name, prefer_onnx=True) == onnx_file
    assert resolve_packaged("default", package=pkg.name) == weights
    onnx_file.write_bytes(onnx_file.read_bytes() + b"\0")  # a replaced or damaged export
    with pytest.raises(FacespotError, match="does not match"):
        resolve_packaged("default", package=pkg.name, prefer_onnx=True)
    assert resolve_packaged("default", package=pkg.name) == weights  # the weights entry is intact
    outside = export_onnx(model, tmp_path / "elsewhere.onnx")
    with pytest.raises(FacespotError, match="copy the file into"):
        add_packaged(weights, "bf", folder=pkg, onnx=outside)
    with pytest.raises(FacespotError, match="also a model name"):  # would load untrained by that name
        add_packaged(weights, "blazeface_front", folder=pkg)


def test_pil_images_are_taken_as_rgb_whatever_the_flag():
    Image = pytest.importorskip("PIL.Image")
    from facespot.runtime.detector import to_rgb_array

    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200  # pure red
    for flag in (False, True):
        assert np.array_equal(to_rgb_array(Image.fromarray(rgb), rgb=flag), rgb)
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE)  # -> converted, still red
    assert np.array_equal(to_rgb_array(pal, rgb=False), rgb)
    assert np.array_equal(to_rgb_array(rgb[..., ::-1], rgb=False), rgb)  # a BGR array


def test_packaged_entry_declares_its_model_and_load_checks_it(tmp_path, monkeypatch):
    pkg = _fake_package(tmp_path, monkeypatch)
    torch.manual_seed(0)
    weights = save_weights(build("blazeface_front"), pkg / "bf.safetensors")
    add_packaged(weights, "bf", folder=pkg, default=True)
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert manifest["models"]["bf"]["model"] == "blazeface_front"
    monkeypatch.setattr("facespot.runtime.packaged.PACKAGE", pkg.name)
    assert facespot.load("default", backend="torch").model_name == "blazeface_front"
    manifest["models"]["bf"]["model"] = "faceboxes"  # an entry pointing at the wrong file
    (pkg / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FacespotError, match="declares model 'faceboxes' but the file holds 'blazeface_front'"):
        facespot.load("default", backend="torch")


def test_reshipping_a_name_never_leaves_the_default_failing_its_hash_check(tmp_path, monkeypatch):
    """scripts/ship_model.py writes new files under new names, then switches the manifest in one
    atomic step: a failure before the switch leaves the old default loading; after it, the new
    one loads and the old files are gone."""
    from facespot.errors import OutputError

    pkg = _fake_package(tmp_path, monkeypatch)
    torch.manual_seed(0)
    old = save_weights(build("blazeface_front"), pkg / "bf-aaaa.safetensors")
    add_packaged(old, "bf", folder=pkg, default=True)
    torch.manual_seed(1)
    new = save_weights(build("blazeface_front"), pkg / "bf-bbbb.safetensors")

    def broken(path, write, suffix=".tmp"):  # the disk fills up while the manifest is written
        raise OutputError(f"{path}: cannot write (No space left on device)")

    monkeypatch.setattr("facespot.runtime.packaged.write_atomically", broken)
    with pytest.raises(OutputError):
        add_packaged(new, "bf", folder=pkg, default=True)
    assert resolve_packaged("default", package=pkg.name) == old  # still the old one, hash intact
    monkeypatch.undo()
    monkeypatch.syspath_prepend(str(tmp_path))
    add_packaged(new, "bf", folder=pkg, default=True)
    assert resolve_packaged("default", package=pkg.name) == new
    assert not old.exists()  # no entry lists it any more
    assert not list(pkg.glob(".manifest.json*"))  # no temporary manifest left behind
