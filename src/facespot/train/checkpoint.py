"""Checkpoints: everything needed to resume a run, written atomically.

A checkpoint holds the model's registry name and options, its weights, the optimiser and
scheduler states, the epoch, the best validation AP so far and the recipe. It is written
to a temporary file in the same folder and moved into place with ``os.replace``, so a run
killed mid-write leaves the previous checkpoint intact. Loading uses
``torch.load(weights_only=True)``: a checkpoint holds only tensors and plain data, so it
cannot run code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from facespot.errors import FacespotError
from facespot.files import write_atomically

FORMAT = "facespot-checkpoint-1"


@dataclass
class Checkpoint:
    model_name: str
    model_config: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None
    scheduler_state: dict[str, Any] | None
    epoch: int  # epochs completed
    global_step: int
    best_ap: float | None
    recipe: dict[str, Any]
    ema_state: dict[str, Any] | None = None  # facespot.train.ema.ModelEMA.state_dict()
    batches_done: int = 0  # of epoch ``epoch + 1``, when saved inside it (``checkpoint_minutes``)


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "model_name": ckpt.model_name,
        "model_config": ckpt.model_config,
        "model": ckpt.model_state,
        "optimizer": ckpt.optimizer_state,
        "scheduler": ckpt.scheduler_state,
        "epoch": ckpt.epoch,
        "global_step": ckpt.global_step,
        "best_ap": ckpt.best_ap,
        "recipe": ckpt.recipe,
        "ema": ckpt.ema_state,
        "batches_done": ckpt.batches_done,
    }
    return write_atomically(path, lambda tmp: torch.save(payload, tmp))


def _short_reason(exc: Exception) -> str:
    """torch's reason in one line, without its 'weights_only=False' / allowlisting advice."""
    text = str(exc).split("WeightsUnpickler error:")[-1].strip()
    first = text.splitlines()[0].split(". ")[0][:200] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise FacespotError(f"{path}: checkpoint not found")
    try:
        d = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle / zip errors of many kinds
        raise FacespotError(f"{path}: not a readable facespot checkpoint ({_short_reason(exc)}); facespot loads checkpoints"
                            " only in torch's safe mode, which accepts nothing but tensors and plain data") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise FacespotError(
            f"{path}: not a facespot training checkpoint (a weights file for `facespot eval` is not resumable;"
            " resume from a checkpoint_*.pt or last.pt of a run)"
        )
    return Checkpoint(
        d["model_name"], d["model_config"], d["model"], d.get("optimizer"), d.get("scheduler"),
        int(d["epoch"]), int(d.get("global_step", 0)), d.get("best_ap"), d.get("recipe", {}), d.get("ema"),
        int(d.get("batches_done", 0)),
    )


def check_compatible(ckpt: Checkpoint, path: str | Path, model_name: str, model_config: dict[str, Any]) -> None:
    """Refuse to resume another model (or the same model built with other options)."""
    if ckpt.model_name != model_name:
        raise FacespotError(
            f"{path}: checkpoint is of model {ckpt.model_name!r}, but this recipe trains {model_name!r}"
        )
    a = {k: v for k, v in ckpt.model_config.items() if k != "name"}
    b = {k: v for k, v in model_config.items() if k != "name"}
    if a != b:
        raise FacespotError(f"{path}: checkpoint of {model_name!r} was built with options {a}, this recipe uses {b}")
