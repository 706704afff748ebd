"""End to end: the loop trains, checkpoints, resumes, skips bad images, stops on NaN."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from facespot import boxes as B
from facespot.data.records import FaceRecord
from facespot.errors import FacespotError
from facespot.models.base import decode_outputs
from facespot.train.checkpoint import load_checkpoint
from facespot.train.config import config_from_dict
from facespot.train.loop import train

from .tiny_model import TinyNet

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "train"


def fixture_records() -> list[FaceRecord]:
    meta = json.loads((FIX / "faces.json").read_text())
    return [FaceRecord(FIX / m["image"], m["boxes"], m["landmarks"]) for m in meta]


def recipe(tmp_path, **over):
    d = {
        "model": {"name": "faceboxes"},
        "data": {"train": [{"format": "wider", "path": str(FIX)}], "input_size": [256, 256]},
        "augment": [{"hflip": {}}],
        "optim": {"name": "adamw", "lr": 3e-3, "weight_decay": 0.0},
        "schedule": {"kind": "constant"},
        "epochs": 1, "batch_size": 4, "workers": 0, "val_every": 0, "log_every": 1,
        "out_dir": str(tmp_path / "run"),
    }
    d.update(over)
    return config_from_dict(d, "test.yaml")


def test_faceboxes_learns_the_fixture_faces(tmp_path):
    """Proof that the whole chain works: 45 steps of FaceBoxes on 4 synthetic images
    (256x256, CPU) bring the loss down >10x and the saved weights find every face."""
    records = fixture_records()
    res = train(recipe(tmp_path, epochs=45), train_records=records, val_records=[], progress=False)
    first, last = np.mean(res.step_losses[:3]), np.mean(res.step_losses[-5:])
    assert last < first / 10, (first, last)

    from facespot.models.io import load_model

    model = load_model(res.final_weights)  # the file `facespot eval` would take
    anchors = model.anchors(256, 256)
    from facespot.images import read_image

    for rec in records:
        img = read_image(rec.image_path)
        x = model.preprocess(torch.from_numpy(img[None]))
        with torch.no_grad():
            out = model(x)
        boxes, scores, _ = decode_outputs(out, torch.from_numpy(anchors), model.coding)
        boxes, scores = boxes[0].numpy() * 256, scores[0].numpy()
        keep = scores > 0.5
        kept = B.nms(boxes[keep], scores[keep], 0.3)
        det = boxes[keep][kept]
        assert len(det) == len(rec.boxes), (rec.name, scores[keep][kept])
        best = B.iou(rec.boxes, det).max(1)
        assert (best >= 0.5).all(), (rec.name, best)


def test_unreadable_image_is_skipped_and_counted(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    records = fixture_records()[:3] + [FaceRecord(bad, [[1, 1, 20, 20]])]
    with pytest.warns(UserWarning, match="skipped unreadable image broken"):
        res = train(recipe(tmp_path, epochs=2, data={"train": [{"format": "wider", "path": "x"}], "input_size": [64, 64]}),
                    model=TinyNet(), train_records=records, val_records=[], progress=False)
    assert res.skipped_images == 2  # once per epoch
    assert res.epochs_done == 2 and len(res.step_losses) == 2


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = recipe(tmp_path, epochs=3, batch_size=2, data={"train": [{"format": "wider", "path": "x"}], "input_size": [64, 64]})
    records = fixture_records()
    with pytest.raises(FacespotError, match=r"loss became nan at epoch 2, iteration 1.*last\.pt"):
        train(cfg, model=TinyNet(nan_after=2), train_records=records, val_records=[], progress=False)
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ck.epoch == 1 and all(torch.isfinite(v).all() for v in ck.model_state.values() if v.is_floating_point())
    assert not [p for p in os.listdir(tmp_path / "run") if p.endswith(".tmp")]


def test_same_seed_same_losses(tmp_path):
    records = fixture_records()
    kw = dict(epochs=2, data={"train": [{"format": "wider", "path": "x"}], "input_size": [64, 64]},
              augment=[{"square_crop": {}}, {"photometric": {}}, {"hflip": {}}])
    torch.manual_seed(123)  # the loop reseeds: this must not matter
    a = train(recipe(tmp_path / "a", **kw), model=_seeded_tiny(0), train_records=records, progress=False)
    # two loader worker processes: augmentation is seeded per (seed, epoch, item), not per worker
    b = train(recipe(tmp_path / "b", workers=2, **kw), model=_seeded_tiny(0), train_records=records, progress=False)
    assert len(a.step_losses) == 2 and a.step_losses == b.step_losses


def _seeded_tiny(seed):
    torch.manual_seed(seed)
    return TinyNet()


def test_cli_recipe_checkpoint_resume_and_wrong_model(tmp_path, capsys):
    from facespot.cli import main

    out = tmp_path / "tiny"
    os.chdir(ROOT)  # the fixture recipe's paths are relative to the repository root
    rc = main(["train", str(FIX / "tiny.yaml"), "--out", str(out), "--epochs", "1", "--set", "data.input_size=[128, 128]"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "final weights" in text and "best validation AP" in text
    for name in ("config.yaml", "metrics.jsonl", "last.pt", "best.safetensors", "final.safetensors"):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("val/ap50" in r for r in rows) and any("train/total" in r for r in rows)
    assert load_checkpoint(out / "last.pt").epoch == 1

    # resume for one more epoch: continues at epoch 2, step count carried on
    rc = main(["train", str(FIX / "tiny.yaml"), "--out", str(out), "--epochs", "2", "--set", "data.input_size=[128, 128]",
               "--resume", str(out / "last.pt")])
    assert rc == 0
    ck = load_checkpoint(out / "last.pt")
    assert ck.epoch == 2 and ck.global_step == 2

    # a checkpoint of another model -> one clear line, exit 2
    rc = main(["train", str(FIX / "tiny.yaml"), "--out", str(tmp_path / "x"), "--set", "model.name=blazeface_front",
               "--set", "data.input_size=null", "--resume", str(out / "last.pt")])
    err = capsys.readouterr().err
    assert rc == 2 and "checkpoint is of model 'faceboxes'" in err and "blazeface_front" in err
    # a weights file is not a checkpoint
    rc = main(["train", str(FIX / "tiny.yaml"), "--out", str(tmp_path / "y"), "--resume", str(out / "final.safetensors")])
    assert rc == 2 and "not a" in capsys.readouterr().err


def test_recipe_with_unknown_key_is_one_line_error(tmp_path, capsys):
    from facespot.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text((FIX / "tiny.yaml").read_text() + "optimiser: {lr: 1}\n")
    assert main(["train", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "unknown key 'optimiser'" in err


def test_init_starts_from_given_weights_with_a_fresh_optimiser(tmp_path, capsys):
    """Fine-tuning: ``init`` loads a weights file of the same model; with a learning rate of
    0 the trained parameters stay exactly those weights. Another model's file is refused."""
    from safetensors.torch import load_file

    from facespot.cli import main

    first = train(recipe(tmp_path / "a", epochs=1), train_records=fixture_records(), val_records=[], progress=False)
    cfg = recipe(tmp_path / "b", init=str(first.final_weights), optim={"name": "adamw", "lr": 0.0, "weight_decay": 0.0})
    second = train(cfg, train_records=fixture_records(), val_records=[], progress=False)
    a, b = load_file(str(first.final_weights)), load_file(str(second.final_weights))
    convs = [k for k, v in a.items() if v.ndim == 4]
    assert convs and all(torch.equal(a[k], b[k]) for k in convs)
    fresh = train(recipe(tmp_path / "c", optim={"name": "adamw", "lr": 0.0, "weight_decay": 0.0}), train_records=fixture_records(), val_records=[], progress=False)
    assert not all(torch.equal(a[k], load_file(str(fresh.final_weights))[k]) for k in convs)  # without init: its random start
    with pytest.raises(FacespotError, match="holds weights of model 'faceboxes'"):
        train(recipe(tmp_path / "d", model={"name": "spotnet_n"}, init=str(first.final_weights)), train_records=fixture_records(), val_records=[], progress=False)
    tiny = FIX / "tiny.yaml"
    assert main(["train", str(tiny), "--init", str(first.final_weights), "--resume", str(tmp_path / "x.pt"), "--out", str(tmp_path / "e")]) == 2
    assert "give one of them" in capsys.readouterr().err
    assert main(["train", str(tiny), "--init", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "f")]) == 2
    assert "weights file not found" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["faceboxes", "tinyfaces"])
