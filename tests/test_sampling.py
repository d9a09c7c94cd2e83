"""Sampling rules against a float64 restatement written from the definitions."""

import numpy as np
import pytest

from inference.generation import Settings
from inference.reference.sampling import Penalties, Sampling, choose, penalize, sample
from model_helpers import log_softmax_float64

RNG = np.random.default_rng(7)


def kept_probabilities(logits, temperature, top_k, top_p, min_p=0.0):
    """float64, token by token, straight from the rules in sampling.py's docstring."""
    w = np.exp((np.float64(logits) - np.max(logits)) / temperature)
    V = len(w)
    kept = np.ones(V, dtype=bool)
    if 0 < top_k < V:
        kept &= np.array([np.sum(w > w[i]) < top_k for i in range(V)])
    kept &= w >= min_p * w.max()
    if top_p < 1:
        total = w[kept].sum()
        kept &= np.array([w[kept & (w > w[i])].sum() < top_p * total for i in range(V)])
    p = np.where(kept, w, 0.0)
    return p / p.sum()


@pytest.mark.parametrize("temperature, top_k, top_p, min_p", [
    (1.0, 0, 1.0, 0.0), (0.7, 40, 0.9, 0.0), (1.3, 5, 1.0, 0.0), (0.5, 0, 0.5, 0.0), (2.0, 3, 0.95, 0.0),
    (1.0, 1000, 0.3, 0.0), (1.0, 0, 1.0, 0.05), (0.7, 40, 0.9, 0.2), (1.5, 0, 1.0, 1.0),
])
def test_a_fine_grid_of_coins_reproduces_the_distribution(temperature, top_k, top_p, min_p):
    logits = (RNG.standard_normal(300) * 2).astype(np.float32)
    p = kept_probabilities(logits, temperature, top_k, top_p, min_p)
    n = 20_000
    coins = (np.arange(n) + 0.5) / n  # evenly spaced: each token gets a share of coins equal to p
    counts = np.bincount([sample(logits, temperature, top_k, top_p, c, min_p) for c in coins], minlength=300)
    assert np.all(counts[p == 0] == 0), "a token outside top-k/top-p was chosen"
    np.testing.assert_allclose(counts / n, p, atol=2 / n)


def test_the_walk_over_a_whole_vocabulary_is_exact():
    """Over GPT-2's 50,257 tokens a float32 running sum drifts by a few 1e-5 of the total, enough to
    move the pick of a coin near a boundary (the GPU's chunked sums drift far less): every coin
    picks the token of the walk summed in float64, the first whose running sum exceeds coin * total."""
    logits = (RNG.standard_normal(50257) * 3).astype(np.float32)
    running = np.cumsum(np.exp(logits - logits.max()), dtype=np.float64)  # the float32 weights, summed exactly
    for coin in RNG.random(200, dtype=np.float32):
        assert sample(logits, 1.0, 0, 1.0, coin) == np.argmax(running > np.float64(coin) * running[-1])


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


def penalized_float64(logits, tokens, prompt_length, repetition, frequency, presence):
    """The definitions, token by token: CTRL's repetition penalty on every id seen in
    the prompt or the output, then OpenAI's frequency and presence penalties by
    how often each id appears in the output."""
    out = np.float64(logits).copy()
    output = list(tokens[prompt_length:])
    for i in set(tokens):
        out[i] = out[i] / repetition if out[i] > 0 else out[i] * repetition
        count = output.count(i)
        out[i] -= count * frequency + (1.0 if count > 0 else 0.0) * presence
    return out


@pytest.mark.parametrize("repetition, frequency, presence", [(1.3, 0.0, 0.0), (1.0, 0.5, 0.0), (1.0, 0.0, 0.7),
                                                              (1.2, 0.4, 0.3), (0.8, -0.5, -1.0)])
def test_penalties_follow_their_definitions(repetition, frequency, presence):
    logits = (RNG.standard_normal(50) * 3).astype(np.float32)
    tokens = [3, 7, 7, 12, 40] + [7, 12, 12, 0, 49]  # a prompt of 5, an output of 5
    penalties = Penalties.of(tokens, 5, repetition, frequency, presence)
    want = penalized_float64(logits, tokens, 5, repetition, frequency, presence)
    np.testing.assert_allclose(penalize(logits, penalties), want, rtol=1e-6, atol=1e-6)
    untouched = np.setdiff1d(np.arange(50), tokens)
    assert np.array_equal(penalize(logits, penalties)[untouched], logits[untouched])


def test_default_settings_apply_no_penalty_and_no_min_p():
    sampling = Settings().sampling(0.5, [1, 2, 2], 1)
    assert sampling.penalties is None and sampling.min_p == 0.0 and sampling.logprobs is None
    logits = RNG.standard_normal(50).astype(np.float32)
    for coin in np.linspace(0, 0.999, 50):
        assert choose(logits, Sampling(0.7, 40, 0.9, coin)).id == sample(logits, 0.7, 40, 0.9, coin)


def test_a_repetition_penalty_breaks_a_greedy_loop():
    logits = np.array([0.0, 5.0, 4.0, 1.0], dtype=np.float32)  # greedy: 1, whatever came before
    loop = Settings(do_sample=False).sampling(0.5, [3, 1, 1, 1], 1)
    assert choose(logits, loop).id == 1
    penalized = Settings(do_sample=False, repetition_penalty=1.5).sampling(0.5, [3, 1, 1, 1], 1)
    assert choose(logits, penalized).id == 2  # 5 / 1.5 < 4


@pytest.mark.parametrize("temperature, top_k, k", [(0.7, 40, 5), (1.0, 0, 20), (0.0, 0, 3), (1.3, 5, 0)])
def test_logprobs_are_the_log_softmax_after_penalties_and_temperature(temperature, top_k, k):
    logits = (RNG.standard_normal(300) * 3).astype(np.float32)
    tokens = [5, 9, 9, 250]
    sampling = Settings(temperature=temperature, top_k=top_k, do_sample=temperature > 0, repetition_penalty=1.3,
                        presence_penalty=0.5, logprobs=k).sampling(0.37, tokens, 2)
    pick = choose(logits, sampling)
    want = log_softmax_float64(penalized_float64(logits, tokens, 2, 1.3, 0.0, 0.5), temperature)
    assert pick.id == choose(logits, sampling._replace(logprobs=None)).id
    assert abs(pick.logprob - want[pick.id]) < 1e-5
    order = sorted(range(300), key=lambda i: (-want[i], i))[:k]
    assert [i for i, _ in pick.top] == order
    np.testing.assert_allclose([lp for _, lp in pick.top], want[order], atol=1e-5)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_logits_that_are_not_finite_are_a_clear_error(bad):
    logits = RNG.standard_normal(50).astype(np.float32)
    logits[7] = bad
    for temperature in (0.0, 0.7):
        with pytest.raises(FloatingPointError, match="not finite"):
            sample(logits, temperature, 40, 0.9, 0.5)
