"""Sampling rules against a float64 restatement written from the definitions."""

import numpy as np
import pytest

from inference.reference.sampling import sample

RNG = np.random.default_rng(7)


def kept_probabilities(logits, temperature, top_k, top_p):
    """float64, token by token, straight from the rules in sampling.py's docstring."""
    w = np.exp((np.float64(logits) - np.max(logits)) / temperature)
    V = len(w)
    kept = np.ones(V, dtype=bool)
    if 0 < top_k < V:
        kept &= np.array([np.sum(w > w[i]) < top_k for i in range(V)])
    if top_p < 1:
        total = w[kept].sum()
        kept &= np.array([w[kept & (w > w[i])].sum() < top_p * total for i in range(V)])
    p = np.where(kept, w, 0.0)
    return p / p.sum()


@pytest.mark.parametrize("temperature, top_k, top_p", [
    (1.0, 0, 1.0), (0.7, 40, 0.9), (1.3, 5, 1.0), (0.5, 0, 0.5), (2.0, 3, 0.95), (1.0, 1000, 0.3),
])
def test_a_fine_grid_of_coins_reproduces_the_distribution(temperature, top_k, top_p):
    logits = (RNG.standard_normal(300) * 2).astype(np.float32)
    p = kept_probabilities(logits, temperature, top_k, top_p)
    n = 20_000
    coins = (np.arange(n) + 0.5) / n  # evenly spaced: each token gets a share of coins equal to p
    counts = np.bincount([sample(logits, temperature, top_k, top_p, c) for c in coins], minlength=300)
    assert np.all(counts[p == 0] == 0), "a token outside top-k/top-p was chosen"
    np.testing.assert_allclose(counts / n, p, atol=2 / n)


def test_greedy_and_top_k_1_are_argmax_for_every_coin():
    logits = RNG.standard_normal(50).astype(np.float32)
    best = int(np.argmax(logits))
    for coin in (0.0, 0.3, 0.999999):
        assert sample(logits, 0.0, 40, 0.9, coin) == best
        assert sample(logits, 1.0, 1, 1.0, coin) == best


def test_greedy_ties_go_to_the_lowest_id():
    assert sample(np.array([0, 3, 3, 1], dtype=np.float32), 0.0, 0, 1.0, 0.5) == 1


def test_top_p_keeps_the_smallest_prefix_reaching_p_and_its_ties():
    logits = np.log(np.array([0.1, 0.5, 0.1, 0.3], dtype=np.float32))
    def chosen(top_p):
        return {sample(logits, 1.0, 0, top_p, c) for c in np.linspace(0, 0.9999, 500)}
    assert chosen(0.5) == {1}          # 0.5 alone reaches 0.5
    assert chosen(0.7) == {1, 3}       # 0.5 < 0.7, 0.5 + 0.3 reaches it
    assert chosen(0.85) == {0, 1, 2, 3}  # the two 0.1s tie at the boundary: both kept


def test_top_k_keeps_ties_at_the_boundary():
    logits = np.array([2.0, 1.0, 1.0, 0.0], dtype=np.float32)
    assert {sample(logits, 1.0, 2, 1.0, c) for c in np.linspace(0, 0.9999, 500)} == {0, 1, 2}


def test_the_coin_walks_kept_tokens_in_id_order():
    logits = np.zeros(4, dtype=np.float32)  # uniform
    assert [sample(logits, 1.0, 0, 1.0, c) for c in (0.0, 0.26, 0.51, 0.76, 0.9999)] == [0, 1, 2, 3, 3]


@pytest.mark.parametrize("temperature", [1e-46, 5e-324, 1e-40, 1e-30])
def test_a_tiny_temperature_is_greedy(temperature):
    """1e-46 is 0 as a float32: dividing by it made every weight NaN, and the
    sampler picked the last id (end-of-text). Tiny means greedy, for every coin."""
    logits = RNG.standard_normal(300).astype(np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # and no warnings
        assert {sample(logits, temperature, 40, 0.9, coin) for coin in (0.0, 0.5, 0.999)} == {int(np.argmax(logits))}