def test_atss_on_a_model_without_pyramid_levels_is_refused_before_data_loads(tmp_path, name):
    cfg = recipe(tmp_path, model={"name": name}, loss={"assigner": "atss"},
                 data={"train": [{"format": "wider", "path": str(tmp_path / "nowhere")}], "input_size": [256, 256]})
    with pytest.raises(FacespotError, match="atss needs a pyramid model"):
        train(cfg)


def test_ema_is_saved_validated_and_resumed(tmp_path):
    from facespot.train.ema import ModelEMA

    records = fixture_records()
    kw = dict(data={"train": [{"format": "wider", "path": "x"}], "input_size": [64, 64]}, ema=True, ema_decay=0.5,
              checkpoint_every=1)
    res = train(recipe(tmp_path, epochs=2, **kw), model=_seeded_tiny(0), train_records=records, val_records=[], progress=False)
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ck.ema_state is not None and ck.ema_state["updates"] == 2
    from safetensors.torch import load_file  # TinyNet is not registered: compare the saved tensors directly

    saved = load_file(str(res.final_weights))
    ema_w = ck.ema_state["model"]["body.weight"]
    assert torch.allclose(saved["body.weight"], ema_w) and not torch.allclose(ema_w, ck.model_state["body.weight"])
    # the decay ramps up from 0: the first update copies the weights
    m = _seeded_tiny(1)
    e = ModelEMA(m, decay=0.9, ramp=1.0)
    with torch.no_grad():
        m.body.weight.add_(1.0)
    e.update(m)
    assert e.current_decay() < 0.6
    # resuming keeps averaging from the saved state
    res2 = train(recipe(tmp_path, epochs=3, **kw), model=_seeded_tiny(0), train_records=records, val_records=[],
                 resume=tmp_path / "run" / "last.pt", progress=False)
    assert load_checkpoint(tmp_path / "run" / "last.pt").ema_state["updates"] == 3 and res2.epochs_done == 3


