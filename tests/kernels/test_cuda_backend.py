"""End to end: the CUDA backend against the NumPy backend, through load_model,
the generation loop and the same coins. On a GPU this uses the shipped
model; under the simulator a tiny random model (every thread is Python)."""

from pathlib import Path

import numpy as np
import pytest

from inference import load_model
from inference.generation import Settings, generate_tokens
from parity import SIMULATOR, assert_close, sizes

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "claude-rust-small"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    if not SIMULATOR:
        return SHIPPED
    from model_helpers import random_tensors
    from inference.checkpoint import save_checkpoint
    from inference.reference.model import GPT2Config
    from inference.tokenizer import count_pieces, train_bpe

    tokenizer = train_bpe(count_pieces(["fn main() { let x = 1; println!(\"{x}\"); }\n"] * 20), n_merges=30)
    config = GPT2Config(n_layer=2, n_head=2, n_embd=16, n_ctx=24, vocab_size=tokenizer.vocab_size)
    path = tmp_path_factory.mktemp("sim") / "tiny-sim"
    save_checkpoint(path, config, random_tensors(config, seed=3), tokenizer)
    return path


@pytest.fixture(scope="module")
def models(model_dir):
    return load_model(model_dir, device="cpu"), load_model(model_dir, device="cuda")


def test_logits_match_over_a_prompt(models):
    cpu, gpu = models
    ids = np.random.default_rng(0).integers(0, cpu.config.vocab_size, size=sizes(6, cpu.config.n_ctx))
    assert gpu.device == "cuda"
    assert_close(gpu.forward(ids), cpu.forward(ids), "logits")


def ids_of(model, settings, prompt):
    return [t.id for t in generate_tokens(model, model.tokenizer.encode(prompt), settings)]


def test_greedy_generation_gives_identical_ids(models):
    cpu, gpu = models
    settings = Settings(max_new_tokens=sizes(4, 64), do_sample=False)
    want = ids_of(cpu, settings, "fn main() {")
    assert ids_of(gpu, settings, "fn main() {") == want
    assert len(want) == settings.max_new_tokens or cpu.tokenizer.special_tokens.get("<|endoftext|>") == want[-1]


@pytest.mark.parametrize("seed", sizes([7], [1, 2, 3]))
def test_seeded_sampling_gives_identical_ids(models, seed):
    cpu, gpu = models
    settings = Settings(max_new_tokens=sizes(4, 64), temperature=1.0, top_k=40, top_p=0.9, seed=seed)
    assert ids_of(gpu, settings, "let") == ids_of(cpu, settings, "let")
