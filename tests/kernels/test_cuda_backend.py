"""End to end: the CUDA backend against the NumPy backend, through load_model,
the generation loop and the same coins, on the shipped model. On a GPU: a
whole-context prompt, 64 greedy tokens, several sampling seeds. Under the
simulator (every thread is Python: ~30 s per step of the shipped model on a
2-core machine, more under coverage) every check on a tiny random model, and
the shipped model's logits and its most complete sampling check (penalties,
min-p, log-probabilities) at two tokens."""

from pathlib import Path

import numpy as np
import pytest

from inference import load_model
from inference.generation import Settings, generate_tokens
from parity import assert_close, sizes

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "claude-rust-small"

# (prompt length for the logits (None: the whole context), new tokens, sampling seeds) per model
LENGTHS = {
    "shipped": sizes((2, 2, [7]), (None, 64, [1, 2, 3])),
    "tiny": (6, 4, [7]),
}


def tiny_model_dir(tmp_path_factory):
    from model_helpers import random_tensors
    from inference.checkpoint import save_checkpoint
    from inference.reference.model import GPT2Config
    from inference.tokenizer import count_pieces, train_bpe

    tokenizer = train_bpe(count_pieces(["fn main() { let x = 1; println!(\"{x}\"); }\n"] * 20), n_merges=30)
    config = GPT2Config(n_layer=2, n_head=2, n_embd=16, n_ctx=24, vocab_size=tokenizer.vocab_size)
    path = tmp_path_factory.mktemp("sim") / "tiny-sim"
    save_checkpoint(path, config, random_tensors(config, seed=3), tokenizer)
    return path


# the models each test runs on, by how long a step of them takes under the simulator
EVERY_MODEL = sizes(["tiny", "shipped"], ["shipped"])
QUICK_MODELS = sizes(["tiny"], ["shipped"])


@pytest.fixture(scope="module")
def models(request, tmp_path_factory):
    path = SHIPPED if request.param == "shipped" else tiny_model_dir(tmp_path_factory)
    return request.param, load_model(path, device="cpu"), load_model(path, device="cuda")


@pytest.mark.parametrize("models", EVERY_MODEL, indirect=True)
def test_logits_match_over_a_prompt(models):
    name, cpu, gpu = models
    T = LENGTHS[name][0] or cpu.config.n_ctx
    ids = np.random.default_rng(0).integers(0, cpu.config.vocab_size, size=T)
    assert gpu.device == "cuda"
    assert_close(gpu.forward(ids), cpu.forward(ids), "logits")


@pytest.mark.parametrize("models", ["tiny"], indirect=True)
def test_a_kv_cache_larger_than_the_device_is_a_memory_error(models):
    """What the server's start-up reports as "does not fit in memory": on a GPU the driver's
    out-of-memory error, under the simulator NumPy's."""
    _, _, gpu = models
    with pytest.raises(MemoryError):
        gpu.new_kv_pool(10**12, 16)  # petabytes


def ids_of(model, settings, prompt):
    return [t.id for t in generate_tokens(model, model.tokenizer.encode(prompt), settings)]


@pytest.mark.parametrize("models", QUICK_MODELS, indirect=True)
def test_greedy_generation_gives_identical_ids(models):
    name, cpu, gpu = models
    settings = Settings(max_new_tokens=LENGTHS[name][1], do_sample=False)
    want = ids_of(cpu, settings, "fn main")
    assert ids_of(gpu, settings, "fn main") == want
    assert len(want) == settings.max_new_tokens or cpu.tokenizer.special_tokens.get("<|endoftext|>") == want[-1]


@pytest.mark.parametrize("models", QUICK_MODELS, indirect=True)
def test_seeded_sampling_gives_identical_ids(models):
    name, cpu, gpu = models
    new_tokens, seeds = LENGTHS[name][1:]
    for seed in seeds:
        settings = Settings(max_new_tokens=new_tokens, temperature=1.0, top_k=40, top_p=0.9, seed=seed)
        assert ids_of(gpu, settings, "let") == ids_of(cpu, settings, "let"), f"seed {seed}"


@pytest.mark.parametrize("models", EVERY_MODEL, indirect=True)
def test_penalties_min_p_and_logprobs_give_identical_tokens(models):
    """The sampling controls on both backends, seeded: the same ids, and the
    sampled tokens' log-probabilities (the device's own reduction) agree."""
    name, cpu, gpu = models
    new_tokens, seeds = LENGTHS[name][1:]
    settings = Settings(max_new_tokens=new_tokens, temperature=0.9, top_k=0, top_p=1.0, min_p=0.05, seed=seeds[0],
                        repetition_penalty=1.3, frequency_penalty=0.3, presence_penalty=0.2, logprobs=2)
    prompt = cpu.tokenizer.encode("let x = x")
    want = list(generate_tokens(cpu, prompt, settings))
    got = list(generate_tokens(gpu, prompt, settings))
    assert [t.id for t in got] == [t.id for t in want]
    np.testing.assert_allclose([t.logprob for t in got], [t.logprob for t in want], atol=1e-3)
    assert [[i for i, _ in t.top] for t in got] == [[i for i, _ in t.top] for t in want]
