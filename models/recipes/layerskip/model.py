"""A small LLaMA-architecture decoder (RMSNorm, RoPE, GQA, SwiGLU) in plain PyTorch 1.13.

The parameter names and the RoPE convention follow Hugging Face's LlamaForCausalLM
(rotate_half: dimension i of a head is paired with i + head_dim/2), so the weights can
be written out as a standard HF llama safetensors file without any permutation.

Extras for LayerSkip:
  * `forward(..., return_hidden=True)` returns the residual stream after every block, so a
    training loop can put an early-exit loss on each layer through the *shared* final
    norm + LM head (`exit_logits`).
  * `forward(..., drop_probs=[p_0, ..., p_{L-1}])` applies layer dropout (stochastic depth):
    each sample in the batch skips block l with probability p_l.
  * `forward(..., exit_layer=E)` runs only the first E blocks (an early exit), as Whittle's
    self-speculative drafts do.
A preallocated KV cache (`new_cache`) makes batched sampling cheap (used by corpus.py).
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    dim: int = 160
    hidden_dim: int = 432
    n_layers: int = 8
    n_heads: int = 8
    n_kv_heads: int = 4
    vocab_size: int = 512
    max_seq_len: int = 256
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True

    @property
    def head_dim(self):
        return self.dim // self.n_heads

    def to_dict(self):
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))  # (dim,)

    def forward(self, x):
        # normalise in fp32 like llama2.c / HF, then scale
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(cfg: Config):
    """cos/sin tables, each (max_seq_len, head_dim), HF layout (the half-table repeated twice)."""
    hd = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))  # (hd/2,)
    t = torch.arange(cfg.max_seq_len, dtype=torch.float64)
    freqs = torch.outer(t, inv_freq)  # (T, hd/2)
    emb = torch.cat([freqs, freqs], dim=-1)  # (T, hd)
    return emb.cos().float(), emb.sin().float()


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x, cos, sin):
    # x: (B, heads, T, hd); cos/sin: (T, hd)
    return x * cos + rotate_half(x) * sin


class Attention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.n_heads, self.n_kv, self.hd = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.dim, cfg.n_heads * self.hd, bias=False)  # (n_heads*hd, dim)
        self.k_proj = nn.Linear(cfg.dim, cfg.n_kv_heads * self.hd, bias=False)  # (n_kv*hd, dim)
        self.v_proj = nn.Linear(cfg.dim, cfg.n_kv_heads * self.hd, bias=False)  # (n_kv*hd, dim)
        self.o_proj = nn.Linear(cfg.n_heads * self.hd, cfg.dim, bias=False)  # (dim, n_heads*hd)

    def forward(self, x, cos, sin, cache=None, start_pos=0):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            ck, cv = cache  # each (B, n_kv, max_T, hd)
            ck[:, :, start_pos:start_pos + T] = k
            cv[:, :, start_pos:start_pos + T] = v
            k, v = ck[:, :, :start_pos + T], cv[:, :, :start_pos + T]
        # GQA: kv head j serves query heads j*rep .. (j+1)*rep-1 (same as HF repeat_kv and llama2.c).
        # Fold those query heads into the time axis instead of copying k/v rep times.
        rep = self.n_heads // self.n_kv
        S = k.shape[2]
        qg = q.reshape(B, self.n_kv, rep * T, self.hd)
        att = (qg @ k.transpose(-2, -1)) / math.sqrt(self.hd)  # (B, n_kv, rep*T, S)
        if T > 1:
            # query i (absolute position start_pos+i) may see keys 0..start_pos+i
            mask = torch.ones(T, S, dtype=torch.bool).tril(diagonal=start_pos)
            att = att.view(B, self.n_kv, rep, T, S).masked_fill(~mask, float("-inf"))
            att = att.view(B, self.n_kv, rep * T, S)
        y = (F.softmax(att, dim=-1) @ v).view(B, self.n_heads, T, self.hd)  # (B, H, T, hd)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)  # w1 (hidden, dim)
        self.up_proj = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)  # w3 (hidden, dim)
        self.down_proj = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)  # w2 (dim, hidden)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, cache=None, start_pos=0):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, cache, start_pos)
        return h + self.mlp(self.post_attention_layernorm(h))


class Llama(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.dim)  # (vocab, dim)
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)  # (vocab, dim)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        cos, sin = rope_tables(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)
        # GPT-2 style: scale the residual output projections down with depth
        for name, p in self.named_parameters():
            if name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())  # tied weights are counted once

    def exit_logits(self, h):
        """The shared exit: final RMSNorm + LM head, usable on any layer's hidden state."""
        return self.lm_head(self.norm(h))

    def new_cache(self, batch):
        c = self.cfg
        shape = (batch, c.n_kv_heads, c.max_seq_len, c.head_dim)
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in range(c.n_layers)]

    def forward(self, tokens, start_pos=0, cache=None, exit_layer=None, drop_probs=None,
                return_hidden=False):
        """tokens (B, T) -> logits (B, T, vocab) after `exit_layer` blocks (default: all).

        return_hidden=True returns the list of hidden states after each block instead.
        """
        B, T = tokens.shape
        assert start_pos + T <= self.cfg.max_seq_len, "sequence longer than max_seq_len"
        cos = self.rope_cos[start_pos:start_pos + T]
        sin = self.rope_sin[start_pos:start_pos + T]
        h = self.embed_tokens(tokens)
        n = self.cfg.n_layers if exit_layer is None else exit_layer
        hidden = []
        for i in range(n):
            layer = self.layers[i]
            out = layer(h, cos, sin, None if cache is None else cache[i], start_pos)
            if drop_probs is not None and drop_probs[i] > 0:
                # layer dropout: per sample, keep the block with prob 1-p, else pass h through
                keep = (torch.rand(B, 1, 1) >= drop_probs[i]).to(h.dtype)
                out = h + keep * (out - h)
            h = out
            hidden.append(h)
        if return_hidden:
            return hidden
        return self.exit_logits(h)
