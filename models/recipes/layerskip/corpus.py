"""Self-data distillation corpus: TinyStories-style text sampled from stories260K.

Each story starts at BOS (1) and is sampled at temperature `--temperature` until the model
emits BOS/EOS (1/2) or `--max-len` tokens. Stories are stored llama2.c style as one uint16
token stream, each story prefixed by BOS, so training windows can cross story boundaries.
Sampling is batched with a KV cache and seeded per batch (seed + batch index), so the corpus
is a deterministic function of (mirror files, seed, temperature, max_len, size).

The last `--val-batches` batches are the held-out split (never trained on).
Output (the work folder is git-ignored): corpus/train.bin, corpus/val.bin, corpus/meta.json.

    /usr/bin/python3 models/recipes/layerskip/corpus.py --mirror ../shared/mirror --work models/recipes/layerskip/work
"""
import argparse
import hashlib
import json
import os
from pathlib import Path
import sys
import time

import numpy as np
import torch

from llama2c import BOS, EOS, InputError, load_verified


@torch.no_grad()
def sample_batch(model, batch, max_len, temperature, seed):
    """Sample `batch` stories; returns a list of token lists (without the leading BOS)."""
    g = torch.Generator().manual_seed(seed)
    cache = model.new_cache(batch)
    tok = torch.full((batch, 1), BOS, dtype=torch.long)
    out = torch.zeros(batch, max_len, dtype=torch.long)
    done = torch.zeros(batch, dtype=torch.bool)
    lengths = torch.full((batch,), max_len, dtype=torch.long)
    for pos in range(max_len):
        logits = model(tok, start_pos=pos, cache=cache)[:, -1]  # (B, vocab)
        probs = torch.softmax(logits / temperature, dim=-1)
        nxt = torch.multinomial(probs, 1, generator=g)  # (B, 1)
        out[:, pos] = nxt[:, 0]
        stop = (nxt[:, 0] == BOS) | (nxt[:, 0] == EOS)
        lengths = torch.where(stop & ~done, torch.full_like(lengths, pos), lengths)
        done |= stop
        if bool(done.all()):
            break
        tok = nxt
    return [out[i, :int(lengths[i])].tolist() for i in range(batch)]


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def corpus_dir(work):
    return os.path.join(work, "corpus")


def load_corpus(work):
    """(train uint16 array, val uint16 array, meta dict); InputError if not generated yet."""
    d = corpus_dir(work)
    meta_path = os.path.join(d, "meta.json")
    if not os.path.isfile(meta_path):
        raise InputError(f"no corpus in {d}: run corpus.py (train.py generates it when missing)")
    with open(meta_path) as f:
        meta = json.load(f)
    train = np.fromfile(os.path.join(d, "train.bin"), dtype="<u2")
    val = np.fromfile(os.path.join(d, "val.bin"), dtype="<u2")
    return train, val, meta


def generate(mirror, work, tokens, seed=1234, temperature=1.0, max_len=255, batch=256, val_batches=4,
             log=print):
    """Generate the corpus into work/corpus (atomically: written to a temp dir then renamed)."""
    model, tok = load_verified(mirror)
    log("stories260K port verified: greedy output from BOS matches llama2.c's known token ids")
    return build_corpus(mirror, work, tokens, seed, temperature, max_len, batch, val_batches, tok.vocab_size,
                        lambda b: sample_batch(model, batch, max_len, temperature, seed + b), log)


def build_corpus(mirror, work, tokens, seed, temperature, max_len, batch, val_batches, vocab_size, stories_of,
                 log=print, extra_meta=None):
    """The corpus from `stories_of(b)` (batch b's stories, token lists without BOS, b = 0, 1, ...):
    training batches until `tokens` training tokens, then the held-out batches; written to a temp dir,
    then renamed to work/corpus. corpus_parts.py (the sheared recipe) feeds it batches sampled apart."""
    d = corpus_dir(work)
    tmp = d + f".tmp{os.getpid()}"
    os.makedirs(tmp, exist_ok=True)
    streams = {"train": [], "val": []}
    counts = {"train": 0, "val": 0}
    stories = {"train": 0, "val": 0}
    t0 = time.time()
    b = 0
    # train batches first until the token target is reached, then the held-out batches
    while counts["train"] < tokens or stories["val"] < val_batches * batch:
        split = "train" if counts["train"] < tokens else "val"
        for s in stories_of(b):
            arr = np.array([BOS] + s, dtype="<u2")
            streams[split].append(arr)
            counts[split] += arr.size
            stories[split] += 1
        b += 1
        if b % 5 == 0:
            log(f"corpus: batch {b}, train {counts['train']} tokens, val {counts['val']}, {time.time() - t0:.0f}s")
    for split in ("train", "val"):
        np.concatenate(streams[split]).tofile(os.path.join(tmp, f"{split}.bin"))
    meta = {
        "source": "stories260K (llama2.c, MIT) self-distillation",
        "stories260K_sha256": sha256(os.path.join(mirror, "stories260K", "stories260K.bin")),
        "tok512_sha256": sha256(os.path.join(mirror, "stories260K", "tok512.bin")),
        "seed": seed, "temperature": temperature, "max_len": max_len, "batch": batch,
        "batches": b, "val_batches": val_batches, "vocab_size": vocab_size,
        "train_tokens": counts["train"], "val_tokens": counts["val"],
        "train_stories": stories["train"], "val_stories": stories["val"],
        "seconds": round(time.time() - t0, 1),
        **(extra_meta or {}),
    }
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    if os.path.exists(d):
        raise InputError(f"{d} appeared while generating (another process?); delete it and rerun")
    os.replace(tmp, d)
    log(f"corpus written to {d}: {json.dumps(meta)}")
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", required=True, help="folder holding stories260K/stories260K.bin and tok512.bin")
    ap.add_argument("--work", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "work"))
    ap.add_argument("--tokens", type=int, default=4_000_000, help="training tokens to sample (approx.)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--max-len", type=int, default=255, help="max sampled tokens per story (plus BOS)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--val-batches", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    try:
        if os.path.exists(os.path.join(corpus_dir(a.work), "meta.json")):
            raise InputError(f"{corpus_dir(a.work)} already exists; delete it to regenerate")
        generate(a.mirror, a.work, a.tokens, a.seed, a.temperature, a.max_len, a.batch, a.val_batches)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
