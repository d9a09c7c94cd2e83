"""A varied, deterministic text corpus for tokenizer parity tests and benchmarks."""

import random
from pathlib import Path

RUST_SAMPLE = Path(__file__).parent / "data" / "rust_sample.rs"

ENGLISH = (
    "The quick brown fox jumps over the lazy dog. It's what they'd said: we'll see, "
    "you're right, I've been there, I'm sure. IT'S LOUD, THEY'D SHOUT, WE'LL GO, YOU'RE "
    "IN, I'VE WON, I'M HERE, DON'T STOP. Numbers like 3.14159, 1,000,000 and 2026-11-25 "
    "appear in text; so do e-mail@example.com and https://example.org/a?b=c&d=e. "
)
FRAGMENTS = [
    "    ", "\t", "\t\t", "\r\n", "\n\n\n", "  \n", " \t \n", "        fn ", "\u00a0", "\u3000",
    "don't", "DON'T", "Don't", "she'll", "SHE'LL", "o'clock", "'s", "'S", "rock 'n' roll",
    "0", "42", "123456789", "3.0e-9", "0xFF_u8", "١٢٣", "½", "²",
    "😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "🦀", "❤️", "∑", "→", "…", "—",
    "日本語のテキスト", "中文字符", "한국어", "Ελληνικά", "русский текст", "עברית", "العربية",
    "e\u0301", "a\u0308\u0304", "Z\u0335\u0321\u0327", "\u0915\u094d\u0937", "ñ", "ǅ",
    "<|endoftext|>", "<|", "|>", "''", "\"\"", "!!!", "...", "::<>", "&mut self", "=> {",
]


def varied_text(n_bytes: int, seed: int = 0) -> str:
    """English, Rust, whitespace runs, tabs, CRLF, contractions in both cases,
    digits, emoji, CJK and combining marks, mixed at random until n_bytes."""
    rng = random.Random(seed)
    rust = RUST_SAMPLE.read_text(encoding="utf-8")
    parts, size = [], 0
    while size < n_bytes:
        kind = rng.random()
        if kind < 0.3:
            start = rng.randrange(len(rust) - 2000)
            part = rust[start:start + rng.randrange(50, 2000)]
        elif kind < 0.45:
            start = rng.randrange(len(ENGLISH))
            part = ENGLISH[start:] + ENGLISH[:start]
        elif kind < 0.5:
            part = "".join(chr(rng.randrange(0x20, 0x30000)) for _ in range(rng.randrange(1, 20)))
            part = part.encode("utf-8", "replace").decode("utf-8", "replace")
        else:
            part = "".join(rng.choice(FRAGMENTS) + rng.choice(["", " ", "  ", "\n"])
                           for _ in range(rng.randrange(1, 12)))
        parts.append(part)
        size += len(part.encode("utf-8"))
    return "".join(parts)
