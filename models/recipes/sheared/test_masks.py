"""Checks of the mask -> hard shape -> slice step; run with Debian's python (no data needed):

    /usr/bin/python3 models/recipes/sheared/test_masks.py

1. On a random small GQA model with learned-looking (random) log_alphas, the sliced model's logits
   equal the masked model's with hard masks (top-k per block, kept units scaled by their
   deterministic gate), and its shape is exactly the target in every block.
2. The same with FLAP-style output biases: slice + bias == masked model + the same bias.
3. The expected-size constraint moves log_alpha the right way, and bad shapes are refused.
4. A sliced model round-trips through the HF export (config with head_dim, safetensors).
"""
import os
import sys
import tempfile
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "layerskip"))

from masks import Lagrangian, ShapeMasks, slice_model  # noqa: E402
from model import Config, Llama  # noqa: E402
import shear  # noqa: E402


def small_model(seed=0):
    torch.manual_seed(seed)
    cfg = Config(dim=48, hidden_dim=40, n_layers=3, n_heads=6, n_kv_heads=3, vocab_size=64, max_seq_len=32)
    m = Llama(cfg)
    with torch.no_grad():  # bigger weights than the init, so a wrong slice cannot hide in rounding
        for p in m.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return m.eval()


class SliceTest(unittest.TestCase):
    def test_slice_equals_hard_masks(self):
        m = small_model()
        masks = ShapeMasks(m, keep_kv=2, keep_ffn=25, seed=3)
        with torch.no_grad():
            masks.kv.log_alpha.copy_(torch.randn_like(masks.kv.log_alpha) * 2)
            masks.ffn.log_alpha.copy_(torch.randn_like(masks.ffn.log_alpha) * 2)
        x = torch.randint(0, 64, (2, 17))
        masks.set_hard()
        with torch.no_grad():
            want = m(x)
            z_kv, z_ffn = masks.hard_values()
            kv, ffn = masks.kept()
            small = slice_model(m, kv, ffn, z_kv, z_ffn).eval()
            got = small(x)
        self.assertEqual((small.cfg.n_kv_heads, small.cfg.n_heads, small.cfg.hidden_dim), (2, 4, 25))
        self.assertEqual(small.cfg.head_dim, 8)
        self.assertTrue(all(len(k) == 2 for k in kv) and all(len(f) == 25 for f in ffn))
        self.assertLess((got - want).abs().max().item(), 1e-5)
        # and the masks really matter: the unmasked model differs
        masks.mode = "off"
        with torch.no_grad():
            self.assertGreater((m(x) - want).abs().max().item(), 1e-2)

    def test_slice_with_bias(self):
        m = small_model(1)
        kv = [[0, 2], [1, 2], [0, 1]]
        ffn = [sorted(torch.randperm(40)[:30].tolist()) for _ in range(3)]
        ob, db = torch.randn(3, 48), torch.randn(3, 48)
        small = slice_model(m, kv, ffn, o_bias=ob, down_bias=db).eval()
        # reference: zero the removed units by hand and add the biases through hooks
        masks = ShapeMasks(m, keep_kv=2, keep_ffn=30)
        z_kv, z_ffn = torch.zeros(3, 3), torch.zeros(3, 40)
        for l in range(3):
            z_kv[l, kv[l]] = 1
            z_ffn[l, ffn[l]] = 1
        masks.mode, masks._z_kv, masks._z_ffn = "hard", z_kv, z_ffn
        hooks = []
        for l, blk in enumerate(m.layers):
            hooks.append(blk.self_attn.o_proj.register_forward_hook(lambda _m, _i, out, l=l: out + ob[l]))
            hooks.append(blk.mlp.down_proj.register_forward_hook(lambda _m, _i, out, l=l: out + db[l]))
        x = torch.randint(0, 64, (1, 20))
        with torch.no_grad():
            self.assertLess((small(x) - m(x)).abs().max().item(), 1e-5)

    def test_constraint_pushes_towards_target(self):
        m = small_model()
        masks = ShapeMasks(m, keep_kv=1, keep_ffn=10)
        lag = Lagrangian(3)
        with torch.no_grad():
            lag.l1.fill_(1.0)
        before = [e.mean().item() for e in masks.expected_fractions()]
        loss, gap = lag(masks)
        loss.backward()
        with torch.no_grad():
            masks.kv.log_alpha -= 1.0 * masks.kv.log_alpha.grad
            masks.ffn.log_alpha -= 1.0 * masks.ffn.log_alpha.grad
        after = [e.mean().item() for e in masks.expected_fractions()]
        self.assertTrue((gap > 0).all())  # init keeps ~all, target is smaller
        self.assertLess(after[0], before[0])
        self.assertLess(after[1], before[1])

    def test_refusals(self):
        m = small_model()
        with self.assertRaises(ValueError):
            ShapeMasks(m, keep_kv=4, keep_ffn=10)  # only 3 KV groups
        with self.assertRaises(ValueError):
            ShapeMasks(m, keep_kv=1, keep_ffn=0)
        with self.assertRaisesRegex(ValueError, "same kept counts"):
            slice_model(m, [[0], [0, 1], [2]], [[0]] * 3)
        with self.assertRaisesRegex(ValueError, "ascending"):
            slice_model(m, [[1, 0]] * 3, [[0]] * 3)
        with self.assertRaisesRegex(ValueError, "ascending"):
            slice_model(m, [[0, 3]] * 3, [[0]] * 3)

    def test_export_round_trip(self):
        m = small_model(2)
        small = slice_model(m, [[0, 2]] * 3, [list(range(0, 40, 2))] * 3).eval()
        with tempfile.TemporaryDirectory() as d:
            shear.write_hf_folder(small, d)
            back = shear.load_sliced(d)
        x = torch.randint(0, 64, (1, 12))
        with torch.no_grad():
            self.assertTrue(torch.equal(small(x), back(x)))
        self.assertEqual(back.cfg.head_dim, 8)


if __name__ == "__main__":
    unittest.main()