def test_a_run_cut_inside_an_epoch_resumes_at_the_saved_batch(tmp_path, monkeypatch):
    """``checkpoint_minutes`` saves last.pt inside an epoch; a run killed there resumes at the
    next batch of the same epoch order and ends with the losses of a run never cut."""
    from facespot.train import loop as L

    kw = dict(epochs=2, batch_size=1, data={"train": [{"format": "wider", "path": "x"}], "input_size": [64, 64]},
              augment=[{"square_crop": {}}, {"hflip": {}}], checkpoint_minutes=1e-9)
    records = fixture_records()
    whole = train(recipe(tmp_path / "whole", **kw), model=_seeded_tiny(0), train_records=records, val_records=[], progress=False)
    cut_at = len(records) + 2  # the third batch of epoch 2

    real_step = L._Run.train_step

    def killed(self, batch, epoch, it, log):
        if self.step == cut_at:
            raise KeyboardInterrupt
        return real_step(self, batch, epoch, it, log)

    monkeypatch.setattr(L._Run, "train_step", killed)
    with pytest.raises(KeyboardInterrupt):
        train(recipe(tmp_path / "cut", **kw), model=_seeded_tiny(0), train_records=records, val_records=[], progress=False)
    ck = load_checkpoint(tmp_path / "cut" / "run" / "last.pt")
    assert (ck.epoch, ck.batches_done, ck.global_step) == (1, 2, cut_at)
    monkeypatch.setattr(L._Run, "train_step", real_step)
    metrics = tmp_path / "cut" / "run" / "metrics.jsonl"
    with metrics.open("a") as f:  # what a run killed after its save had logged: redone by the resume
        f.write(json.dumps({"step": cut_at + 1, "epoch": 2, "train/total": 99.0}) + '\n{"step": ')
    rest = train(recipe(tmp_path / "cut", **kw), model=_seeded_tiny(0), train_records=records, val_records=[],
                 resume=tmp_path / "cut" / "run" / "last.pt", progress=False)
    assert np.allclose(rest.step_losses, whole.step_losses[cut_at:], rtol=1e-5, atol=1e-7)
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]  # every line a row again
    assert all(r.get("train/total") != 99.0 for r in rows)
    train_steps = [r["step"] for r in rows if "train/total" in r]
    assert train_steps == sorted(set(train_steps)) and train_steps[-1] == 2 * len(records)  # each step once, in order
    end = load_checkpoint(tmp_path / "cut" / "run" / "last.pt")
    assert (end.epoch, end.batches_done, end.global_step) == (2, 0, 2 * len(records))
    with pytest.raises(FacespotError, match="checkpoint_minutes must be > 0"):
        recipe(tmp_path, checkpoint_minutes=0)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_saves_the_step_under_way_and_resumes_there(tmp_path, monkeypatch, signum):
    """SIGTERM or Ctrl-C (a real signal to this process) in the middle of a step: the step
    finishes, last.pt is saved at that batch, the run stops (Terminated for SIGTERM, a plain
    KeyboardInterrupt for Ctrl-C: exit 143 / 130 in the CLI), and the resume ends where a run
    never stopped ends. Without it, everything since the last save was lost."""
    from facespot.errors import Terminated
    from facespot.train import loop as L

    kw = dict(epochs=2, batch_size=1, data={"train": [{"format": "wider", "path": "x"}], "input_size": [64, 64]},
              augment=[{"square_crop": {}}, {"hflip": {}}])
    records = fixture_records()
    whole = train(recipe(tmp_path / "whole", **kw), model=_seeded_tiny(0), train_records=records, val_records=[], progress=False)
    signal_in = len(records) + 1  # inside the second step of epoch 2
    real_step = L._Run.train_step

    def signalled(self, batch, epoch, it, log):
        if self.step == signal_in:
            os.kill(os.getpid(), signum)  # arrives here, before the step's forward pass
        return real_step(self, batch, epoch, it, log)

    monkeypatch.setattr(L._Run, "train_step", signalled)
    before = signal.getsignal(signum)
    with pytest.raises(KeyboardInterrupt) as stopped:
        train(recipe(tmp_path / "cut", **kw), model=_seeded_tiny(0), train_records=records, val_records=[], progress=False)
    assert isinstance(stopped.value, Terminated) == (signum == signal.SIGTERM)
    assert signal.getsignal(signum) is before  # the handler is the run's only
    ck = load_checkpoint(tmp_path / "cut" / "run" / "last.pt")
    assert (ck.epoch, ck.batches_done, ck.global_step) == (1, 2, signal_in + 1)  # the signalled step kept
    monkeypatch.setattr(L._Run, "train_step", real_step)
    rest = train(recipe(tmp_path / "cut", **kw), model=_seeded_tiny(0), train_records=records, val_records=[],
                 resume=tmp_path / "cut" / "run" / "last.pt", progress=False)
    assert np.allclose(rest.step_losses, whole.step_losses[signal_in + 1 :], rtol=1e-5, atol=1e-7)


