"""Unedited samples from a model, for its card: fixed prompts, fixed seeds.

    python scripts/sample_model.py [--model data/claude-rust-small] [--new-tokens 80]
"""

import argparse
from pathlib import Path

from inference import Settings, generate, load_model

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = [
    ("fn main() {", Settings(do_sample=False)),
    ("pub fn parse(input: &str) -> Result<", Settings(seed=1)),
    ("impl fmt::Display for Point {\n", Settings(seed=2)),
    ("#[test]\nfn test_", Settings(seed=3)),
    ("/// Returns the number of", Settings(seed=4)),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "data" / "claude-rust-small")
    ap.add_argument("--new-tokens", type=int, default=80)
    args = ap.parse_args()
    model = load_model(args.model)
    for prompt, settings in PROMPTS:
        settings = Settings(**{**settings.__dict__, "max_new_tokens": args.new_tokens})
        how = "greedy" if not settings.do_sample else (
            f"temperature {settings.temperature}, top_k {settings.top_k}, top_p {settings.top_p}, seed {settings.seed}")
        result = generate(model, prompt, settings)
        print(f"#### `{prompt.splitlines()[0]}` ({how}, {args.new_tokens} tokens)\n")
        print("```rust")
        print(prompt + result.text)
        print("```\n")


if __name__ == "__main__":
    main()
