"""Export a trained checkpoint as a Hugging Face llama model folder, and read it back.

    /usr/bin/python3 models/recipes/layerskip/export.py --mirror ../shared/mirror --variant layerskip
(train.py calls this itself when a run ends; run it by hand to re-export a checkpoint.)

Writes config.json, generation_config.json, model.safetensors (our own writer, fp32),
tokenizer.json + tokenizer_config.json (converted from llama2.c's tok512.bin) and README.md.

safetensors: 8-byte little-endian header length N, then N bytes of JSON
    {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}
(offsets relative to the end of the header, padded with spaces to a multiple of 8), then the raw
little-endian tensor bytes. Tensor names are HF LlamaForCausalLM's; model.Llama already uses HF's
rotate_half RoPE, so no permutation is needed.
"""
import argparse
import json
import os
from pathlib import Path
import struct
import sys

import numpy as np
import torch

from llama2c import BOS, EOS, InputError, Tokenizer, mirror_paths
from model import Config, Llama

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path, obj, **kw):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, **kw)


# ---------------------------------------------------------------------------- safetensors

_DTYPES = {"F32": "<f4", "F16": "<f2", "I32": "<i4", "I64": "<i8"}


def write_safetensors(path, tensors, metadata=None):
    """tensors: ordered {name: torch.Tensor}; written fp32 in the given order."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4"))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)  # keep the data 8-byte aligned
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


def read_safetensors(path):
    """-> ({name: torch.Tensor}, metadata). Validates the header against the file size."""
    data = Path(path).read_bytes()
    if len(data) < 8:
        raise InputError(f"{path}: too short for a safetensors file")
    n = struct.unpack("<Q", data[:8])[0]
    if 8 + n > len(data):
        raise InputError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    body = memoryview(data)[8 + n:]
    out = {}
    for name, info in header.items():
        if info["dtype"] not in _DTYPES:
            raise InputError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        b, e = info["data_offsets"]
        dt = np.dtype(_DTYPES[info["dtype"]])
        if not (0 <= b <= e <= len(body)) or (e - b) != dt.itemsize * int(np.prod(info["shape"])):
            raise InputError(f"{path}: tensor {name} has bad data_offsets {info['data_offsets']}")
        arr = np.frombuffer(body[b:e], dtype=dt).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("=")).copy())
    return out, meta


# ---------------------------------------------------------------------------- HF llama folder

def hf_tensors(model):
    """HF LlamaForCausalLM names -> weights (lm_head only when untied)."""
    sd = model.state_dict()
    names = ["model.embed_tokens.weight"]
    for i in range(model.cfg.n_layers):
        p = f"model.layers.{i}."
        names += [p + "input_layernorm.weight"]
        names += [p + f"self_attn.{x}_proj.weight" for x in "qkvo"]
        names += [p + "post_attention_layernorm.weight"]
        names += [p + f"mlp.{x}_proj.weight" for x in ("gate", "up", "down")]
    names.append("model.norm.weight")
    if not model.cfg.tie_embeddings:
        names.append("lm_head.weight")
    # model.Llama's own names are the HF ones without the "model." prefix
    return {n: sd[n[len("model."):] if n.startswith("model.") else n] for n in names}


def hf_config(cfg: Config, extra=None):
    c = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": cfg.dim,
        "intermediate_size": cfg.hidden_dim,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim,
        "vocab_size": cfg.vocab_size,
        "max_position_embeddings": cfg.max_seq_len,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": None,
        "rms_norm_eps": cfg.norm_eps,
        "tie_word_embeddings": cfg.tie_embeddings,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "torch_dtype": "float32",
        "use_cache": True,
    }
    if extra:
        c.update(extra)
    return c


def config_from_hf(c):
    return Config(dim=c["hidden_size"], hidden_dim=c["intermediate_size"], n_layers=c["num_hidden_layers"],
                  n_heads=c["num_attention_heads"], n_kv_heads=c["num_key_value_heads"],
                  vocab_size=c["vocab_size"], max_seq_len=c["max_position_embeddings"],
                  rope_theta=c["rope_theta"], norm_eps=c["rms_norm_eps"],
                  tie_embeddings=c["tie_word_embeddings"])


def load_exported(folder):
    """Rebuild a model.Llama from an exported folder (config.json + model.safetensors)."""
    for f in ("config.json", "model.safetensors"):
        if not os.path.isfile(os.path.join(folder, f)):
            raise InputError(f"{folder}: missing {f}")
    cfg = config_from_hf(read_json(os.path.join(folder, "config.json")))
    tensors, _ = read_safetensors(os.path.join(folder, "model.safetensors"))
    model = Llama(cfg)
    want = hf_tensors(model)
    if set(want) != set(tensors):
        raise InputError(f"{folder}: tensor names differ from a {cfg.n_layers}-layer llama: "
                         f"missing {sorted(set(want) - set(tensors))[:3]}, extra {sorted(set(tensors) - set(want))[:3]}")
    with torch.no_grad():
        for name, dst in want.items():
            if tuple(tensors[name].shape) != tuple(dst.shape):
                raise InputError(f"{folder}: {name} has shape {tuple(tensors[name].shape)}, expected {tuple(dst.shape)}")
            dst.copy_(tensors[name])  # state_dict tensors share storage with the parameters
    return model.eval()


# ---------------------------------------------------------------------------- tokenizer.json

def hf_pieces(tok: Tokenizer):
    """llama2.c pieces -> SentencePiece pieces: ' ' back to '▁', BOS/EOS back to <s> / </s>."""
    pieces = []
    for i, p in enumerate(tok.pieces):
        if i == 0:
            pieces.append("<unk>")
        elif i == BOS:
            pieces.append("<s>")
        elif i == EOS:
            pieces.append("</s>")
        else:
            pieces.append(p.replace(" ", "\u2581"))
    if len(set(pieces)) != len(pieces):
        raise InputError("tokenizer has duplicate pieces; cannot build a BPE vocab")
    return pieces


def is_special_or_byte(i, piece):
    return i < 3 or (len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"))


def bpe_merges(pieces, scores):
    """Merges as transformers' SentencePieceExtractor derives them from a BPE model:
    every split of every piece into two pieces of the vocab, ordered by the merged piece's
    score (best first; Python's stable sort keeps ties in vocab order, then (id_l, id_r))."""
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = []
    for i, merge in enumerate(pieces):
        if is_special_or_byte(i, merge):
            continue
        local = [(merge[:k], merge[k:], scores[i]) for k in range(1, len(merge))
                 if merge[:k] in vocab and merge[k:] in vocab]
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: m[2], reverse=True)
    return [f"{l} {r}" for l, r, _ in merges]


