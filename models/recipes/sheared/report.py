"""Writes REPORT.md from the recipe's work folder: the PyTorch evaluation (shear.py evaluate), the
Whittle evaluation (bench/sheared-report.ts), the stage logs and checkpoints' run facts.

    /usr/bin/python3 models/recipes/sheared/report.py
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")


def need(path):
    if not os.path.isfile(path):
        sys.exit(f"report: {path} missing (see README.md for the stage that writes it)")
    with open(path) as f:
        return json.load(f)


def main():
    pt = need(os.path.join(WORK, "eval-pytorch.json"))
    wh = need(os.path.join(WORK, "eval-whittle.json"))
    pruned = torch.load(os.path.join(WORK, "pruned.pt"))
    cpts = {f[4:-3]: torch.load(os.path.join(WORK, f)) for f in sorted(os.listdir(WORK))
            if f.startswith("cpt-") and f.endswith(".pt")}
    dense_pt = pt["models"]["dense (stories-layerskip)"]["ppl"]
    wrow = {r["model"]: r for r in wh["rows"]}
    dense_wh = wrow["dense (stories-layerskip)"]["perplexity"]
    pa = pruned["args"]

    L = []
    L.append("# Sheared LLaMA recipe vs Whittle's on-device one-shot width pruning, same shape\n")
    L.append(f"Shape: every block keeps {pa['keep_kv']} of 4 KV groups (6 of 8 query heads) and {pa['keep_ffn']} of 432 "
             f"FFN channels; 1885600 of stories-layerskip's 2357920 parameters (20.0% removed). Held-out text: the first "
             f"windows of 257 tokens of the LayerSkip corpus' held-out split (stories neither the parent nor this recipe "
             f"trained on).\n")
    L.append("## Through Whittle's engine (onnxruntime-web WASM in Node, 1 thread)\n")
    L.append("```\nnpx tsx bench/sheared-report.ts --windows %d\n```\n" % wh["windows"])
    L.append(f"{wh['windows']} windows, {wh['predictions']} predictions, teacher-forced one token per step.\n")
    L.append("| model | params | held-out ppl | vs dense | kept per block |\n|---|---|---|---|---|")
    for r in wh["rows"]:
        L.append(f"| {r['model']} | {r['params']} | {r['perplexity']:.3f} | {(r['perplexity_ratio'] - 1) * 100:+.1f}% | {r.get('kept', '')} |")
    L.append("")
    L.append("- one-shot rows: `TextEngine.pruneWidth({ keep: { kvHeads: 3, ffn: 349 }, method })` on the dense parent "
             "(no retraining), calibrated on the built-in calibration text, or (`-corpus`) on the first 8192 tokens of "
             "the recipe's training split; FLAP with its bias compensation unless marked; `flap adaptive` = "
             "`pruneWidth({ ratio, method: 'flap' })` at the same parameter count with per-block widths.")
    L.append("- sheared rows: the recipe's exports loaded by Whittle's HF importer (plain config, head_dim 20).\n")
    L.append("## In PyTorch (the recipe's model code)\n")
    L.append("```\n/usr/bin/python3 models/recipes/sheared/shear.py evaluate --windows %d\n```\n" % pt["windows"])
    L.append(f"The same {pt['windows']} windows ({pt['predictions']} predictions), batched full-sequence forward.\n")
    L.append("| model | params | held-out ppl | vs dense |\n|---|---|---|---|")
    for k, v in pt["models"].items():
        L.append(f"| {k} | {v['params']} | {v['ppl']:.3f} | {(v['ppl'] / dense_pt - 1) * 100:+.1f}% |")
    L.append("")
    L.append(f"Dense parent both ways: {dense_pt:.4f} (PyTorch) vs {dense_wh:.4f} (Whittle), "
             f"{abs(dense_pt / dense_wh - 1) * 100:.3f}% apart. The PyTorch re-slices of Whittle's one-shot cuts "
             f"(kept units and FLAP biases from Whittle's calibration means, `oneshot_model`) against Whittle's own:")
    for k, v in pt["models"].items():
        if k.startswith("oneshot "):
            name = k[len("oneshot "):].replace(" (PyTorch re-slice)", "")
            w = wrow.get(f"one-shot {name}")
            if w:
                L.append(f"{name} {v['ppl']:.4f} vs {w['perplexity']:.4f};")
    L.append("\n## Runs\n")
    L.append(f"- stage 1 (masks): `shear.py prune --steps {pa['steps']} --target-warmup {pa['target_warmup']}`, "
             f"lr weights {pa['lr']}, gates {pa['lr_mask']}, λ {pa['lr_lambda']}; {pruned['wall_s'] / 60:.1f} min wall "
             f"(1 thread, nice 19, machine load well above its 2 cores). At the end the gates' expected kept fractions "
             f"were KV {sum(pruned['expected_kept_at_end']['kv']) / 8:.3f} (target {pa['keep_kv'] / 4:.3f}), FFN "
             f"{sum(pruned['expected_kept_at_end']['ffn']) / 8:.3f} (target {pa['keep_ffn'] / 432:.3f}) averaged over blocks; "
             f"monitor CE with hard masks {pruned['monitor_ce']['hard_masked']:.4f}, sliced {pruned['monitor_ce']['sliced']:.4f} "
             f"(equal: the slice is exact). Kept KV groups: {pruned['kept']['kv']}.")
    first = os.path.join(WORK, "prune-attempt1-lr0.05.log")
    if os.path.isfile(first):
        last = [l for l in open(first).read().splitlines() if l.strip()][-1]
        L.append("- a first stage-1 attempt with gate and λ learning rates 0.05 was stopped by hand at step 40 of 150: "
                 "the gates moved too slowly to reach the target within the run (log alpha moves at most about lr "
                 f"per Adam step); its last log line: `{last}`. The run above restarted from the parent.")
    for name, ck in cpts.items():
        a = ck["args"]
        L.append(f"- stage 2 from `{name}`: `shear.py train --init {a['init']} --steps {a['steps']} --lr {a['lr']}`, "
                 f"warm-up {a['warmup']}, cosine to {a['min_lr_frac']}x, seed {a['seed']}; {ck['wall_s'] / 60:.1f} min wall. "
                 f"Monitor CE (last 16 held-out windows) " + " → ".join(
                     f"{h['monitor_ce']:.3f}@{h['step']}" for h in ck["history"] if "monitor_ce" in h) + ".")
    L.append("")
    with open(os.path.join(HERE, "REPORT.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print(f"wrote {os.path.join(HERE, 'REPORT.md')}")


if __name__ == "__main__":
    main()
