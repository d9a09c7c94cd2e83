from pathlib import Path

import pytest

from inference.tokenizer import Tokenizer
from model_helpers import random_tensors

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = ROOT / "data" / "claude-rust-small"


@pytest.fixture(scope="session")
def shipped_tokenizer():
    return Tokenizer.from_dir(SHIPPED_MODEL)


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
