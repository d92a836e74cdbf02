"""Writes golden logits of the exported models, computed by the recipe's own PyTorch model, so
Whittle's engine can be checked against PyTorch itself (workers/text/pytorch-golden.test.ts).

    /usr/bin/python3 models/recipes/layerskip/golden.py

Input: the first 64 tokens of the held-out split (work/corpus/val.bin, regenerated
deterministically by corpus.py). Output: models/<id>/golden-logits.json with the tokens and the
logits at a few positions, for full depth and for early exits 2 and 4.
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from export import load_exported  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
POSITIONS = [0, 7, 31, 63]
EXITS = [None, 2, 4]


def main():
    val_path = os.path.join(HERE, "work", "corpus", "val.bin")
    if not os.path.isfile(val_path):
        sys.exit(f"golden: {val_path} missing; run corpus.py first (see README)")
    tokens = np.fromfile(val_path, dtype=np.uint16)[:64].astype(np.int64)
    for model_id in ("stories-layerskip", "stories-baseline"):
        model = load_exported(os.path.join(ROOT, "models", model_id))
        out = {"tokens": tokens.tolist(), "positions": POSITIONS, "logits": {}}
        with torch.no_grad():
            for exit_layer in EXITS:
                logits = model(torch.from_numpy(tokens)[None, :], exit_layer=exit_layer)[0]
                key = "full" if exit_layer is None else f"exit{exit_layer}"
                out["logits"][key] = [[round(float(v), 6) for v in logits[p]] for p in POSITIONS]
        path = os.path.join(ROOT, "models", model_id, "golden-logits.json")
        with open(path, "w") as f:
            json.dump(out, f)
        print(f"golden: {path}")


if __name__ == "__main__":
    main()
