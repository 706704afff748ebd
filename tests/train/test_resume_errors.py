"""A checkpoint torch's safe loader refuses is one plain line, and never suggests loading it
unsafely (issue 11, item 12: the message repeated torch's "weights_only=False" hint)."""

from __future__ import annotations

import pytest
import torch

from facespot.errors import FacespotError
from facespot.train.checkpoint import load_checkpoint


class NotPlainData:
    pass


@pytest.mark.parametrize(
    "payload",
    [
        {"format": 1, "x": NotPlainData()},
        {"format": 1, "x": len},  # a function: never plain data
        b"garbage, not a checkpoint",
    ],
)
def test_unreadable_checkpoint_message(tmp_path, payload):
    path = tmp_path / "last.pt"
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        torch.save(payload, path)
    with pytest.raises(FacespotError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not a readable facespot checkpoint")
    assert "weights_only" not in message and "add_safe_globals" not in message and "trust" not in message
    assert "\n" not in message and "\x1b" not in message and len(message) < 500
