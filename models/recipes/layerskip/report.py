"""Evaluate the committed models on the held-out split and write REPORT.md.

    /usr/bin/python3 models/recipes/layerskip/report.py --mirror ../shared/mirror

Loads models/stories-layerskip and models/stories-baseline from their committed
config.json + model.safetensors (with export.read_safetensors, our own reader) and, for every
exit layer E = 1..L (hidden state after block E -> shared final RMSNorm -> LM head), measures
on the held-out stories (<work>/corpus/val.bin, regenerated deterministically by corpus.py):
  * perplexity of the early exit, exp(mean CE);
  * top-1 agreement of the exit's argmax with the final layer's argmax
    (= expected acceptance rate per drafted token of greedy self-speculative decoding);
  * expected acceptance at temperature 1: mean over positions of sum_x min(p_E(x), p_L(x))
    (the probability that the rejection rule accepts a token drafted from p_E when verifying with p_L).
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from corpus import load_corpus
from export import load_exported, read_json, read_safetensors
from llama2c import BOS, InputError, Tokenizer, load_checkpoint, mirror_paths

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
MODELS = ["layerskip", "baseline"]


def windows(val, seq, max_windows):
    """Non-overlapping held-out windows of seq+1 tokens (inputs + shifted targets)."""
    n = min((val.size - 1) // seq, max_windows or 1 << 30)
    return torch.from_numpy(np.stack([val[i * seq:i * seq + seq + 1] for i in range(n)]).astype(np.int64))


@torch.no_grad()
def evaluate(model, wins, batch):
    L = model.cfg.n_layers
    ce, agree, accept = torch.zeros(L, dtype=torch.float64), torch.zeros(L, dtype=torch.float64), torch.zeros(L, dtype=torch.float64)
    count = 0
    for b in range(0, wins.shape[0], batch):
        w = wins[b:b + batch]
        x, y = w[:, :-1], w[:, 1:].flatten()
        hidden = model(x, return_hidden=True)
        logp_final = F.log_softmax(model.exit_logits(hidden[-1]).flatten(0, 1), dim=-1)
        p_final, top_final = logp_final.exp(), logp_final.argmax(-1)
        for e in range(L):
            logp = F.log_softmax(model.exit_logits(hidden[e]).flatten(0, 1), dim=-1)
            ce[e] += F.nll_loss(logp, y, reduction="sum").item()
            agree[e] += (logp.argmax(-1) == top_final).sum().item()
            accept[e] += torch.minimum(logp.exp(), p_final).sum(-1).sum().item()
        count += y.numel()
    return {"ppl": [math.exp(c / count) for c in ce], "agree": (agree / count).tolist(),
            "accept_t1": (accept / count).tolist(), "tokens": count}


@torch.no_grad()
def greedy_text(model, tok, n, exit_layer=None):
    ids = [BOS]
    for _ in range(n):
        logits = model(torch.tensor([ids]), exit_layer=exit_layer)[0, -1]
        ids.append(int(logits.argmax()))
        if ids[-1] in (1, 2):
            break
    return tok.decode(ids)


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", required=True)
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--models", default=os.path.join(ROOT, "models"))
    ap.add_argument("--out", default=os.path.join(HERE, "REPORT.md"))
    ap.add_argument("--max-windows", type=int, default=0, help="limit held-out windows (0 = all)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    try:
        _, val, meta = load_corpus(a.work)
        ckpt_path, tok_path = mirror_paths(a.mirror)
        tok = Tokenizer(tok_path, meta["vocab_size"])
        res, info = {}, {}
        for m in MODELS:
            folder = os.path.join(a.models, f"stories-{m}")
            model = load_exported(folder)
            cfg = read_json(os.path.join(folder, "config.json"))
            st = os.path.join(folder, "model.safetensors")
            wins = windows(val, cfg["max_position_embeddings"], a.max_windows)
            t0 = time.time()
            res[m] = evaluate(model, wins, a.batch)
            info[m] = {"cfg": cfg, "sha256": sha256(st), "bytes": os.path.getsize(st),
                       "params": model.num_params(), "n_tensors": len(read_safetensors(st)[0]),
                       "sample": greedy_text(model, tok, 48),
                       "sample_exit": {e: greedy_text(model, tok, 48, e) for e in (2, model.cfg.n_layers // 2)}}
            print(f"{m}: {res[m]['tokens']} tokens in {time.time() - t0:.0f}s; ppl {[round(p, 2) for p in res[m]['ppl']]}; "
                  f"agree {[round(x, 3) for x in res[m]['agree']]}", flush=True)
        # the teacher (stories260K) on its own samples: the entropy floor of this data
        teacher = load_checkpoint(ckpt_path)
        res["stories260K"] = evaluate(teacher, windows(val, 256, a.max_windows), a.batch)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    Path(a.out).write_text(render(res, info, meta, a))
    print(f"wrote {a.out}")


def render(res, info, meta, a):
    ls, bl = res["layerskip"], res["baseline"]
    L = len(ls["ppl"])
    rows = "\n".join(
        f"| {e + 1} | {ls['ppl'][e]:.3f} | {ls['agree'][e]:.3f} | {ls['accept_t1'][e]:.3f} "
        f"| {bl['ppl'][e]:.3f} | {bl['agree'][e]:.3f} | {bl['accept_t1'][e]:.3f} |" for e in range(L))
    mid = L // 2 - 1
    d_final = (ls["ppl"][-1] / bl["ppl"][-1] - 1) * 100
    cmd = "/usr/bin/python3 models/recipes/layerskip/report.py --mirror ../shared/mirror" + (
        f" --max-windows {a.max_windows}" if a.max_windows else "")
    models = "\n".join(
        f"| stories-{m} | {info[m]['params']} | {info[m]['cfg']['num_hidden_layers']} | {info[m]['bytes']} | `{info[m]['sha256']}` |"
        for m in MODELS)
    samples = "\n".join(
        f"- **{m}**, full depth: {json.dumps(info[m]['sample'])}\n" + "\n".join(
            f"- **{m}**, exit after layer {e} (greedy, shallow only): {json.dumps(s)}" for e, s in info[m]["sample_exit"].items())
        for m in MODELS)
    return f"""# LayerSkip vs baseline: early-exit quality on held-out stories

