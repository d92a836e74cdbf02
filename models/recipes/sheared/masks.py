"""Hard-concrete (L0) structured masks over stories-layerskip's prunable units, the target-shape
constraint, and the slice that turns hard masks into a smaller dense model.

Units (Whittle's width plans can express exactly these: models/llama/types.ts `WidthPlan`):
  * KV groups: under GQA a KV head and the n_heads / n_kv_heads query heads that read it go
    together. One mask per (block, KV group) scales the group's query heads' outputs at the input
    of o_proj, so a zero mask removes q rows, k/v rows and o_proj columns of the whole group.
  * FFN channels: one mask per (block, intermediate channel) scales the input of down_proj, so a
    zero removes a gate row, an up row and a down column.
Masks act through forward pre-hooks on o_proj / down_proj, so the recipe's decoder (layerskip's
model.py) is used unchanged.

Hard concrete (Louizos et al. 2018, as in CoFi and Sheared LLaMA): with u ~ U(0, 1),
  s = sigmoid((log u - log(1 - u) + log_alpha) / beta),  z = clamp(s (zeta - gamma) + gamma, 0, 1)
so z is exactly 0 or 1 with non-zero probability and differentiable in log_alpha in between;
P(z > 0) = sigmoid(log_alpha - beta log(-gamma / zeta)) is the expected L0 "kept" indicator.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from model import Config, Llama

BETA, GAMMA, ZETA = 2.0 / 3.0, -0.1, 1.1
EPS = 1e-6


class HardConcrete(nn.Module):
    """A tensor of hard-concrete gates, one per unit."""

    def __init__(self, shape, init_keep=0.95, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        # CoFi's init: log_alpha = logit(1 - droprate) plus a little noise so ties break.
        base = math.log(init_keep) - math.log(1 - init_keep)
        self.log_alpha = nn.Parameter(base + 0.01 * torch.randn(shape, generator=g))

    def sample(self):
        u = torch.rand_like(self.log_alpha).clamp(EPS, 1 - EPS)
        s = torch.sigmoid((torch.log(u) - torch.log(1 - u) + self.log_alpha) / BETA)
        return (s * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)

    def deterministic(self):
        """The noise-free gate value (u = 0.5): what a kept unit is scaled by once masks are hard."""
        return (torch.sigmoid(self.log_alpha) * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)

    def prob_kept(self):
        """P(z > 0) per unit: the expected L0 norm's summands."""
        return torch.sigmoid(self.log_alpha - BETA * math.log(-GAMMA / ZETA))