def tokenizer_json(tok: Tokenizer):
    """A Llama-2-shaped tokenizer.json (same normalizer/decoder/post-processor as Llama-2's)."""
    pieces = hf_pieces(tok)
    special = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": special,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [BOS], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "vocab": {p: i for i, p in enumerate(pieces)},
                  "merges": bpe_merges(pieces, tok.scores)},
    }


def tokenizer_config(max_len):
    return {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
            "add_bos_token": True, "add_eos_token": False, "model_max_length": max_len,
            "clean_up_tokenization_spaces": False, "legacy": True}


# ---------------------------------------------------------------------------- model card

def model_card(variant, ck, meta, n_params):
    a, cfg, hist = ck["args"], ck["config"], ck["history"]
    L = cfg["n_layers"]
    other = "baseline" if variant == "layerskip" else "layerskip"
    cmd = (f"/usr/bin/python3 models/recipes/layerskip/train.py --mirror ../shared/mirror --variant {variant} "
           f"--steps {a['steps']} --eval-every {a['eval_every']}")
    rows = "\n".join(
        f"| {e['step']} | " + " | ".join(f"{c:.3f}" for c in e["val_ce_per_exit"]) + " |" for e in hist["eval"])
    train_rows = "\n".join(f"| {r['step']} | {r['final_ce']:.3f} | {r['loss']:.3f} | {r['lr']:.2e} |"
                           for r in hist["train"] if r["step"] % 200 == 0 or r["step"] == a["steps"])
    if variant == "layerskip":
        method = f"""LayerSkip training (Elhoushi et al. 2024, arXiv:2404.16710), as in `models/recipes/layerskip/train.py`:
- **Layer dropout** rising with depth on the paper's exponential scale, p_l = p_max * (exp(l ln2 / (L-1)) - 1),
  p_max = {a['p_max']} (0 for block 1, {a['p_max']} for block {L}); applied per sample, no rescaling.
- **Early-exit loss** at every layer through the shared final RMSNorm + LM head, weights
  e(l) = e_scale (l+1)(l+2)/2 (+ L for the last layer), e_scale = {a['e_scale']}, normalised over the exits that are on.
- **Curriculum: {a['curriculum']}** — only the final layer's loss at step 0; exits are switched on from the top
  down until all {L} are on at {a['curriculum_frac']:.0%} of the run, then stay on.
  Why gradual, not rotational: this is a small model trained from scratch for few steps; gradual lets the
  deep layers learn the task before the shallow exits pull on them, and then trains every exit on every
  step for the second half (rotational would train each early exit on only 1/R of the steps)."""
    else:
        method = f"""Plain next-token cross-entropy on the final layer: no layer dropout, no early-exit loss.
This is the control for `stories-{other}`: same architecture, initial weights (seed {a['seed']}), data order,
steps and optimiser."""
    return f"""---
license: mit
library_name: whittle
tags: [llama, tinystories, {'layerskip, early-exit' if variant == 'layerskip' else 'baseline'}]
---
# stories-{variant}

A {n_params / 1e6:.2f}M-parameter LLaMA-architecture model (HF `LlamaForCausalLM` layout) trained for Whittle's
{'LayerSkip early exit and self-speculative decoding' if variant == 'layerskip' else 'LayerSkip comparison (the baseline)'}.

| | |
|---|---|
| layers | {L} |
| hidden size | {cfg['dim']} |
| FFN (SwiGLU) | {cfg['hidden_dim']} |
| heads / KV heads | {cfg['n_heads']} / {cfg['n_kv_heads']} (GQA), head dim {cfg['dim'] // cfg['n_heads']} |
| vocab | {cfg['vocab_size']} (llama2.c `tok512`, SentencePiece BPE, byte fallback) |
| context | {cfg['max_seq_len']} |
| RoPE | theta {cfg['rope_theta']:.0f}, HF rotate_half convention |
| RMSNorm eps | {cfg['norm_eps']} |
| embeddings | {'tied' if cfg['tie_embeddings'] else 'untied'} |
| weights | fp32 `model.safetensors` |

## Training method
{method}

## Data
Self-distillation from karpathy's **stories260K** (llama2.c, MIT): {meta['train_stories']} stories
({meta['train_tokens']} tokens) sampled from stories260K at temperature {meta['temperature']}, each starting
at BOS and stopped at BOS/EOS or {meta['max_len']} tokens, seed {meta['seed']} (`corpus.py`); a further
{meta['val_stories']} stories ({meta['val_tokens']} tokens) are the held-out split. Training windows are
{cfg['max_seq_len']} tokens drawn at random offsets of the token stream.

## Training
```
{cmd}
```
{a['steps']} steps x batch {a['batch']} x {a['seq']} tokens ({a['steps'] * a['batch'] * a['seq'] / meta['train_tokens']:.2f} epochs),
AdamW (betas 0.9/0.95, weight decay {a['weight_decay']}), lr {a['lr']} with {a['warmup']} warmup steps and cosine decay
to {a['min_lr_frac']} x, gradient clipping 1.0, seed {a['seed']}, 1 CPU thread (Debian python3-torch 1.13).

Training loss (final layer CE; `loss` is the weighted objective actually optimised):

| step | final-layer CE | objective | lr |
|---|---|---|---|
{train_rows}

Held-out cross-entropy (nats/token) when exiting after layer E through the shared norm + head
({a['eval_batches']} x {a['batch']} windows of {a['seq']} tokens):

| step | {' | '.join(f'E={e}' for e in range(1, L + 1))} |
|---|{'---|' * L}
{rows}

Full evaluation (perplexity, early-exit agreement, self-speculation acceptance): `models/recipes/layerskip/REPORT.md`.

## License
MIT. These weights are trained on text generated by stories260K (MIT, Andrej Karpathy, llama2.c),
and the tokenizer is converted from its MIT-licensed `tok512.bin`; see the llama2.c license.
"""


