"""Train a LayerSkip (or baseline) LLaMA on the stories260K self-distillation corpus.

    /usr/bin/python3 models/recipes/layerskip/train.py --mirror ../shared/mirror --variant layerskip
    /usr/bin/python3 models/recipes/layerskip/train.py --mirror ../shared/mirror --variant baseline

LayerSkip (Elhoushi et al. 2024, "LayerSkip: Enabling Early Exit Inference and Self-Speculative
Decoding") adds two things to plain next-token training; `--variant baseline` turns both off
and keeps everything else (model, data order, steps, optimizer) identical:
  1. layer dropout with a rate rising with depth, the paper's exponential scale
       p_l = p_max * (exp(l * ln2 / (L-1)) - 1),   l = 0..L-1   (0 for the first block, p_max for the last)
  2. an early-exit loss on every layer through the shared final norm + LM head,
       loss = sum_l  C(t,l) e(l) / sum_i C(t,i) e(i)  *  CE(head(norm(h_l)), y)
     with weights rising with depth (the paper's e(l) = e_scale * sum_{i<=l} i, shifted by one
     so that exit 1 is trained too: e(l) = e_scale * (l+1)(l+2)/2 and the last layer gets an
     extra L) and the *gradual* curriculum C(t,l): at t=0 only the last layer's loss is on;
     exits are switched on from the top down, one by one, until all are on at
     t = curriculum_frac * steps. See README.md for why this variant.

Data windows (seq_len+1 tokens) are drawn at random offsets seeded by (seed, step) and layer
dropout is seeded by (seed, step), so a resumed run (`--resume`) continues exactly as if it had
not stopped. Checkpoints go to <work>/<variant>/ckpt.pt every --ckpt-every seconds; when the
run ends the model is exported (HF llama format) to --out.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from corpus import corpus_dir, generate, load_corpus
from llama2c import InputError, mirror_paths, Tokenizer
from model import Config, Llama

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def layer_drop_probs(L, p_max):
    """The paper's exponential depth scale: 0 at the first block, p_max at the last."""
    return [p_max * (math.exp(l * math.log(2) / (L - 1)) - 1) for l in range(L)]


def exit_scales(L, e_scale):
    """Unnormalised early-exit weights e(l), rising with depth; the last layer gets an extra L."""
    e = [e_scale * (l + 1) * (l + 2) / 2 for l in range(L)]
    e[-1] += L
    return e


def curriculum(L, step, steps, kind, frac, rot_r):
    """Which exits carry a loss at this step (list of bools, index l = after block l+1)."""
    on = [False] * L
    on[-1] = True  # the final layer always trains
    if kind == "gradual":
        # exits switched on from the top down, one more every frac*steps/(L-1) steps
        n = L - 1 if frac <= 0 else min(L - 1, int(step / (frac * steps) * (L - 1)))
        for l in range(L - 1 - n, L - 1):
            on[l] = True
    elif kind == "rotational":
        for l in range(L - 1):
            on[l] = (l - step) % rot_r == 0
    elif kind == "all":
        on = [True] * L
    return on


def lr_at(step, a):
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    t = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


def get_batch(data, step, a):
    rng = np.random.default_rng([a.seed, step])
    ix = rng.integers(0, data.size - a.seq - 1, size=a.batch)
    w = torch.from_numpy(np.stack([data[i:i + a.seq + 1] for i in ix]).astype(np.int64))
    return w[:, :-1], w[:, 1:]


@torch.no_grad()
def evaluate(model, val, a):
    """Held-out CE per exit layer (1..L) on the first --eval-batches fixed windows."""
    model.eval()
    L = model.cfg.n_layers
    tot = torch.zeros(L)
    n = 0
    for b in range(a.eval_batches):
        starts = [(b * a.batch + i) * a.seq for i in range(a.batch)]
        if starts[-1] + a.seq + 1 > val.size:
            break
        w = torch.from_numpy(np.stack([val[s:s + a.seq + 1] for s in starts]).astype(np.int64))
        x, y = w[:, :-1], w[:, 1:]
        for l, h in enumerate(model(x, return_hidden=True)):
            tot[l] += F.cross_entropy(model.exit_logits(h).flatten(0, 1), y.flatten()).item()
        n += 1
    model.train()
    return (tot / max(n, 1)).tolist()


