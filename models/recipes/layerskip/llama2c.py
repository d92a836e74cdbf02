"""llama2.c checkpoint + tokenizer readers, and the port of stories260K to model.Llama.

The legacy llama2.c checkpoint (run.c, "version 0") is a header of 7 int32
    dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
(a negative vocab_size means the classifier is NOT shared with the embedding), then fp32
weights in run.c order, each stacked over layers:
    token_embedding (vocab, dim)
    rms_att (L, dim), wq (L, dim, dim), wk (L, kv_dim, dim), wv (L, kv_dim, dim), wo (L, dim, dim)
    rms_ffn (L, dim), w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim)
    rms_final (dim,), freq_cis_real (seq, hd/2), freq_cis_imag (seq, hd/2), [wcls (vocab, dim)]

llama2.c's RoPE rotates adjacent pairs (2i, 2i+1) of a head; model.Llama uses HF's
rotate_half (i, i + hd/2). The two are the same function up to a fixed permutation of the
rows of wq and wk inside each head, which is what HF's convert_llama_weights_to_hf.py applies.
"""
import os
from pathlib import Path
import struct
import sys

import numpy as np
import torch

from model import Config, Llama

BOS, EOS = 1, 2
# Known greedy (temperature 0) continuation of BOS for stories260K, from the mirror's SOURCES.md.
STORIES260K_GREEDY = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298,
                      315, 421, 395, 317, 426, 338, 401, 396, 267, 337]


class InputError(Exception):
    """Bad input from the user (missing files, wrong formats): reported cleanly, exit code 2."""


def require_file(path, what):
    if not os.path.isfile(path):
        raise InputError(f"{what} not found: {path} (pass --mirror pointing at the shared mirror "
                         f"folder that holds stories260K/stories260K.bin and stories260K/tok512.bin)")
    return path


def mirror_paths(mirror):
    ckpt = require_file(os.path.join(mirror, "stories260K", "stories260K.bin"), "stories260K checkpoint")
    tok = require_file(os.path.join(mirror, "stories260K", "tok512.bin"), "stories260K tokenizer")
    return ckpt, tok