def export_checkpoint(ckpt_path, out, mirror, meta):
    ck = torch.load(ckpt_path)
    cfg = Config(**ck["config"])
    model = Llama(cfg)
    model.load_state_dict(ck["model"])
    _, tok_path = mirror_paths(mirror)
    tok = Tokenizer(tok_path, cfg.vocab_size)
    variant = ck["args"]["variant"]
    a = ck["args"]
    os.makedirs(out, exist_ok=True)
    training = {"variant": variant, "steps": ck["step"]}
    if variant == "layerskip":
        training.update({"layer_dropout_p_max": a["p_max"], "layer_dropout_scale": "exp",
                         "early_exit_e_scale": a["e_scale"], "curriculum": a["curriculum"],
                         "curriculum_frac": a["curriculum_frac"]})
    write_json(os.path.join(out, "config.json"), hf_config(cfg, {"whittle_training": training}), indent=2)
    write_json(os.path.join(out, "generation_config.json"), {
        "bos_token_id": BOS, "eos_token_id": EOS, "max_length": cfg.max_seq_len, "do_sample": True,
        "temperature": 1.0}, indent=2)
    write_safetensors(os.path.join(out, "model.safetensors"), hf_tensors(model), {"format": "pt"})
    write_json(os.path.join(out, "tokenizer.json"), tokenizer_json(tok), ensure_ascii=False, indent=1)
    write_json(os.path.join(out, "tokenizer_config.json"), tokenizer_config(cfg.max_seq_len), indent=2)
    Path(out, "README.md").write_text(model_card(variant, ck, meta, model.num_params()), encoding="utf-8")
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", required=True)
    ap.add_argument("--variant", choices=["layerskip", "baseline"], required=True)
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    from corpus import load_corpus
    try:
        _, _, meta = load_corpus(a.work)
        ckpt = os.path.join(a.work, a.variant, "ckpt.pt")
        if not os.path.isfile(ckpt):
            raise InputError(f"no checkpoint at {ckpt}: train first")
        out = a.out or os.path.join(ROOT, "models", f"stories-{a.variant}")
        export_checkpoint(ckpt, out, a.mirror, meta)
        print(f"exported {ckpt} -> {out}")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
