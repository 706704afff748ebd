"""README's Train section documents the tiny training run (issue 11, item 12), and the
documented key is a real recipe key that caps the iterations."""

from __future__ import annotations

import dataclasses
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_train_section_documents_max_iters_per_epoch():
    text = README.read_text(encoding="utf-8")
    train = text.split("\n## Train\n", 1)[1].split("\n## ", 1)[0]
    assert "max_iters_per_epoch" in train and "--set max_iters_per_epoch=" in train
    from facespot.train.config import TrainConfig

    assert "max_iters_per_epoch" in {f.name for f in dataclasses.fields(TrainConfig)}
