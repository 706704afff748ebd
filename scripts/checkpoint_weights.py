"""Write the weights a training checkpoint would ship (its EMA when kept) as a .safetensors file.

A campaign keeps only ``last.pt`` (and ``best.safetensors`` at validation epochs); to evaluate or
ship the state of any other epoch (a copied ``last.pt``), take its weights out with this:

    python scripts/checkpoint_weights.py campaign/spotnet_s2/last.pt /tmp/spotnet_s2_e12.safetensors
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("out")
    p.add_argument("--raw", action="store_true", help="the trained weights themselves, not their moving average")
    args = p.parse_args()

    from facespot.errors import FacespotError
    from facespot.models import build
    from facespot.models.io import save_weights
    from facespot.train.checkpoint import load_checkpoint

    try:
        ckpt = load_checkpoint(args.checkpoint)
        model = build(ckpt.model_name, **{k: v for k, v in ckpt.model_config.items() if k != "name"})
        state = ckpt.ema_state["model"] if (ckpt.ema_state and not args.raw) else ckpt.model_state
        model.load_state_dict(state)
        save_weights(model.eval(), args.out, {"epoch": str(ckpt.epoch), "source": f"{args.checkpoint} ({'raw' if args.raw or not ckpt.ema_state else 'EMA'})"})
    except FacespotError as exc:
        print(f"checkpoint_weights: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: epoch {ckpt.epoch} of {ckpt.model_name} ({'raw' if args.raw or not ckpt.ema_state else 'EMA'} weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
