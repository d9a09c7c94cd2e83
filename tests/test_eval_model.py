"""scripts/eval_model.py scores every token once, each with the context its
rule promises, and its by-position table averages what it says: both checked
against each token's log-probability computed on its own, in float64."""

import lzma
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from eval_model import bits_by_position, model_bits, xz_each_file_bits
from model_helpers import log_softmax_float64


def token_bits(model, context, target):  # -log2 p(target | context), the model run on exactly that context
    return -log_softmax_float64(model.forward(context)[-1])[target] / math.log(2)


def some_ids(model, n, seed=0):
    return np.random.default_rng(seed).integers(0, model.config.vocab_size, size=n).tolist()


def test_a_text_within_one_window_is_scored_token_by_token(tiny_model):
    ids = some_ids(tiny_model, tiny_model.config.n_ctx // 2)
    want = sum(token_bits(tiny_model, ids[:t], ids[t]) for t in range(1, len(ids)))
    assert model_bits(tiny_model, ids, stride=tiny_model.config.n_ctx // 2) == pytest.approx(want, rel=1e-5)


def test_a_long_text_scores_each_token_once_with_at_least_half_a_window_of_context(tiny_model):
    """Windows start every stride = n_ctx / 2 tokens; a target past the first
    window is scored in the first window that holds it and a full stride
    before it: the window starting at k * stride, k = ceil((t - n_ctx) / stride)."""
    n_ctx = tiny_model.config.n_ctx
    stride = n_ctx // 2
    ids = some_ids(tiny_model, 3 * n_ctx + 7, seed=1)
    want = 0.0
    for t in range(1, len(ids)):
        start = 0 if t <= n_ctx else math.ceil((t - n_ctx) / stride) * stride
        assert t - start >= min(t, stride + 1)
        want += token_bits(tiny_model, ids[start:t], ids[t])
    assert model_bits(tiny_model, ids, stride) == pytest.approx(want, rel=1e-5)


def test_bits_by_position_average_each_bucket_over_the_windows(tiny_model):
    n_ctx = tiny_model.config.n_ctx  # 64: buckets 0-15, 16-63
    ids = some_ids(tiny_model, 2 * (n_ctx + 1) + 5, seed=2)
    windows = [ids[0:n_ctx + 1], ids[n_ctx + 1:2 * (n_ctx + 1)]]
    per_position = np.mean([[token_bits(tiny_model, w[:p + 1], w[p + 1]) for p in range(n_ctx)] for w in windows],
                           axis=0)
    got = bits_by_position(tiny_model, ids)
    assert list(got) == [(0, 15), (16, 63)]
    assert got[(0, 15)] == pytest.approx(per_position[:16].mean(), rel=1e-5)
    assert got[(16, 63)] == pytest.approx(per_position[16:].mean(), rel=1e-5)


def test_xz_each_file_alone_forgets_what_the_other_files_said():
    """A file repeated is nearly free to xz over the whole text, and costs
    its full price again when each file is compressed on its own."""
    one = np.random.default_rng(0).bytes(4096)  # incompressible, so the price of a file is its size
    text = one + b"<|endoftext|>" + one
    alone = xz_each_file_bits(one)
    assert 4096 * 8 <= alone < 4096 * 8 * 1.05
    assert xz_each_file_bits(text) == 2 * alone
    assert 8 * len(lzma.compress(text, preset=9 | lzma.PRESET_EXTREME)) < 1.2 * alone
