"""Where training numbers go: TensorBoard when installed, and always a JSONL file.

TensorBoard is optional (not a dependency): when the ``tensorboard`` package imports,
scalars also go to ``OUT/tb/``. ``OUT/metrics.jsonl`` is written in every case, one JSON
object per line (``{"step": ..., "epoch": ..., "tag": value, ...}``), so runs can be
compared with nothing but Python or ``jq``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class RunLog:
    def __init__(self, out_dir: Path, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(out_dir) / "metrics.jsonl"
        self.tb = None
        self.backend = "jsonl"
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

            self.tb = SummaryWriter(str(Path(out_dir) / "tb"))
            self.backend = "tensorboard+jsonl"
        except Exception:  # ImportError, or a broken tensorboard install
            self.tb = None

    def scalars(self, step: int, values: dict[str, Any], **context: Any) -> None:
        if not self.enabled:
            return
        row = {"step": int(step), **context}
        for k, v in values.items():
            if v is None:
                continue
            v = float(v)
            row[k] = v if math.isfinite(v) else str(v)
            if self.tb is not None and math.isfinite(v):
                self.tb.add_scalar(k, v, step)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