def save_ckpt(path, model, opt, step, a, history):
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                "args": vars(a), "config": model.cfg.to_dict(), "history": history}, tmp)
    os.replace(tmp, path)  # atomic: a kill during the save never leaves a broken checkpoint


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", required=True, help="folder holding stories260K/stories260K.bin and tok512.bin")
    ap.add_argument("--variant", choices=["layerskip", "baseline"], required=True)
    ap.add_argument("--work", default=os.path.join(HERE, "work"), help="git-ignored: corpus, checkpoints, logs")
    ap.add_argument("--out", default=None, help="export folder (default models/stories-<variant>)")
    ap.add_argument("--resume", action="store_true", help="continue from <work>/<variant>/ckpt.pt")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--threads", type=int, default=1)
    # model
    ap.add_argument("--dim", type=int, default=160)
    ap.add_argument("--hidden", type=int, default=432)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    # optimisation
    ap.add_argument("--steps", type=int, default=1600)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--max-epochs", type=float, default=4.0,
                    help="refuse to run if steps*batch*seq exceeds this many passes over the corpus")
    # LayerSkip
    ap.add_argument("--p-max", type=float, default=0.1, help="layer dropout rate of the last block")
    ap.add_argument("--e-scale", type=float, default=0.2, help="early-exit loss scale")
    ap.add_argument("--curriculum", choices=["gradual", "rotational", "all"], default="gradual")
    ap.add_argument("--curriculum-frac", type=float, default=0.5,
                    help="gradual: fraction of the run after which every exit is on")
    ap.add_argument("--rot-r", type=int, default=2, help="rotational: one exit in every R layers per step")
    # bookkeeping
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--eval-batches", type=int, default=16)
    ap.add_argument("--ckpt-every", type=float, default=180.0, help="seconds between checkpoints")
    ap.add_argument("--corpus-tokens", type=int, default=4_000_000, help="corpus size if it must be generated")
    ap.add_argument("--max-seconds", type=float, default=0, help="stop (with a checkpoint) after this long; 0 = no limit")
    ap.add_argument("--no-export", action="store_true")
    return ap.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    out = a.out or os.path.join(ROOT, "models", f"stories-{a.variant}")
    run_dir = os.path.join(a.work, a.variant)
    os.makedirs(run_dir, exist_ok=True)
    log_f = open(os.path.join(run_dir, "train.log"), "a")

    def log(msg):
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        log_f.write(line + "\n")
        log_f.flush()

    _, tok_path = mirror_paths(a.mirror)  # refuses a missing mirror before any work
    if not os.path.isfile(os.path.join(corpus_dir(a.work), "meta.json")):
        log(f"no corpus in {corpus_dir(a.work)}; generating {a.corpus_tokens} tokens from stories260K")
        generate(a.mirror, a.work, a.corpus_tokens, log=log)
    train, val, meta = load_corpus(a.work)
    tok = Tokenizer(tok_path, meta["vocab_size"])  # refuses a tokenizer of another vocab size
    cfg = Config(dim=a.dim, hidden_dim=a.hidden, n_layers=a.layers, n_heads=a.heads, n_kv_heads=a.kv_heads,
                 vocab_size=tok.vocab_size, max_seq_len=a.seq)
    if meta["vocab_size"] != cfg.vocab_size or int(train.max()) >= cfg.vocab_size:
        raise InputError(f"corpus vocab ({meta['vocab_size']}) does not match the tokenizer ({cfg.vocab_size})")
    need = a.steps * a.batch * a.seq
    if need > a.max_epochs * train.size:
        raise InputError(f"corpus too small: {a.steps} steps x {a.batch} x {a.seq} = {need} tokens is "
                         f"{need / train.size:.1f} passes over the {train.size}-token corpus (--max-epochs "
                         f"{a.max_epochs}); generate a bigger corpus (corpus.py --tokens) or train fewer steps")
    if val.size < a.batch * a.seq + 1:
        raise InputError(f"held-out split too small ({val.size} tokens) for one eval batch")

    torch.manual_seed(a.seed)  # same initial weights for both variants
    model = Llama(cfg)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.95))
    ckpt_path = os.path.join(run_dir, "ckpt.pt")
    step, history = 0, {"train": [], "eval": []}
    if a.resume and os.path.isfile(ckpt_path):
        ck = torch.load(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, history = ck["step"], ck["history"]
        log(f"resumed from {ckpt_path} at step {step}")
    elif a.resume:
        log(f"--resume given but no checkpoint at {ckpt_path}; starting from scratch")

    L = cfg.n_layers
    layerskip = a.variant == "layerskip"
    drop = layer_drop_probs(L, a.p_max) if layerskip else None
    escale = exit_scales(L, a.e_scale)
    log(f"variant {a.variant}: {model.num_params()} params, config {cfg.to_dict()}, corpus {train.size} train / "
        f"{val.size} held-out tokens, {a.steps} steps x {a.batch} x {a.seq} = {need / train.size:.2f} epochs")
    if layerskip:
        log(f"layer dropout p_l = {[round(p, 4) for p in drop]}; exit scales e(l) = {escale}; curriculum {a.curriculum}")

    t0, last_ckpt, tokens_seen = time.time(), time.time(), 0
    model.train()
    while step < a.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a)
        x, y = get_batch(train, step, a)
        torch.manual_seed(a.seed * 1_000_003 + step)  # layer-dropout draws, reproducible on resume
        if layerskip:
            hidden = model(x, drop_probs=drop, return_hidden=True)
            on = curriculum(L, step, a.steps, a.curriculum, a.curriculum_frac, a.rot_r)
            z = sum(e for e, o in zip(escale, on) if o)
            losses = {l: F.cross_entropy(model.exit_logits(hidden[l]).flatten(0, 1), y.flatten())
                      for l in range(L) if on[l]}
            loss = sum(escale[l] / z * ce for l, ce in losses.items())
            final = losses[L - 1]
        else:
            loss = final = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += x.numel()
        if step % a.log_every == 0 or step == a.steps:
            el = time.time() - t0
            rec = {"step": step, "loss": round(loss.item(), 4), "final_ce": round(final.item(), 4),
                   "lr": round(lr_at(step - 1, a), 6), "steps_per_s": round(tokens_seen / (a.batch * a.seq) / el, 3)}
            if layerskip:
                rec["exits_on"] = sum(on)
            history["train"].append(rec)
            log(json.dumps(rec))
        if step % a.eval_every == 0 or step == a.steps:
            ce = evaluate(model, val, a)
            history["eval"].append({"step": step, "val_ce_per_exit": [round(c, 4) for c in ce]})
            log(f"eval step {step}: held-out CE per exit 1..{L}: {[round(c, 3) for c in ce]}")
        if time.time() - last_ckpt > a.ckpt_every or step == a.steps:
            save_ckpt(ckpt_path, model, opt, step, a, history)
            last_ckpt = time.time()
        if a.max_seconds and time.time() - t0 > a.max_seconds:
            save_ckpt(ckpt_path, model, opt, step, a, history)
            log(f"stopping after {a.max_seconds}s at step {step} (checkpoint saved; --resume continues)")
            return
    if not a.no_export:
        import export  # imported late: training does not depend on the exporter
        export.export_checkpoint(ckpt_path, out, a.mirror, meta)
        log(f"exported to {out}")


if __name__ == "__main__":
    try:
        main()
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
