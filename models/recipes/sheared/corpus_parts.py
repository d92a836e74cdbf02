"""The LayerSkip recipe's corpus, generated in parallel parts on a busy machine.

corpus.py samples batch b with seed + b, so any batch can be sampled alone; this runs
layerskip/corpus.py's own `sample_batch` on a range of batches per process, then assembles the
parts with corpus.py's split rule (training batches until --tokens is reached, then --val-batches
held-out batches) into the same corpus/train.bin, val.bin and meta.json corpus.py writes.

    # three processes, then assemble (defaults = corpus.py's: seed 1234, T 1.0, 255 tokens, batch 256)
    for r in 0:15 15:29 29:43; do nohup nice -n 19 python3 corpus_parts.py --mirror M --batches $r & done
    python3 corpus_parts.py --mirror M --assemble

Check against the committed stories-layerskip card: 9984 training stories (2,511,381 tokens) and
1024 held-out stories (258,136 tokens) with --tokens 2500000.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "layerskip"))

from corpus import build_corpus, corpus_dir, sample_batch  # noqa: E402
from llama2c import BOS, InputError, load_verified  # noqa: E402

WORK = os.path.join(HERE, "..", "layerskip", "work")


def part_path(work, b):
    return os.path.join(work, "corpus-parts", f"b{b:03d}.npy")


def generate_parts(a, lo, hi):
    model, _ = load_verified(a.mirror)
    os.makedirs(os.path.join(a.work, "corpus-parts"), exist_ok=True)
    for b in range(lo, hi):
        if os.path.isfile(part_path(a.work, b)):
            continue
        t = time.time()
        stories = sample_batch(model, a.batch, a.max_len, a.temperature, a.seed + b)
        stream = np.concatenate([np.array([BOS] + s, dtype="<u2") for s in stories])
        np.save(part_path(a.work, b) + ".tmp.npy", stream)
        os.replace(part_path(a.work, b) + ".tmp.npy", part_path(a.work, b))
        print(f"batch {b}: {stream.size} tokens, {time.time() - t:.0f}s", flush=True)


def assemble(a):
    """The saved parts through corpus.py's own split rule and writer (build_corpus)."""
    d = corpus_dir(a.work)
    if os.path.exists(os.path.join(d, "meta.json")):
        raise InputError(f"{d} already exists; delete it to regenerate")

    def stories_of(b):
        if not os.path.isfile(part_path(a.work, b)):
            raise InputError(f"batch {b} is missing ({part_path(a.work, b)}): generate it with --batches")
        s = np.load(part_path(a.work, b))
        starts = np.flatnonzero(s == BOS)  # every story starts with BOS and sampling stops at BOS/EOS
        if starts.size != a.batch:
            raise InputError(f"batch {b} holds {starts.size} stories, expected {a.batch}")
        return [story[1:].tolist() for story in np.split(s, starts[1:])]

    build_corpus(a.mirror, a.work, a.tokens, a.seed, a.temperature, a.max_len, a.batch, a.val_batches, 512, stories_of,
                 extra_meta={"generated_by": "models/recipes/sheared/corpus_parts.py (corpus.py's sample_batch, batches in parallel)"})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", required=True)
    ap.add_argument("--work", default=WORK)
    ap.add_argument("--batches", default=None, help="lo:hi, the batch indices this process samples")
    ap.add_argument("--assemble", action="store_true")
    ap.add_argument("--tokens", type=int, default=2_500_000)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--max-len", type=int, default=255)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--val-batches", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    try:
        if a.assemble:
            assemble(a)
        elif a.batches:
            lo, hi = (int(x) for x in a.batches.split(":"))
            if not 0 <= lo < hi:
                raise InputError(f"--batches {a.batches}: need 0 <= lo < hi")
            generate_parts(a, lo, hi)
        else:
            raise InputError("give --batches lo:hi or --assemble")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