def test_cli_run_with_loader_workers_stops_on_sigterm_with_last_pt(tmp_path):
    """The real command, loader workers running, SIGTERM'd as ``kill`` does: exit 143, one line
    saying where the state is, and a last.pt that resumes inside the epoch."""
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "facespot", "train", str(FIX / "tiny.yaml"), "--out", str(out), "--epochs", "400",
           "--set", "data.input_size=[128, 128]", "--set", "batch_size=2", "--set", "workers=1", "--set", "val_every=0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics, deadline = out / "metrics.jsonl", time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # until it has trained a few steps
        if metrics.is_file() and metrics.read_text().count("train/total") >= 6:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err and "--resume" in err and "Traceback" not in err
    ck = load_checkpoint(out / "last.pt")
    assert ck.global_step >= 6 and (ck.epoch, ck.batches_done) != (0, 0)
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert max(r["step"] for r in rows if "train/total" in r) == ck.global_step  # nothing logged past the save


def test_workers_persist_across_epochs_and_repeats_weight_sources(tmp_path):
    """Two loader workers serve all epochs (same losses as no workers), and a source with
    repeat 2 is seen twice per epoch."""
    kw = dict(epochs=3, batch_size=1, data={"train": [{"format": "wider", "path": "x"}], "input_size": [64, 64]},
              augment=[{"square_crop": {}}, {"hflip": {}}])
    records = fixture_records()
    a = train(recipe(tmp_path / "a", **kw), model=_seeded_tiny(0), train_records=records, val_records=[], progress=False)
    b = train(recipe(tmp_path / "b", workers=2, **kw), model=_seeded_tiny(0), train_records=records, val_records=[], progress=False)
    assert a.step_losses == b.step_losses and len(a.step_losses) == 3 * len(records)


