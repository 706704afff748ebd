"""Where training numbers go: TensorBoard when installed, and always a JSONL file.

TensorBoard is optional (not a dependency): when the ``tensorboard`` package imports,
scalars also go to ``OUT/tb/``. ``OUT/metrics.jsonl`` is written in every case, one JSON
object per line (``{"step": ..., "epoch": ..., "tag": value, ...}``), so runs can be
compared with nothing but Python or ``jq``.

A resumed run continues the same file from its checkpoint's step: rows a killed run wrote
after that step describe training the resume does again, so they are dropped
(``resume_step``; TensorBoard's ``purge_step`` does the same there) and the file reads as
one run, each step once.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class RunLog:
    def __init__(self, out_dir: Path, enabled: bool = True, resume_step: int | None = None) -> None:
        self.enabled = enabled
        self.path = Path(out_dir) / "metrics.jsonl"
        self.tb = None
        self.backend = "jsonl"
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.is_file():
            self._rewind(int(resume_step))
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

            purge = None if resume_step is None else int(resume_step) + 1
            self.tb = SummaryWriter(str(Path(out_dir) / "tb"), purge_step=purge)
            self.backend = "tensorboard+jsonl"
        except Exception:  # ImportError, or a broken tensorboard install
            self.tb = None

    def _rewind(self, step: int) -> None:
        """Keep the rows up to ``step``; a line that is no row (torn by a kill) goes too. Written
        to a temporary file and moved over the old one in one step."""
        lines = self.path.read_text(encoding="utf-8").splitlines()
        keep = []
        for line in lines:
            try:
                row_step = int(json.loads(line)["step"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line of a killed run, or a foreign line: not a row of this run
            if row_step <= step:
                keep.append(line)
        if len(keep) != len(lines):
            tmp = self.path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(line + "\n" for line in keep), encoding="utf-8")
            tmp.replace(self.path)

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
