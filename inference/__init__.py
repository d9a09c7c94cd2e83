"""inference: a GPT-2-style model served over HTTP, readable end to end.

    from inference import Tokenizer, load_model, generate
    model = load_model("data/claude-rust-small")
    print(generate(model, "fn main() {").text)
"""

from .backends import load_model
from .generation import Settings, generate, generate_tokens
from .tokenizer import Tokenizer

__all__ = ["Tokenizer", "load_model", "generate", "generate_tokens", "Settings"]
