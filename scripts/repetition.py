"""How much a model repeats itself, and what the penalties do about it.

    python scripts/repetition.py --model data/claude-rust-small [--model OTHER ...]

For each model: greedy 200-token completions of 20 real Rust prompts
(scripts/rust_prompts.json: function heads from the crates reserved for
evaluation, which no model here was trained on), with no penalty and with
each penalty; prints the mean fraction of distinct tokens (a loop repeats a
few tokens, so it scores low), then the model card's greedy loop, unedited,
with and without a penalty.

    python scripts/repetition.py --write-prompts --debs build/debs   # rebuild the prompt list
"""

import argparse
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from inference import Settings, load_model  # noqa: E402
from inference.generation import generate_tokens  # noqa: E402

PROMPTS = ROOT / "scripts" / "rust_prompts.json"
SETTINGS = {  # name -> the penalties, on greedy decoding
    "greedy": {},
    "repetition_penalty 1.1": {"repetition_penalty": 1.1},
    "repetition_penalty 1.3": {"repetition_penalty": 1.3},
    "frequency_penalty 0.5": {"frequency_penalty": 0.5},
    "presence_penalty 0.5": {"presence_penalty": 0.5},
}
LOOP_PROMPT = "fn main() {"  # the model card's greedy sample


def write_prompts(debs: Path, count: int = 20) -> None:
    """The first `pub fn` head of a file, with the lines before it that belong to it (doc comments,
    attributes), from `count` reserved crates in turn; at most ~160 bytes, so 200 new tokens fit a
    256-token context."""
    from build_corpus import is_reserved, read_packages, deb_sources
    prompts = []
    for package in read_packages(ROOT / "scripts" / "corpus_packages.txt"):
        if len(prompts) == count:
            break
        if not is_reserved(package.name[len("librust-"):-len("-dev")]):
            continue
        for source in sorted(deb_sources(package.deb(debs)), key=lambda s: s.path):
            if any(p["crate"] == source.crate for p in prompts):
                break  # one prompt per crate, from its first package (older versions sort after it)
            text = source.data.decode("utf-8", "replace").replace("\r\n", "\n")
            if "/src/" in source.path and (prompt := function_head(text)):
                prompts.append({"crate": source.crate, "path": source.path, "license": package.license,
                                "prompt": prompt})
                break
    PROMPTS.write_text(json.dumps(prompts, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(prompts)} prompts -> {PROMPTS}")


def function_head(text: str, max_bytes: int = 160) -> str | None:
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.lstrip().startswith("pub fn ") and line.rstrip().endswith("{"):
            start = i
            while start > 0 and lines[start - 1].lstrip().startswith(("///", "#[")):
                start -= 1
            head = "\n".join(lines[start:i + 1]) + "\n"
            while len(head.encode("utf-8")) > max_bytes and start < i:  # drop doc lines from the top
                start += 1
                head = "\n".join(lines[start:i + 1]) + "\n"
            if len(head.encode("utf-8")) <= max_bytes:
                return head
    return None


def completion(model, prompt: str, n_new: int, **penalties) -> list:  # -> the generated Tokens
    ids = model.tokenizer.encode(prompt)
    settings = Settings(max_new_tokens=min(n_new, model.config.n_ctx - len(ids)), do_sample=False, **penalties)
    return list(generate_tokens(model, ids, settings))


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def distinct_fraction(ids: list[int]) -> float:
    return len(set(ids)) / len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, action="append", help="model folders (default: the shipped model)")
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--write-prompts", action="store_true")
    ap.add_argument("--debs", type=Path, default=ROOT / "build" / "debs")
    args = ap.parse_args()
    if args.write_prompts:
        return write_prompts(args.debs)

    prompts = [p["prompt"] for p in json.loads(PROMPTS.read_text(encoding="utf-8"))]
    paths = args.model or [Path("data/claude-rust-small")]
    print(f"{len(prompts)} prompts from {PROMPTS.name}, greedy, up to {args.tokens} new tokens each "
          f"(fewer where the model ends the text); {cpu_name()}, Python {platform.python_version()}\n")
    print("| model | decoding | distinct tokens / generated (mean over prompts) | mean tokens generated |")
    print("| --- | --- | --- | --- |")
    models = [load_model(path if path.is_absolute() else ROOT / path) for path in paths]
    for path, model in zip(paths, models):
        for name, penalties in SETTINGS.items():
            runs = [[t.id for t in completion(model, prompt, args.tokens, **penalties)] for prompt in prompts]
            fraction = sum(map(distinct_fraction, runs)) / len(runs)
            print(f"| {path} | {name} | {fraction:.3f} | {sum(map(len, runs)) / len(runs):.0f} |", flush=True)
    for path, model in zip(paths, models):
        for name in ("greedy", "repetition_penalty 1.3"):
            tokens = completion(model, LOOP_PROMPT, 80, **SETTINGS[name])
            print(f"\n#### {path}: `{LOOP_PROMPT}` ({name}; {len(tokens)} tokens, "
                  f"finish reason {tokens[-1].finish_reason})\n")
            print("```rust\n" + LOOP_PROMPT + "".join(t.text for t in tokens) + "\n```")


if __name__ == "__main__":
    main()
