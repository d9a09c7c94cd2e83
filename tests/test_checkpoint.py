"""Loading Hugging Face GPT-2 folders, against Hugging Face transformers itself."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from model_helpers import random_tensors
from inference import load_model
from inference.checkpoint import CheckpointError, expected_shapes, load_checkpoint, save_checkpoint
from inference.reference.model import GPT2Config

GOLDEN = Path(__file__).parent / "data" / "golden_tiny_gpt2.npz"
GOLDEN_CONFIG = GPT2Config(n_layer=2, n_head=4, n_embd=64, n_ctx=32, vocab_size=4096)
# float32 both ways, but a different order of operations (fused kernels,
# another matmul blocking): logits of size ~1-10 agree to ~1e-6 relative;
# 1e-4 leaves room for other BLAS builds while catching any real mistake
# (a wrong eps, GELU form or mask moves logits by 1e-2 or more).
RTOL = ATOL = 1e-4


@pytest.fixture(scope="module")
def golden_dir(tmp_path_factory, shipped_tokenizer):
    path = tmp_path_factory.mktemp("golden") / "gpt2-golden"
    save_checkpoint(path, GOLDEN_CONFIG, random_tensors(GOLDEN_CONFIG, seed=5, scale=0.1), shipped_tokenizer)
    return path


def golden_ids():
    return np.random.default_rng(9).integers(0, GOLDEN_CONFIG.vocab_size, size=GOLDEN_CONFIG.n_ctx)


def test_matches_hugging_face_transformers(golden_dir):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    hf = transformers.GPT2LMHeadModel.from_pretrained(golden_dir).eval()
    ids = golden_ids()
    with torch.no_grad():
        want = hf(torch.tensor(ids)[None]).logits[0].numpy()
    got = load_model(golden_dir).forward(ids)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    if os.environ.get("UPDATE_GOLDEN"):
        np.savez_compressed(GOLDEN, ids=ids, logits=want)


def test_matches_the_golden_logits_from_transformers(golden_dir):
    golden = np.load(GOLDEN)
    assert (golden["ids"] == golden_ids()).all()
    np.testing.assert_allclose(load_model(golden_dir).forward(golden["ids"]), golden["logits"], rtol=RTOL, atol=ATOL)


def test_keys_with_and_without_prefix_and_a_tied_lm_head(tmp_path, shipped_tokenizer):
    from safetensors.numpy import save_file
    tensors = random_tensors(GOLDEN_CONFIG, seed=1)
    save_checkpoint(tmp_path / "a", GOLDEN_CONFIG, tensors, shipped_tokenizer)
    save_checkpoint(tmp_path / "b", GOLDEN_CONFIG, tensors, shipped_tokenizer)
    save_file({**tensors, "lm_head.weight": tensors["wte.weight"]}, str(tmp_path / "b" / "model.safetensors"))
    ids = [1, 2, 3, 4]
    np.testing.assert_array_equal(load_model(tmp_path / "a").forward(ids), load_model(tmp_path / "b").forward(ids))


def break_weights(path, name, value):
    from safetensors.numpy import load_file, save_file
    tensors = load_file(str(path / "model.safetensors"))
    if value is None:
        del tensors[name]
    else:
        tensors[name] = value
    save_file(tensors, str(path / "model.safetensors"))


@pytest.mark.parametrize("damage, message", [
    (lambda p: (p / "config.json").unlink(), r"model config not found: .*config\.json"),
    (lambda p: (p / "config.json").write_text("{"), r"config\.json is not valid JSON"),
    (lambda p: (p / "config.json").write_text('{"n_layer": 2}'), "config.json is missing n_head"),
    (lambda p: (p / "model.safetensors").unlink(), r"model weights not found: .*model\.safetensors"),
    (lambda p: (p / "model.safetensors").write_bytes(b"garbage!"), "not a readable safetensors file"),
    (lambda p: break_weights(p, "transformer.h.1.mlp.c_fc.bias", None),
     r"model\.safetensors: missing tensor 'h\.1\.mlp\.c_fc\.bias' \(expected shape \[256\]\)"),
    (lambda p: break_weights(p, "transformer.h.0.attn.c_attn.weight", np.zeros((192, 64), np.float32)),
     r"'h\.0\.attn\.c_attn\.weight' has shape \[192, 64\], config\.json implies \[64, 192\]"),
    (lambda p: break_weights(p, "lm_head.weight", np.ones((4096, 64), np.float32)), "only a tied LM head"),
    (lambda p: (p / "vocab.json").unlink(), r"tokenizer file not found: .*vocab\.json"),
])
def test_broken_folders_name_the_file_key_and_shapes(tmp_path, shipped_tokenizer, damage, message):
    save_checkpoint(tmp_path, GOLDEN_CONFIG, random_tensors(GOLDEN_CONFIG), shipped_tokenizer)
    damage(tmp_path)
    with pytest.raises(ValueError, match=message):
        load_model(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="model folder not found"):
        load_checkpoint(tmp_path / "nope")


def test_float16_weights_are_read_as_float32(tmp_path, shipped_tokenizer):
    tensors = {k: v.astype(np.float16) for k, v in random_tensors(GOLDEN_CONFIG).items()}
    save_checkpoint(tmp_path, GOLDEN_CONFIG, {}, shipped_tokenizer)
    from safetensors.numpy import save_file
    save_file(tensors, str(tmp_path / "model.safetensors"))
    config, params = load_checkpoint(tmp_path)
    assert params["blocks"][0]["attn"]["c_attn"]["w"].dtype == np.float32
    assert json.loads((tmp_path / "config.json").read_text())["n_positions"] == 32
    assert len(expected_shapes(config)) == 4 + 12 * config.n_layer
