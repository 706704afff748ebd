"""Packaged names work everywhere a model is named, and `facespot models` lists everything
(issue 11, item 9)."""

from __future__ import annotations

import onnx

from facespot.cli import main
from facespot.runtime.packaged import packaged_names, read_manifest


def test_models_lists_packaged_weights_and_backbones(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in packaged_names():
        assert name in out
    for backbone in ("pool_resnet", "mobilenet_v3", "mobilenet_v3_small"):
        assert f"yolo backbone={backbone}" in out
    assert any(line.split()[0] == "yolo" for line in out.splitlines() if line.strip())  # the default backbone
    # each architecture row says which packaged names are trained weights of it ("—": none)
    rows = {line.split("  ")[0].strip(): line for line in out.split("\n\n")[0].splitlines()[2:]}
    for key, entry in read_manifest()["models"].items():
        assert any(key in line for label, line in rows.items() if label.split()[0] == entry["model"]), key
    assert rows["blazeface_back"].rstrip().endswith("—")


def test_models_card_of_a_packaged_name(capsys):
    manifest = read_manifest()
    for name in packaged_names():
        assert main(["models", name]) == 0
        out = capsys.readouterr().out
        key = manifest["default"] if name == "default" else name
        assert f"model       {manifest['models'][key]['model']}" in out and f"packaged    {key}" in out
    assert main(["models", "yolo", "--option", "backbone=pool_resnet"]) == 0
    assert "pool_resnet" in capsys.readouterr().out


def test_export_a_packaged_name(tmp_path, capsys):
    out = tmp_path / "d.onnx"
    assert main(["export", "default", "--onnx", str(out)]) == 0
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["facespot_model"] == read_manifest()["models"][read_manifest()["default"]]["model"]
    assert "ONNX Runtime vs PyTorch" in capsys.readouterr().out


def test_models_weights_with_bad_metadata_is_one_line(tmp_path, capsys):
    """The metadata of a user's file is read like load_model reads it: one line, never a traceback."""
    import torch
    from safetensors.torch import save_file

    cases = [
        ("{not json", "metadata 'config' is not valid JSON"),
        ("[1, 2]", "metadata 'config' must be a JSON object"),
        ('{"no_such_option": 3}', "cannot rebuild the model"),
    ]
    for i, (config, words) in enumerate(cases):
        path = tmp_path / f"bad{i}.safetensors"
        save_file({"w": torch.zeros(1)}, str(path), metadata={"facespot_model": "faceboxes", "config": config})
        assert main(["models", "--weights", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"facespot: error: {path}: ") and words in err and err.count("\n") == 1, err
