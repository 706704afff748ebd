"""Recipe schema: every key checked, overrides, errors naming key and file."""

import pytest

from facespot.errors import FacespotError
from facespot.train.config import load_config

BASE = """
model: {name: faceboxes}
data:
  train: [{format: wider, path: /data/WIDER, options: {split: train}}]
  val_limit: 10
optim: {name: sgd, lr: 0.001}
schedule: {kind: cosine, warmup_epochs: 1}
epochs: 3
batch_size: 4
"""


def _write(tmp_path, text):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


def test_loads_and_fills_defaults(tmp_path):
    cfg = load_config(_write(tmp_path, BASE))
    assert cfg.model.name == "faceboxes" and cfg.epochs == 3 and cfg.batch_size == 4
    assert cfg.data.train[0].path == "/data/WIDER" and cfg.data.train[0].options == {"split": "train"}
    assert cfg.optim.lr == 0.001 and cfg.optim.momentum == 0.9  # default kept
    assert cfg.schedule.kind == "cosine" and cfg.loss.pos_iou == 0.35


def test_unknown_key_names_key_and_file(tmp_path):
    p = _write(tmp_path, BASE + "optim_lr: 3\n")
    with pytest.raises(FacespotError, match=r"r\.yaml.*unknown key 'optim_lr'"):
        load_config(p)
    p = _write(tmp_path, BASE.replace("lr: 0.001", "lr_rate: 0.001"))
    with pytest.raises(FacespotError, match=r"r\.yaml: optim: unknown key 'lr_rate'"):
        load_config(p)


def test_type_errors_and_bad_values(tmp_path):
    with pytest.raises(FacespotError, match=r"epochs: expected an integer"):
        load_config(_write(tmp_path, BASE + "epochs: lots\n"))
    with pytest.raises(FacespotError, match="optim.name must be"):
        load_config(_write(tmp_path, BASE.replace("name: sgd", "name: rmsprop")))
    with pytest.raises(FacespotError, match="not valid YAML"):
        load_config(_write(tmp_path, "model: [\n"))
    with pytest.raises(FacespotError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(FacespotError, match="repeat must be a finite number"):
        load_config(_write(tmp_path, BASE.replace("split: train}}", "split: train}, repeat: .inf}")))
    with pytest.raises(FacespotError, match="atss_topk must be >= 1"):
        load_config(_write(tmp_path, BASE + "loss: {atss_topk: 0}\n"))
    with pytest.raises(FacespotError, match="val_max_side must be >= 16"):
        load_config(_write(tmp_path, BASE.replace("val_limit: 10", "val_limit: 10\n  val_max_side: 4")))


def test_overrides(tmp_path):
    p = _write(tmp_path, BASE)
    cfg = load_config(p, ["optim.lr=0.01", "epochs=2", "data.train.0.path=/elsewhere", "loss.focal=true", "data.input_size=[320, 320]"])
    assert cfg.optim.lr == 0.01 and cfg.epochs == 2 and cfg.data.train[0].path == "/elsewhere"
    assert cfg.loss.focal is True and cfg.data.input_size == [320, 320]
    with pytest.raises(FacespotError, match="unknown key 'lrr'"):
        load_config(p, ["optim.lrr=1"])
    with pytest.raises(FacespotError, match="KEY=VALUE"):
        load_config(p, ["optim.lr"])
    with pytest.raises(FacespotError, match="past the end"):
        load_config(p, ["data.train.3.path=x"])


def test_shipped_configs_parse():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "configs"
    files = sorted(root.glob("*.yaml"))
    assert len(files) >= 5
    from facespot.data.augment import build_augment
    from facespot.models import build
    from facespot.train.loop import resolve_input_size

    for f in files + [root.parent / "tests" / "fixtures" / "train" / "tiny.yaml"]:
        cfg = load_config(f)
        model = build(cfg.model.name, **cfg.model.options)  # options the model accepts
        size = resolve_input_size(cfg, model)
        build_augment(cfg.augment, size, where=str(f))


def test_name_lists_are_pinned_to_the_recipe_folder(tmp_path):
    from pathlib import Path

    from facespot.train.config import dump_config, load_config

    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "hold.txt").write_text("a\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data:\n  train:\n    - {format: voc, path: x, exclude: splits/hold.txt}\n")
    cfg = load_config(recipe)
    assert Path(cfg.data.train[0].exclude) == (tmp_path / "splits" / "hold.txt").resolve()
    saved = tmp_path / "run" / "config.yaml"
    saved.parent.mkdir()
    saved.write_text(dump_config(cfg))
    assert load_config(saved).data.train[0].exclude == cfg.data.train[0].exclude  # a saved run config still works


def test_recipes_keep_hold_outs_and_photos_with_faces_out_of_the_face_free_training_set():
    """A recipe training on ``negatives-pets`` as background must leave out its hold-out and the
    photos of it that show a person's face (configs/splits/negatives_with_faces.txt): a recipe
    that forgot the second would teach real faces as background."""
    from pathlib import Path

    from facespot.train.sources import read_name_list

    root = Path(__file__).resolve().parents[2] / "configs"
    hold = read_name_list(str(root / "splits" / "negatives_holdout.txt"), "test")
    with_faces = read_name_list(str(root / "splits" / "negatives_with_faces.txt"), "test")
    assert len(with_faces) == 5 and len(hold) == 78
    assert not hold & with_faces  # a photo with a face is no face-free hold-out photo
    checked = 0
    for f in sorted(root.glob("*.yaml")):
        for src in load_config(f).data.train:
            if src.format == "negatives" and "negatives-pets" in str(src.path):
                excluded = read_name_list(src.exclude or [], str(f))
                assert hold <= excluded and with_faces <= excluded, f"{f.name}: negatives-pets source must exclude both lists"
                checked += 1
    assert checked >= 5