def test_spotnet_learns_the_fixture_faces(tmp_path):
    """The SpotNet chain (ATSS, quality focal + GIoU loss, EMA) trains on 4 synthetic images
    on the CPU and the saved weights find the faces."""
    from facespot.images import read_image
    from facespot.models.io import load_model

    records = fixture_records()
    cfg = recipe(tmp_path, epochs=40, model={"name": "spotnet_n"}, loss={"kind": "quality", "assigner": "atss"},
                 optim={"name": "adamw", "lr": 0.01, "weight_decay": 0.0}, ema=True, ema_decay=0.9,
                 data={"train": [{"format": "wider", "path": "x"}], "input_size": [128, 128]})
    res = train(cfg, train_records=records, val_records=[], progress=False)
    assert np.mean(res.step_losses[-5:]) < np.mean(res.step_losses[:3]) / 4
    model = load_model(res.final_weights)
    anchors = torch.from_numpy(model.anchors(128, 128))
    found = total = 0
    for rec in records:
        img = read_image(rec.image_path)[::2, ::2].copy()
        with torch.no_grad():
            out = model(model.preprocess(torch.from_numpy(img[None])))
        boxes, scores, _ = decode_outputs(out, anchors, model.coding)
        boxes, scores = boxes[0].numpy() * 128, scores[0].numpy()
        keep = scores > 0.3
        det = boxes[keep][B.nms(boxes[keep], scores[keep], 0.3)]
        assert len(det) <= len(rec.boxes) + 1, rec.name
        if len(det):
            found += int((B.iou(rec.boxes / 2, det).max(1) >= 0.5).sum())
        total += len(rec.boxes)
    assert found >= total - 1, (found, total)


def test_ddp_with_torchrun_on_cpu(tmp_path):
    """Two Gloo processes through PyTorch's own launcher: rank 0 writes the outputs."""
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "facespot", "train",
           str(FIX / "tiny.yaml"), "--device", "cpu", "--epochs", "2", "--batch-size", "2", "--out", str(out),
           "--set", "data.input_size=[64, 64]", "--set", "val_every=0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    ck = load_checkpoint(out / "last.pt")
    assert ck.epoch == 2 and ck.global_step == 2  # 4 images / (2 ranks x 2 per batch): one step per epoch
    assert (out / "final.safetensors").is_file()


@pytest.mark.parametrize("name", __import__("facespot.models", fromlist=["available"]).available())
def test_every_registered_family_takes_a_training_step(tmp_path, name):
    """One real step of the loop per family (targets, loss and optimiser chosen from the model)."""
    from facespot.models import build

    model = build(name)
    size = list(model.fixed_input_size or (96, 96))
    cfg = recipe(tmp_path, batch_size=2, max_iters_per_epoch=1, data={"train": [{"format": "wider", "path": "x"}], "input_size": size})
    res = train(cfg, model=model, train_records=fixture_records(), val_records=[], progress=False)
    assert len(res.step_losses) == 1 and np.isfinite(res.step_losses[0])


def test_a_run_logging_to_a_file_shows_plain_progress_lines(tmp_path, capsys, monkeypatch):
    """No terminal, no bar: a background run's log still says where it is and how fast."""
    monkeypatch.setattr("facespot.train.loop.PLAIN_PROGRESS_EVERY", 1)
    records = fixture_records()
    train(recipe(tmp_path, data={"train": [{"format": "wider", "path": "x"}], "input_size": [64, 64]}, batch_size=2),
          model=TinyNet(), train_records=records, val_records=[], progress=False)  # fmt: skip
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("facespot train: epoch 1/1, step")]
    assert len(lines) == 2 and "img/s" in lines[0] and "epoch done in" in lines[0]


def _conv_dtype_under(ctx_factory) -> torch.dtype:
    conv = torch.nn.Conv2d(3, 4, 3)
    with ctx_factory():
        return conv(torch.zeros(1, 3, 8, 8)).dtype


def test_amp_cpu_autocasts_only_where_asked_and_native(monkeypatch):
    from facespot.train import loop

    cpu = torch.device("cpu")
    assert _conv_dtype_under(loop.autocast_for(recipe(Path("/tmp")), cpu)) == torch.float32  # off by default
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: True)
    assert _conv_dtype_under(loop.autocast_for(recipe(Path("/tmp"), amp_cpu=True), cpu)) == torch.bfloat16
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: False)  # emulated bf16 is slower: float32, said so
    with pytest.warns(UserWarning, match="no native bf16"):
        ctx = loop.autocast_for(recipe(Path("/tmp"), amp_cpu=True), cpu)
    assert _conv_dtype_under(ctx) == torch.float32


def test_faceboxes_learns_under_cpu_bf16_autocast(tmp_path):
    """bf16 forward passes (float32 weights, loss and optimiser) train as float32 does on the fixture."""
    from facespot.train.loop import cpu_has_native_bf16

    if not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bf16")
    res = train(recipe(tmp_path, epochs=30, amp_cpu=True), train_records=fixture_records(), val_records=[], progress=False)
    first, last = np.mean(res.step_losses[:3]), np.mean(res.step_losses[-5:])
    assert np.isfinite(res.step_losses).all() and last < first / 5, (first, last)