class ShapeMasks(nn.Module):
    """Masks over every block's KV groups and FFN channels, installed as pre-hooks on `model`.

    `mode`: 'sample' (training: a fresh hard-concrete draw per forward step, set by `resample()`),
    'hard' (the top-k units per block by log_alpha, scaled by their deterministic gate; the rest 0),
    'off' (no masking).
    """

    def __init__(self, model: Llama, keep_kv, keep_ffn, init_keep=0.95, seed=0):
        super().__init__()
        cfg = model.cfg
        if not (1 <= keep_kv <= cfg.n_kv_heads):
            raise ValueError(f"keep_kv must be in 1..{cfg.n_kv_heads}, got {keep_kv}")
        if not (1 <= keep_ffn <= cfg.hidden_dim):
            raise ValueError(f"keep_ffn must be in 1..{cfg.hidden_dim}, got {keep_ffn}")
        self.cfg, self.keep_kv, self.keep_ffn = cfg, keep_kv, keep_ffn
        self.kv = HardConcrete((cfg.n_layers, cfg.n_kv_heads), init_keep, seed)
        self.ffn = HardConcrete((cfg.n_layers, cfg.hidden_dim), init_keep, seed + 1)
        self.mode = "off"
        self._z_kv = self._z_ffn = None
        # channels of the o_proj input that one KV group owns: its rep query heads x head_dim
        self._kv_width = (cfg.n_heads // cfg.n_kv_heads) * cfg.head_dim
        self._hooks = []
        for l, blk in enumerate(model.layers):
            self._hooks.append(blk.self_attn.o_proj.register_forward_pre_hook(self._attn_hook(l)))
            self._hooks.append(blk.mlp.down_proj.register_forward_pre_hook(self._ffn_hook(l)))

    def _attn_hook(self, l):
        def hook(_mod, inp):
            if self.mode == "off":
                return None
            # query head h belongs to KV group h // rep, and o_proj's input is heads in order,
            # so each group's mask covers a contiguous run of rep*head_dim channels
            return (inp[0] * self._z_kv[l].repeat_interleave(self._kv_width),)
        return hook

    def _ffn_hook(self, l):
        def hook(_mod, inp):
            if self.mode == "off":
                return None
            return (inp[0] * self._z_ffn[l],)
        return hook

    def resample(self):
        self.mode = "sample"
        self._z_kv, self._z_ffn = self.kv.sample(), self.ffn.sample()

    def kept(self):
        """Per block, the ascending indices of the top keep_kv groups and top keep_ffn channels
        by log_alpha (the hard shape: exactly the target in every block)."""
        kv = [sorted(torch.topk(self.kv.log_alpha[l], self.keep_kv).indices.tolist()) for l in range(self.cfg.n_layers)]
        ffn = [sorted(torch.topk(self.ffn.log_alpha[l], self.keep_ffn).indices.tolist()) for l in range(self.cfg.n_layers)]
        return kv, ffn

    @torch.no_grad()
    def hard_values(self):
        """(z_kv, z_ffn) with the kept units at their deterministic gate value and the rest at 0."""
        kv_idx, ffn_idx = self.kept()
        z_kv, z_ffn = torch.zeros_like(self.kv.log_alpha), torch.zeros_like(self.ffn.log_alpha)
        det_kv, det_ffn = self.kv.deterministic(), self.ffn.deterministic()
        for l in range(self.cfg.n_layers):
            z_kv[l, kv_idx[l]] = det_kv[l, kv_idx[l]]
            z_ffn[l, ffn_idx[l]] = det_ffn[l, ffn_idx[l]]
        return z_kv, z_ffn

    def set_hard(self):
        self.mode = "hard"
        self._z_kv, self._z_ffn = self.hard_values()

    def expected_fractions(self):
        """Expected kept fraction per block: (KV groups (L,), FFN channels (L,))."""
        return self.kv.prob_kept().mean(-1), self.ffn.prob_kept().mean(-1)

    def targets(self):
        return self.keep_kv / self.cfg.n_kv_heads, self.keep_ffn / self.cfg.hidden_dim

    def remove(self):
        for h in self._hooks:
            h.remove()
        self._hooks = []


class Lagrangian(nn.Module):
    """Sheared LLaMA's constraint: for each constrained quantity s with target t,
    lambda1 (E[s] - t) + lambda2 (E[s] - t)^2, minimised over the masks and maximised over the
    lambdas (the trainer flips their gradient). Here one pair per block and unit kind (KV groups,
    FFN channels), on kept fractions, so every block is pushed to the same (uniform) shape."""

    def __init__(self, n_layers):
        super().__init__()
        self.l1 = nn.Parameter(torch.zeros(2, n_layers))
        self.l2 = nn.Parameter(torch.zeros(2, n_layers))

    def forward(self, masks: ShapeMasks, t_kv=None, t_ffn=None):
        """(the term, the gaps E[kept fraction] - target (2, L)); targets default to the final shape
        (the trainer passes annealed ones during its warm-up)."""
        e_kv, e_ffn = masks.expected_fractions()
        if t_kv is None:
            t_kv, t_ffn = masks.targets()
        gap = torch.stack([e_kv - t_kv, e_ffn - t_ffn])  # (2, L)
        return (self.l1 * gap + self.l2 * gap.pow(2)).sum(), gap.detach()


@torch.no_grad()
def slice_model(model: Llama, kv_keep, ffn_keep, z_kv=None, z_ffn=None, o_bias=None, down_bias=None):
    """A new, smaller model.Llama holding only the kept units of `model`.

    kv_keep / ffn_keep: per block, ascending kept KV-group / FFN-channel indices; every block must
    keep the same counts (a uniform shape is a plain HF llama config). z_kv (L, n_kv) / z_ffn
    (L, hidden), if given, are folded into the kept o_proj / down_proj columns, so the slice equals
    the masked model with those (hard) masks. o_bias / down_bias (L, dim), if given, become output
    biases of o_proj / down_proj (FLAP's compensation, for the one-shot control).
    """
    cfg = model.cfg
    L = cfg.n_layers
    if len(kv_keep) != L or len(ffn_keep) != L:
        raise ValueError(f"kv_keep and ffn_keep need one entry per block ({L})")
    n_kv, n_ffn = {len(k) for k in kv_keep}, {len(k) for k in ffn_keep}
    if len(n_kv) != 1 or len(n_ffn) != 1:
        raise ValueError(f"slice_model needs the same kept counts in every block (got KV {sorted(n_kv)}, FFN {sorted(n_ffn)})")
    for name, keep, n in (("KV group", kv_keep, cfg.n_kv_heads), ("FFN channel", ffn_keep, cfg.hidden_dim)):
        for l, k in enumerate(keep):
            if sorted(set(k)) != list(k) or not all(0 <= i < n for i in k):
                raise ValueError(f"block {l}: {name} indices must be ascending, distinct and in 0..{n - 1}: {k}")
    rep, hd = cfg.n_heads // cfg.n_kv_heads, cfg.head_dim
    kv_n, ffn_n = n_kv.pop(), n_ffn.pop()
    small_cfg = WidthConfig(**{**cfg.to_dict(), "n_heads": kv_n * rep, "n_kv_heads": kv_n, "hidden_dim": ffn_n,
                               "head_size": hd})
    small = Llama(small_cfg)
    small.embed_tokens.weight.copy_(model.embed_tokens.weight)
    small.norm.weight.copy_(model.norm.weight)
    if not cfg.tie_embeddings:
        small.lm_head.weight.copy_(model.lm_head.weight)
    for l in range(L):
        src, dst = model.layers[l], small.layers[l]
        dst.input_layernorm.weight.copy_(src.input_layernorm.weight)
        dst.post_attention_layernorm.weight.copy_(src.post_attention_layernorm.weight)
        heads = [g * rep + r for g in kv_keep[l] for r in range(rep)]
        q_rows = torch.tensor([h * hd + i for h in heads for i in range(hd)])
        kv_rows = torch.tensor([g * hd + i for g in kv_keep[l] for i in range(hd)])
        a, b = src.self_attn, dst.self_attn
        b.q_proj.weight.copy_(a.q_proj.weight[q_rows])
        b.k_proj.weight.copy_(a.k_proj.weight[kv_rows])
        b.v_proj.weight.copy_(a.v_proj.weight[kv_rows])
        wo = a.o_proj.weight[:, q_rows]
        if z_kv is not None:
            wo = wo * z_kv[l][kv_keep[l]].repeat_interleave(rep * hd)
        b.o_proj.weight.copy_(wo)
        ch = torch.tensor(ffn_keep[l])
        m, n = src.mlp, dst.mlp
        n.gate_proj.weight.copy_(m.gate_proj.weight[ch])
        n.up_proj.weight.copy_(m.up_proj.weight[ch])
        wd = m.down_proj.weight[:, ch]
        if z_ffn is not None:
            wd = wd * z_ffn[l][ch]
        n.down_proj.weight.copy_(wd)
        if o_bias is not None:
            b.o_proj = with_bias(b.o_proj, o_bias[l])
        if down_bias is not None:
            n.down_proj = with_bias(n.down_proj, down_bias[l])
    return small


def with_bias(linear, bias):
    out = nn.Linear(linear.in_features, linear.out_features, bias=True)
    with torch.no_grad():
        out.weight.copy_(linear.weight)
        out.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return out


@dataclass
class WidthConfig(Config):
    """model.Config with an explicit head size: a sliced model keeps head_dim 20 while n_heads
    shrinks, so head_dim is no longer dim // n_heads (HF's config.json says it with `head_dim`)."""
    head_size: int = 20

    @property
    def head_dim(self):
        return self.head_size

