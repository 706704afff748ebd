"""Weights files: round trip, metadata, wrong-model and bad-file errors, atomic writes."""

from __future__ import annotations

import json

import pytest
import torch

from facespot import FacespotError, __version__, models
from facespot.models import io


def _perturbed(name: str, **opts):
    torch.manual_seed(1)
    m = models.build(name, **opts)
    with torch.no_grad():  # non-default BN statistics too, so buffers are checked
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-1, 1)
                mod.running_var.uniform_(0.5, 2)
                mod.num_batches_tracked.fill_(7)
    return m


def test_round_trip_is_exact(tmp_path):
    m = _perturbed("blazeface_front", kernel_size=3)
    path = io.save_weights(m, tmp_path / "sub" / "bf.safetensors")
    meta = io.read_metadata(path)
    assert meta["facespot_model"] == "blazeface_front"
    assert json.loads(meta["config"]) == {"name": "blazeface_front", "kernel_size": 3}
    assert meta["facespot_version"] == __version__

    loaded = io.load_model(path)
    assert type(loaded) is type(m) and not loaded.training
    assert loaded.config == m.config
    a, b = m.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    x = torch.randn(1, 3, 128, 128)
    m.eval()
    with torch.no_grad():
        for u, v in zip(m(x), loaded(x)):
            assert torch.equal(u, v)


def test_load_weights_into_same_model(tmp_path):
    m = _perturbed("faceboxes")
    path = io.save_weights(m, tmp_path / "fb.safetensors")
    fresh = models.build("faceboxes")
    assert not torch.equal(fresh.conv1[0].weight, m.conv1[0].weight)
    io.load_weights_into(fresh, path)
    assert torch.equal(fresh.conv1[0].weight, m.conv1[0].weight)


def test_wrong_model_names_both(tmp_path):
    path = io.save_weights(models.build("blazeface_front"), tmp_path / "bf.safetensors")
    with pytest.raises(FacespotError) as err:
        io.load_weights_into(models.build("faceboxes"), path)
    msg = str(err.value)
    assert "blazeface_front" in msg and "faceboxes" in msg and str(path) in msg


def test_same_name_other_options_is_a_clear_error(tmp_path):
    path = io.save_weights(models.build("blazeface_front", kernel_size=3), tmp_path / "k3.safetensors")
    with pytest.raises(FacespotError, match="do not fit"):
        io.load_weights_into(models.build("blazeface_front"), path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FacespotError, match="not found"):
        io.load_model(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(FacespotError, match="bad.safetensors"):
        io.load_model(bad)
    # truncated real file: header fine, tensor data cut
    good = io.save_weights(models.build("blazeface_front"), tmp_path / "good.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-1000])
    with pytest.raises(FacespotError, match="cut.safetensors"):
        io.load_model(cut)


def test_plain_safetensors_without_metadata(tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    with pytest.raises(FacespotError, match="not a facespot weights file"):
        io.load_model(p)


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = io.save_weights(models.build("blazeface_front"), tmp_path / "w.safetensors")
    before = path.read_bytes()

    import safetensors.torch

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError):
        io.save_weights(models.build("faceboxes"), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]  # no temp file left


def test_wrapped_model_saves_bare_keys(tmp_path):
    m = models.build("blazeface_front")
    path = io.save_weights(torch.nn.DataParallel(m), tmp_path / "dp.safetensors")
    loaded = io.load_model(path)
    assert set(loaded.state_dict()) == set(m.state_dict())


def test_saved_files_get_normal_permissions(tmp_path):
    import os

    from facespot.models import build
    from facespot.models.io import save_weights

    path = save_weights(build("blazeface_front"), tmp_path / "w.safetensors")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
