from pathlib import Path

import pytest

from inference.tokenizer import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = ROOT / "data" / "claude-rust-small"


@pytest.fixture(scope="session")
def shipped_tokenizer():
    return Tokenizer.from_dir(SHIPPED_MODEL)


def random_tensors(config, seed=0, scale=0.3):
    """Random GPT-2 weights in Hugging Face names. Larger than GPT-2's 0.02 init
    so the logits are far from uniform and sampling decisions are sharp."""
    import numpy as np

    from inference.checkpoint import expected_shapes

    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in expected_shapes(config).items():
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            tensors[name] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            tensors[name] = (scale * rng.standard_normal(shape)).astype(np.float32)
    return tensors


TINY = dict(n_layer=2, n_head=2, n_embd=32, n_ctx=64)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, shipped_tokenizer):
    """A small random GPT-2 with the shipped tokenizer, in Hugging Face layout."""
    from inference.checkpoint import save_checkpoint
    from inference.reference.model import GPT2Config

    config = GPT2Config(vocab_size=shipped_tokenizer.vocab_size, **TINY)
    path = tmp_path_factory.mktemp("models") / "tiny-random"
    save_checkpoint(path, config, random_tensors(config), shipped_tokenizer)
    return path


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from inference import load_model

    return load_model(tiny_model_dir)
