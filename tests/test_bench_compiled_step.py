"""scripts/bench_compiled_step.py times a step compiled with Numba against the
engine's NumPy step; its figures mean something only if it computes the same
step: checked here against the single-sequence reference and the sampling
rules, and for batch invariance, which the engine promises."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from bench_compiled_step import CompiledStep, check_against_the_reference, sample, sample_row
from inference.reference.paged import Chunk
from inference.reference.sampling import Sampling
from inference.reference.sampling import sample as reference_sample
from test_sampling_kernel import near_a_boundary

RNG = np.random.default_rng(5)


def test_the_compiled_step_decodes_what_the_reference_decodes(tiny_model):
    check_against_the_reference(tiny_model, tokens=12)  # raises if a token or a logit is off


def test_a_row_is_the_same_alone_in_a_batch_and_in_chunks(tiny_model):
    """Three sequences in one pool, scattered blocks: each one's last logits are
    bit for bit the same whether its prompt ran alone in one chunk, beside
    the others, or one token per step."""
    step, greedy = CompiledStep(tiny_model), Sampling(0.0, 0, 1.0, 0.5)
    seqs = [RNG.integers(0, tiny_model.config.vocab_size, size=n).tolist() for n in (9, 17, 3)]
    tables = [[5, 1], [0, 7, 3], [6]]

    def pool():
        p = tiny_model.new_kv_pool(8, 8)
        p.k[:] = p.v[:] = np.nan  # a slot read before it is written poisons the answer
        return p

    alone = [step(pool(), [Chunk(ids, 0, table, greedy)])[0][0] for ids, table in zip(seqs, tables)]
    together = step(pool(), [Chunk(ids, 0, table, greedy) for ids, table in zip(seqs, tables)])[0]
    shared = pool()
    for t in range(len(seqs[1])):  # sequence 1 token by token, sequence 0 beside it while it lasts
        chunks = [Chunk(seqs[1][t:t + 1], t, tables[1], greedy)]
        if t < len(seqs[0]):
            chunks.append(Chunk(seqs[0][t:t + 1], t, tables[0], greedy))
        logits = step(shared, chunks)[0]
        if t == len(seqs[0]) - 1:
            assert np.array_equal(logits[1], alone[0])
    assert np.array_equal(logits[0], alone[1])
    for got, want in zip(together, alone):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("temperature, top_k, top_p, min_p", [(1.0, 0, 1.0, 0.0), (0.7, 40, 0.9, 0.0),
                                                              (1.3, 5, 1.0, 0.1), (0.5, 0, 0.5, 0.0)])
def test_compiled_sampling_picks_what_the_rules_pick(temperature, top_k, top_p, min_p):
    logits = (RNG.standard_normal(4096) * 3).astype(np.float32)
    for coin in RNG.random(100, dtype=np.float32):
        want = reference_sample(logits, temperature, top_k, top_p, coin, min_p)
        got = sample(logits, Sampling(temperature, top_k, top_p, float(coin), min_p=min_p))
        assert got == want or (min_p == 0 and near_a_boundary(logits, temperature, top_k, top_p, coin)), coin


def test_compiled_greedy_takes_the_lowest_id_on_ties_and_refuses_nan():
    logits = np.zeros(50, dtype=np.float32)
    logits[[7, 30]] = 2.0
    assert sample(logits, Sampling(0.0, 0, 1.0, 0.5)) == 7
    logits[3] = np.nan
    assert sample_row(logits, np.float32(0.7), 0, 1.0, 0.5, 0.0) == -1
