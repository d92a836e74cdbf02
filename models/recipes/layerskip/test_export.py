"""Correctness checks for the recipe; run with Debian's python:

    /usr/bin/python3 models/recipes/layerskip/test_export.py [--mirror ../shared/mirror]

1. safetensors export: a fresh model re-loaded from the written file gives exactly the same logits
   (and the committed models, when their training checkpoints are in the work folder, match them).
2. the stories260K port reproduces llama2.c's known greedy output.
3. tokenizer.json (converted from tok512.bin) encodes like llama2.c run.c's SentencePiece-BPE
   (our Tokenizer.encode) and decodes back to the input; done with an independent implementation
   of HF tokenizers' BPE semantics (normalizer, byte fallback, rank-ordered merges, decoder chain).
4. bad input is refused with exit code 2 and a clear message: missing mirror, a corpus too small
   for the requested steps, a tokenizer whose vocab size does not match.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
MIRROR = os.environ.get("WHITTLE_MIRROR", os.path.abspath(os.path.join(ROOT, "..", "shared", "mirror")))
if "--mirror" in sys.argv:  # parsed before unittest sees argv
    _i = sys.argv.index("--mirror")
    MIRROR = os.path.abspath(sys.argv[_i + 1])
    del sys.argv[_i:_i + 2]

import export  # noqa: E402
from llama2c import BOS, EOS, InputError, Tokenizer, load_verified, mirror_paths  # noqa: E402
from model import Config, Llama  # noqa: E402

STRINGS = ["Once upon a time, there was a little girl named Lily.",
           "She said, \"I'm sorry, mom.\"\nThe end.",
           "  two  spaces and a tab\there",
           "café 😊 naïve",  # characters outside the 512 vocab -> byte fallback
           "x", ""]


def hf_bpe_encode(tj, text):
    """HF tokenizers semantics for the Llama tokenizer.json: normalize, split into chars,
    byte-fallback unknown chars, then apply merges lowest rank first (leftmost on ties)."""
    model = tj["model"]
    vocab = model["vocab"]
    ranks = {tuple(m.split(" ")) if isinstance(m, str) else tuple(m): r for r, m in enumerate(model["merges"])}
    assert [n["type"] for n in tj["normalizer"]["normalizers"]] == ["Prepend", "Replace"]
    norm = ("\u2581" + text).replace(" ", "\u2581") if text else ""
    syms = []
    for ch in norm:
        if ch in vocab:
            syms.append(ch)
        else:
            assert model["byte_fallback"]
            syms += [f"<0x{b:02X}>" for b in ch.encode("utf-8")]
    while True:
        best = None
        for i in range(len(syms) - 1):
            r = ranks.get((syms[i], syms[i + 1]))
            if r is not None and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            break
        i = best[1]
        syms[i:i + 2] = [syms[i] + syms[i + 1]]
    return [vocab[s] for s in syms]


def hf_decode(tj, ids):
    """The decoder chain Replace('▁',' ') + ByteFallback + Fuse + Strip(left 1), skipping specials."""
    inv = {i: p for p, i in tj["model"]["vocab"].items()}
    special = {t["id"] for t in tj["added_tokens"]}
    out, pending = [], b""
    for i in ids:
        if i in special:
            continue
        p = inv[i].replace("\u2581", " ")
        if len(p) == 6 and p.startswith("<0x") and p.endswith(">"):
            pending += bytes([int(p[3:5], 16)])
            continue
        if pending:
            out.append(pending.decode("utf-8", errors="replace"))
            pending = b""
        out.append(p)
    if pending:
        out.append(pending.decode("utf-8", errors="replace"))
    s = "".join(out)
    return s[1:] if s.startswith(" ") else s


def run_recipe(*args):
    p = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stderr


class ExportTest(unittest.TestCase):
    def test_safetensors_roundtrip_random_model(self):
        for tied in (True, False):
            torch.manual_seed(0)
            cfg = Config(dim=48, hidden_dim=96, n_layers=3, n_heads=6, n_kv_heads=3, vocab_size=512,
                         max_seq_len=32, tie_embeddings=tied)
            m = Llama(cfg).eval()
            with torch.no_grad():  # norms are all ones at init; make them matter
                for n, p in m.named_parameters():
                    if p.dim() == 1:
                        p.uniform_(0.5, 1.5)
            with tempfile.TemporaryDirectory() as d:
                export.write_safetensors(os.path.join(d, "model.safetensors"), export.hf_tensors(m))
                export.write_json(os.path.join(d, "config.json"), export.hf_config(cfg))
                raw = Path(d, "model.safetensors").read_bytes()
                n = struct.unpack("<Q", raw[:8])[0]
                self.assertEqual(n % 8, 0)
                self.assertEqual(("lm_head.weight" in json.loads(raw[8:8 + n])), not tied)
                m2 = export.load_exported(d)
            x = torch.randint(0, 512, (2, 20))
            self.assertEqual((m(x) - m2(x)).abs().max().item(), 0.0)
            self.assertEqual((m(x, exit_layer=1) - m2(x, exit_layer=1)).abs().max().item(), 0.0)

    def test_committed_models_match_checkpoints(self):
        checked = 0
        for v in ("layerskip", "baseline"):
            folder = os.path.join(ROOT, "models", f"stories-{v}")
            ckpt = os.path.join(HERE, "work", v, "ckpt.pt")
            if not (os.path.isdir(folder) and os.path.isfile(ckpt)):
                continue
            ck = torch.load(ckpt)
            m = Llama(Config(**ck["config"])).eval()
            m.load_state_dict(ck["model"])
            m2 = export.load_exported(folder)
            x = torch.randint(0, 512, (2, 64), generator=torch.Generator().manual_seed(1))
            with torch.no_grad():
                self.assertEqual((m(x) - m2(x)).abs().max().item(), 0.0, v)
            cfg = export.read_json(os.path.join(folder, "config.json"))
            self.assertEqual(cfg["architectures"], ["LlamaForCausalLM"])
            checked += 1
        if not checked:
            self.skipTest("no trained checkpoints in the work folder")


@unittest.skipUnless(os.path.isdir(MIRROR), f"mirror not found at {MIRROR}")
class MirrorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model, cls.tok = load_verified(MIRROR)  # raises unless the greedy output matches
        cls.tj = export.tokenizer_json(cls.tok)

    def test_port_greedy(self):
        self.assertEqual(self.tok.decode([403, 407, 261, 378]), "Once upon a time")

    def test_tokenizer_json_matches_runc_encode(self):
        for s in STRINGS:
            want = self.tok.encode(s, bos=False)
            self.assertEqual(hf_bpe_encode(self.tj, s), want, s)
            self.assertEqual(hf_decode(self.tj, [BOS] + want), s, s)
            self.assertEqual(self.tok.decode([BOS] + want), s, s)

    def test_committed_tokenizer_json_is_the_conversion(self):
        for v in ("layerskip", "baseline"):
            p = os.path.join(ROOT, "models", f"stories-{v}", "tokenizer.json")
            if os.path.isfile(p):
                self.assertEqual(export.read_json(p), json.loads(json.dumps(self.tj)))

    def test_tokenizer_shape(self):
        m = self.tj["model"]
        self.assertEqual((m["type"], m["byte_fallback"], len(m["vocab"])), ("BPE", True, 512))
        self.assertEqual([t["content"] for t in self.tj["added_tokens"]], ["<unk>", "<s>", "</s>"])
        self.assertEqual(m["vocab"]["<0x0A>"], 13)

    def test_refuses_missing_mirror(self):
        rc, err = run_recipe(os.path.join(HERE, "train.py"), "--mirror", "/nonexistent/mirror", "--variant", "baseline")
        self.assertEqual(rc, 2, err)
        self.assertIn("stories260K checkpoint not found", err)

    def test_refuses_small_corpus(self):
        with tempfile.TemporaryDirectory() as work:
            os.makedirs(os.path.join(work, "corpus"))
            np.random.randint(3, 512, 5000).astype("<u2").tofile(os.path.join(work, "corpus", "train.bin"))
            np.random.randint(3, 512, 5000).astype("<u2").tofile(os.path.join(work, "corpus", "val.bin"))
            with open(os.path.join(work, "corpus", "meta.json"), "w") as f:
                json.dump({"vocab_size": 512}, f)
            rc, err = run_recipe(os.path.join(HERE, "train.py"), "--mirror", MIRROR, "--variant", "baseline",
                                 "--work", work, "--steps", "1000", "--no-export")
        self.assertEqual(rc, 2, err)
        self.assertIn("corpus too small", err)

    def test_refuses_incompatible_tokenizer(self):
        ckpt, tok = mirror_paths(MIRROR)
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "stories260K"))
            os.symlink(ckpt, os.path.join(d, "stories260K", "stories260K.bin"))
            # a valid llama2.c tokenizer file with only 256 tokens
            with open(os.path.join(d, "stories260K", "tok512.bin"), "wb") as f:
                f.write(struct.pack("<i", 4))
                for i in range(256):
                    piece = f"t{i}".encode()
                    f.write(struct.pack("<fi", -float(i), len(piece)) + piece)
            with self.assertRaises(InputError) as e:
                Tokenizer(os.path.join(d, "stories260K", "tok512.bin"), 512)
            self.assertIn("not compatible", str(e.exception))
            rc, err = run_recipe(os.path.join(HERE, "corpus.py"), "--mirror", d, "--work", os.path.join(d, "work"))
        self.assertEqual(rc, 2, err)
        self.assertIn("not compatible", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