def _permute_rope(w, n_heads):
    """(n_heads*hd, dim) rows in llama2.c pair order -> HF rotate_half order (per head)."""
    out, dim = w.shape
    hd = out // n_heads
    return w.view(n_heads, hd // 2, 2, dim).transpose(1, 2).reshape(out, dim)


def load_checkpoint(path):
    """Read a legacy llama2.c checkpoint into a model.Llama (HF RoPE convention)."""
    data = Path(path).read_bytes()
    if len(data) < 28:
        raise InputError(f"{path}: too short to be a llama2.c checkpoint")
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("<7i", data[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    if min(dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len) <= 0 or dim % n_heads:
        raise InputError(f"{path}: implausible llama2.c header {dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len}")
    hd = dim // n_heads
    kv_dim = n_kv * hd
    floats = np.frombuffer(data, dtype="<f4", offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        if pos + n > floats.size:
            raise InputError(f"{path}: truncated checkpoint (needs more weights than the file holds)")
        t = torch.from_numpy(floats[pos:pos + n].copy()).view(*shape)
        pos += n
        return t

    emb = take(vocab, dim)
    rms_att = take(n_layers, dim)
    wq = take(n_layers, dim, dim)
    wk = take(n_layers, kv_dim, dim)
    wv = take(n_layers, kv_dim, dim)
    wo = take(n_layers, dim, dim)
    rms_ffn = take(n_layers, dim)
    w1 = take(n_layers, hidden, dim)
    w2 = take(n_layers, dim, hidden)
    w3 = take(n_layers, hidden, dim)
    rms_final = take(dim)
    take(seq_len, hd // 2)  # freq_cis_real: recomputed by model.rope_tables
    take(seq_len, hd // 2)  # freq_cis_imag
    wcls = emb if shared else take(vocab, dim)

    cfg = Config(dim=dim, hidden_dim=hidden, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv,
                 vocab_size=vocab, max_seq_len=seq_len, tie_embeddings=shared)
    m = Llama(cfg)
    with torch.no_grad():
        m.embed_tokens.weight.copy_(emb)
        for i, blk in enumerate(m.layers):
            blk.input_layernorm.weight.copy_(rms_att[i])
            blk.self_attn.q_proj.weight.copy_(_permute_rope(wq[i], n_heads))
            blk.self_attn.k_proj.weight.copy_(_permute_rope(wk[i], n_kv))
            blk.self_attn.v_proj.weight.copy_(wv[i])
            blk.self_attn.o_proj.weight.copy_(wo[i])
            blk.post_attention_layernorm.weight.copy_(rms_ffn[i])
            blk.mlp.gate_proj.weight.copy_(w1[i])
            blk.mlp.down_proj.weight.copy_(w2[i])
            blk.mlp.up_proj.weight.copy_(w3[i])
        m.norm.weight.copy_(rms_final)
        if not shared:
            m.lm_head.weight.copy_(wcls)
    return m.eval()


class Tokenizer:
    """llama2.c tokenizer.bin: int32 max_token_length, then per token float32 score, int32 len, bytes.

    Pieces are stored with SentencePiece's '▁' already replaced by ' '; BOS/EOS are stored as
    '\\n<s>\\n' / '\\n</s>\\n' and bytes as '<0xXX>' (see llama2.c tokenizer.py export).
    """

    def __init__(self, path, vocab_size):
        data = Path(path).read_bytes()
        self.max_token_length = struct.unpack_from("<i", data, 0)[0]
        off = 4
        self.pieces, self.scores = [], []
        try:
            while off < len(data):
                score, n = struct.unpack_from("<fi", data, off)
                off += 8
                if n < 0 or off + n > len(data):
                    raise struct.error("bad length")
                self.pieces.append(data[off:off + n].decode("utf-8"))
                self.scores.append(score)
                off += n
        except (struct.error, UnicodeDecodeError):
            raise InputError(f"{path}: not a llama2.c tokenizer file (corrupt entry {len(self.pieces)})")
        if len(self.pieces) != vocab_size:
            raise InputError(f"{path}: tokenizer has {len(self.pieces)} tokens but the model's vocab_size "
                             f"is {vocab_size}; they are not compatible")
        self.lookup = {p: i for i, p in enumerate(self.pieces)}

    @property
    def vocab_size(self):
        return len(self.pieces)

    def encode(self, text, bos=True, eos=False):
        """SentencePiece-BPE encoding exactly as llama2.c run.c `encode` does it."""
        ids = []
        if text:
            ids.append(self.lookup[" "])  # the dummy prefix SentencePiece adds (add_dummy_prefix)
        for ch in text:
            if ch in self.lookup:
                ids.append(self.lookup[ch])
            else:
                # byte fallback: the first 3 ids are <unk>, <s>, </s>; byte b is id b + 3
                ids.extend(b + 3 for b in ch.encode("utf-8"))
        # merge the pair whose merged piece has the best score, leftmost first, until none is left
        # (run.c also scans the BOS token, but '\n<s>\n' never merges, so it is left out here)
        while True:
            best, best_i, best_id = -1e10, -1, -1
            for i in range(len(ids) - 1):
                j = self.lookup.get(self.pieces[ids[i]] + self.pieces[ids[i + 1]])
                if j is not None and self.scores[j] > best:
                    best, best_i, best_id = self.scores[j], i, j
            if best_i < 0:
                break
            ids[best_i:best_i + 2] = [best_id]
        if bos:
            ids.insert(0, BOS)
        if eos:
            ids.append(EOS)
        return ids

    def decode_piece(self, prev, tok):
        """Bytes for token `tok` following `prev`, as run.c's decode does."""
        piece = self.pieces[tok]
        if prev == BOS and piece.startswith(" "):
            piece = piece[1:]  # strip the dummy-prefix space after BOS
        if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            return bytes([int(piece[3:5], 16)])
        return piece.encode("utf-8")

    def decode(self, ids):
        out, prev = b"", BOS
        for t in ids:
            if t in (BOS, EOS):
                prev = t
                continue
            out += self.decode_piece(prev, t)
            prev = t
        return out.decode("utf-8", errors="replace")


@torch.no_grad()
def greedy(model, n):
    """Greedy decoding from BOS with the KV cache, n tokens."""
    cache = model.new_cache(1)
    tok = torch.tensor([[BOS]])
    out = []
    for pos in range(n):
        logits = model(tok, start_pos=pos, cache=cache)
        nxt = int(logits[0, -1].argmax())
        out.append(nxt)
        tok = torch.tensor([[nxt]])
    return out


def load_verified(mirror):
    """Load stories260K + tok512 from the mirror and check the port against the known greedy output."""
    ckpt, tok_path = mirror_paths(mirror)
    model = load_checkpoint(ckpt)
    tok = Tokenizer(tok_path, model.cfg.vocab_size)
    got = greedy(model, len(STORIES260K_GREEDY))
    if got != STORIES260K_GREEDY:
        raise RuntimeError(f"stories260K port does not reproduce llama2.c's greedy output:\n got {got}\n want {STORIES260K_GREEDY}")
    return model, tok


if __name__ == "__main__":
    torch.set_num_threads(1)
    mirror = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/mirror"
    model, tok = load_verified(mirror)
    print("port verified:", tok.decode(STORIES260K_GREEDY))
    print("params:", model.num_params())
