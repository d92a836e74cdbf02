"""The model card (README.md) of models/stories-sheared, from the recipe's checkpoints and evaluations."""


def _table(rows, keys):
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")
    return "\n".join(out)


def _reading(ev):
    """What the PyTorch table says, in words (the control rows are the point)."""
    if not ev:
        return ""
    p = {k: v["ppl"] for k, v in ev["models"].items()}
    need = ["cpt-pruned", "pruned", "cpt-flap-corpus", "cpt-flap-corpus-450", "cpt-dense"]
    if any(k not in p for k in need):
        return ""
    return (f"Reading: this model ({p['cpt-pruned']:.3f}) beats every on-device one-shot cut of the parent at its shape, "
            f"and the masks alone ({p['pruned']:.3f}) already beat the uniform one-shot cuts. But the one-shot FLAP cut "
            f"given the same 300 continued-pretraining steps is close behind ({p['cpt-flap-corpus']:.3f}), and given the "
            f"sheared model's total 450 weight updates it is better ({p['cpt-flap-corpus-450']:.3f}); the unpruned parent "
            f"given the same 300 steps reaches {p['cpt-dense']:.3f}. Most of the gain over the one-shot cut is the "
            f"training, not the learned masks, at this scale.")


def model_card(model, pruned, cpt, ev, wh=None):
    cfg = model.cfg
    pa, ca = pruned["args"], (cpt or {}).get("args", {})
    kept = pruned["kept"]
    stage1 = [{"step": r["step"], "CE": r["ce"], "E[kept KV]": r["E_kv"], "E[kept FFN]": r["E_ffn"],
               "target KV / FFN": f"{r['t_kv']} / {r['t_ffn']}", "mean λ1": r["lambda1_mean"]}
              for r in pruned["history"] if r["step"] % 50 == 0 or r["step"] == pa["steps"]]
    stage2 = [{"step": r["step"], "monitor CE": r["monitor_ce"]} for r in (cpt or {}).get("history", []) if "monitor_ce" in r]
    ev_rows = ""
    if ev:
        ev_rows = (f"Held-out perplexity in PyTorch (`shear.py evaluate --windows {ev['windows']}`: the first {ev['windows']} "
                   f"non-overlapping 256-token windows of the held-out split, {ev['predictions']} predictions):\n\n"
                   + _table([{"model": k, "params": v["params"], "ppl": f"{v['ppl']:.3f}"} for k, v in ev["models"].items()],
                            ["model", "params", "ppl"]))
    if wh:
        ev_rows += (f"\n\nThrough Whittle's engine (`npx tsx bench/sheared-report.ts --windows {wh['windows']}`, "
                    f"{wh['predictions']} predictions on the same windows; one-shot = Whittle's on-device width pruning "
                    f"of the parent, no retraining):\n\n"
                    + _table([{"model": r["model"], "params": r["params"], "ppl": f"{r['perplexity']:.3f}",
                               "vs dense": f"{(r['perplexity_ratio'] - 1) * 100:+.1f}%"} for r in wh["rows"]],
                             ["model", "params", "ppl", "vs dense"]))
    cpt_text = "(not run: this folder holds the masks-only stage)" if cpt is None else (
        f"`shear.py train --init pruned --steps {ca['steps']} --lr {ca['lr']}`: {ca['steps']} steps x {ca['batch']} x "
        f"{ca['seq']} tokens, AdamW (0.9, 0.95, weight decay {ca['weight_decay']}), lr {ca['lr']} with {ca['warmup']} "
        f"warm-up steps and cosine decay to {ca['min_lr_frac']}x, seed {ca['seed']}, plain next-token cross-entropy "
        f"on the final layer; {cpt['wall_s'] / 60:.0f} minutes on one (shared) CPU thread.")
    return f"""---
license: mit
library_name: whittle
tags: [llama, tinystories, sheared-llama, structured-pruning]
base_model: stories-layerskip
---
# stories-sheared

**stories-layerskip** (Whittle's 2.36M-parameter LLaMA, `models/stories-layerskip`) pruned to a smaller
shape with **Sheared LLaMA**'s targeted structured pruning (learned hard-concrete masks under a target-shape
constraint; Xia et al. 2023, arXiv:2310.06694) and a short continued pretraining, by the offline recipe
`models/recipes/sheared/` (PyTorch 1.13, CPU). {model.num_params()} parameters
({(1 - model.num_params() / 2357920) * 100:.1f}% fewer than the parent's 2357920).

| | parent | this model |
|---|---|---|
| layers | 8 | {cfg.n_layers} |
| hidden size | 160 | {cfg.dim} |
| heads / KV heads (head dim) | 8 / 4 (20) | {cfg.n_heads} / {cfg.n_kv_heads} ({cfg.head_dim}) |
| FFN (SwiGLU) | 432 | {cfg.hidden_dim} |
| vocab, context, RoPE, norm | 512, 256, theta 10000 rotate_half, RMSNorm 1e-5 | same |
| embeddings | tied | tied |

A plain Hugging Face `LlamaForCausalLM` folder: the shape is uniform (every block keeps the same numbers of
KV groups and FFN channels), so `config.json` says it with `num_attention_heads`, `num_key_value_heads`,
`intermediate_size` and an explicit `head_dim` (20; `hidden_size / num_attention_heads` would be wrong).
Whittle's HF importer loads it as any other llama. It is the shape Whittle's on-device width pruning reaches
with `pruneWidth({{ keep: {{ kvHeads: 3, ffn: 349 }} }})` or Wanda-sp at 20% of the parameters, which is
what it is compared with (`models/recipes/sheared/REPORT.md`).

Kept KV groups per block (indices 0-3 of the parent's): {kept['kv']}.

## How it was made
1. **Mask learning (Sheared LLaMA's pruning stage)**: `shear.py prune --steps {pa['steps']}`: one hard-concrete
   gate per KV group (the group's 2 query heads, its K and V head, and their O columns) and per FFN channel of
   every block, trained jointly with all weights for {pa['steps']} steps x {pa['batch']} x {pa['seq']} tokens
   (weights: AdamW lr {pa['lr']}; gates: Adam lr {pa['lr_mask']}, initial keep probability {pa['init_keep']}),
   with the paper's Lagrangian λ1 (E[kept] - t) + λ2 (E[kept] - t)² per block and unit kind, λ maximised
   (Adam lr {pa['lr_lambda']}), the target t annealed from the full shape to {pa['keep_kv']}/4 KV groups and
   {pa['keep_ffn']}/432 FFN channels over {pa['target_warmup']} steps. Then hard masks: the top {pa['keep_kv']}
   groups and top {pa['keep_ffn']} channels per block by log α, each kept unit's deterministic gate value
   folded into its O / down columns, the rest sliced away ({pruned['wall_s'] / 60:.0f} minutes).
2. **Continued pretraining**: {cpt_text}

Data: the LayerSkip recipe's self-distillation corpus (stories260K samples, `models/recipes/layerskip/corpus.py`;
training split only). Mask learning:

{_table(stage1, ["step", "CE", "E[kept KV]", "E[kept FFN]", "target KV / FFN", "mean λ1"])}

Continued pretraining, CE on 16 held-out windows kept apart from the evaluation's:

{_table(stage2, ["step", "monitor CE"]) if stage2 else "(none)"}

## Evaluation
{ev_rows}

{_reading(ev)}

Full comparison and reading: `models/recipes/sheared/REPORT.md`.
`golden-logits.json`: PyTorch logits on held-out text that Whittle's engine must match within 1e-4
(`workers/text/sheared-golden.test.ts`).

## Limits
The early exits of the parent were not trained further: continued pretraining uses the final layer's loss only,
so use this model at full depth. A few hundred steps of each stage on one CPU thread, not the paper's
billions of tokens.

## License
MIT, like its parent: trained on text generated by stories260K (MIT, Andrej Karpathy, llama2.c); the
tokenizer is converted from its MIT-licensed `tok512.bin`.
"""
