"""The GPU-resident training set and its batched augmentation, exercised on the CPU device."""

import json
from pathlib import Path

import numpy as np
import torch

from facespot.data.records import FaceRecord
from facespot.images import read_image
from facespot.train.device_data import DeviceSquares, gpu_crop_resize, photometric_batch

from .tiny_model import TinyNet

FIX = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "train"


def _records():
    meta = json.loads((FIX / "faces.json").read_text())
    return [FaceRecord(FIX / m["image"], m["boxes"], m["landmarks"]) for m in meta]


def test_crop_resize_is_exact_at_unit_scale_and_flips():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (2, 128, 128, 3), dtype=np.uint8)
    crops = torch.tensor([[32.0, 16.0, 64.0], [0.0, 0.0, 64.0]])
    boxes = [torch.tensor([[40.0, 20.0, 60.0, 40.0], [0.0, 0.0, 10.0, 10.0]]), torch.tensor([[10.0, 10.0, 30.0, 20.0]])]
    out, ob = gpu_crop_resize(torch.from_numpy(img), boxes, crops, (64, 64), flip=torch.tensor([False, True]))
    assert np.array_equal(out[0].numpy(), img[0, 16:80, 32:96])
    assert np.array_equal(out[1].numpy(), img[1, 0:64, 0:64][:, ::-1])
    # face 0: (40-32)/64 .. ; face 1 (centre 5,5) is outside the crop -> dropped
    assert torch.allclose(ob[0], torch.tensor([[8 / 64, 4 / 64, 28 / 64, 24 / 64]]))
    assert torch.allclose(ob[1], torch.tensor([[1 - 30 / 64, 10 / 64, 1 - 10 / 64, 20 / 64]]))
    # downscale by 2: the mean of 2x2 blocks (bilinear at pixel-edge alignment)
    out2, _ = gpu_crop_resize(torch.from_numpy(img[:1]), [torch.zeros(0, 4)], torch.tensor([[0.0, 0.0, 128.0]]), (64, 64))
    ref = img[0].reshape(64, 2, 64, 2, 3).astype(np.float32).mean((1, 3))
    assert np.abs(out2[0].numpy().astype(np.float32) - ref).max() <= 1.0
    # zoomed out (a 256 square from -64): the image fills the middle half, the fill the rest
    out3, _ = gpu_crop_resize(torch.from_numpy(img[:1]), [torch.zeros(0, 4)], torch.tensor([[-64.0, -64.0, 256.0]]), (64, 64), fill=114)
    assert (out3[0, :8].numpy() == 114).all() and (out3[0, -8:].numpy() == 114).all()


def test_device_batches_hold_their_faces_exactly():
    records = _records()
    ds = DeviceSquares(records, lambda i: read_image(records[i].image_path), 256, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        b = ds.batch(range(len(records)), (128, 128), (0.5, 1.0, 1.5), gen, photometric=False)
        assert b.images.shape == (4, 128, 128, 3) and b.images.dtype == torch.uint8
        for img, bx in zip(b.images.numpy(), b.boxes):
            assert len(bx) >= 1  # crops are anchored on a face
            assert ((bx >= 0) & (bx <= 1)).all()
            # the fixture faces are flat light patches on a dark ground: the box centre is face-coloured
            for x1, y1, x2, y2 in (bx.numpy() * 128):
                cy, cx = int((y1 + y2) / 2), int((x1 + x2) / 2)
                assert img[cy, cx].mean() > 60


def test_face_free_images_last_in_the_set_crop_anywhere():
    """Face-free records (negatives, synthetic frames) come last in a recipe's pack: their face
    offset equals the number of faces, which must never be used as an index."""
    records = _records() + [FaceRecord(FIX / "images/0--Synth/synth_0.png", np.zeros((0, 4)))] * 2
    ds = DeviceSquares(records, lambda i: read_image(records[i].image_path), 256, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        b = ds.batch([len(records) - 1, len(records) - 2, 0], (128, 128), (0.5, 1.0, 2.0), gen)
        assert [len(x) for x in b.boxes][:2] == [0, 0] and len(b.boxes[2]) >= 1


def test_photometric_batch_changes_colours_but_keeps_shape():
    gen = torch.Generator().manual_seed(1)
    x = torch.full((8, 4, 4, 3), 100, dtype=torch.uint8)
    y = photometric_batch(x, gen, p=1.0)
    assert y.shape == x.shape and y.dtype == torch.uint8 and not torch.equal(x, y)
    assert torch.equal(photometric_batch(x, gen, p=0.0), x)


def _gpu_recipe(tmp_path, epochs: int):
    """A tiny recipe with data.gpu_augment (exercised on the CPU device)."""
    from facespot.train.config import config_from_dict

    return config_from_dict({
        "model": {"name": "faceboxes"},
        "data": {"train": [{"format": "wider", "path": str(FIX)}], "gpu_augment": True, "gpu_side": 128, "input_size": [64, 64]},
        "epochs": epochs, "batch_size": 2, "workers": 0, "val_every": 0, "out_dir": str(tmp_path / "run"),
        "optim": {"name": "adamw", "lr": 1e-3},
    }, "t.yaml")


def test_training_with_gpu_augment_on_cpu(tmp_path):
    from facespot.train.loop import train

    torch.manual_seed(0)
    res = train(_gpu_recipe(tmp_path, 2), model=TinyNet(), train_records=_records(), val_records=[], progress=False)
    assert res.epochs_done == 2 and len(res.step_losses) == 4 and all(np.isfinite(res.step_losses))


def test_gpu_augment_leaves_out_unreadable_images(tmp_path, capsys):
    """One corrupt file never ends a run: like the CPU pipeline, it is reported and skipped."""
    from facespot.train.loop import train

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    records = _records() + [FaceRecord(bad, [[1, 1, 20, 20]])]
    res = train(_gpu_recipe(tmp_path, 1), model=TinyNet(), train_records=records, val_records=[], progress=False)
    assert len(res.step_losses) == 2  # 4 readable images, batches of 2: the broken one is never drawn
    assert "1 training image(s) could not be read and are left out (broken)" in capsys.readouterr().err