Generated by `report.py` from the committed artifacts (`models/stories-layerskip/`, `models/stories-baseline/`,
loaded from their `model.safetensors` with the recipe's own reader). Reproduce with:
```
{cmd}
```
Held-out data: {res['layerskip']['tokens']} next-token predictions ({res['layerskip']['tokens'] // info['layerskip']['cfg']['max_position_embeddings']} windows of
{info['layerskip']['cfg']['max_position_embeddings']} tokens) from the {meta['val_stories']} held-out stories that stories260K sampled
(seed {meta['seed']}, temperature {meta['temperature']}); neither model trained on them.

| model | parameters | layers | model.safetensors bytes | sha256 |
|---|---|---|---|---|
{models}

## Per exit layer E (block E's output -> shared final norm -> LM head)

- **ppl**: held-out perplexity of the exit.
- **agree**: top-1 agreement of the exit with the final layer = expected acceptance rate of a drafted token in
  greedy self-speculative decoding (LayerSkip's draft-at-E, verify-with-all-layers).
- **acc T=1**: expected acceptance when sampling at temperature 1, mean over positions of sum_x min(p_E(x), p_L(x)).

| E | LayerSkip ppl | LayerSkip agree | LayerSkip acc T=1 | baseline ppl | baseline agree | baseline acc T=1 |
|---|---|---|---|---|---|---|
{rows}

Reference: the teacher stories260K on the same held-out text (its own samples) has perplexity
{res['stories260K']['ppl'][-1]:.3f} (this is roughly the entropy floor of the data).

## Summary (numbers computed above)
- Final layer (E={L}): LayerSkip ppl {ls['ppl'][-1]:.3f} vs baseline {bl['ppl'][-1]:.3f} ({d_final:+.1f}%).
- Middle exit (E={mid + 1}): agreement {ls['agree'][mid]:.3f} vs {bl['agree'][mid]:.3f}; acceptance at T=1 {ls['accept_t1'][mid]:.3f} vs {bl['accept_t1'][mid]:.3f}; ppl {ls['ppl'][mid]:.2f} vs {bl['ppl'][mid]:.2f}.
- First exit (E=1): agreement {ls['agree'][0]:.3f} vs {bl['agree'][0]:.3f}; ppl {ls['ppl'][0]:.2f} vs {bl['ppl'][0]:.2f}.
- Exit E={L - 1}: agreement {ls['agree'][L - 2]:.3f} vs {bl['agree'][L - 2]:.3f}.

## Greedy samples from BOS (48 tokens)
{samples}
"""


if __name__ == "__main__":
    main()
