"""The sampling kernel picks what reference.sampling.sample picks, coin for coin."""

import numpy as np
import pytest

from inference.kernels import sampling as sampling_k
from inference.kernels.sampling import BatchSampler, Sampler
from inference.reference.sampling import Penalties, Sampling, choose, penalize, sample, top_k_mask, top_p_mask
from parity import device, sizes

RNG = np.random.default_rng(31)
V = sizes(300, 50257)
SETTINGS = [(1.0, 0, 1.0), (0.7, 40, 0.9), (1.3, 5, 1.0), (0.5, 0, 0.5), (2.0, 3, 0.95), (1.0, 1, 1.0)]


def near_a_boundary(logits, temperature, top_k, top_p, coin):
    """Is coin * total within float32 rounding of a boundary between two kept tokens?"""
    w = np.exp((logits - logits.max()) / np.float32(temperature))
    kept = top_k_mask(w, top_k) & top_p_mask(w, top_k_mask(w, top_k), top_p)
    cum = np.cumsum(np.where(kept, w, 0).astype(np.float64))
    return np.min(np.abs(cum / cum[-1] - coin)) < 1e-5


@pytest.mark.parametrize("temperature, top_k, top_p", SETTINGS)
def test_same_coin_same_token(temperature, top_k, top_p):
    logits = (RNG.standard_normal(V) * 3).astype(np.float32)
    sampler = Sampler(V)
    d_logits = device(logits)
    coins = RNG.random(sizes(4, 200), dtype=np.float32)
    for coin in coins:
        want = sample(logits, temperature, top_k, top_p, coin)
        got = int(sampler.launch(d_logits, temperature, top_k, top_p, coin).copy_to_host()[0])
        assert got == want or near_a_boundary(logits, temperature, top_k, top_p, coin), (coin, got, want)


def test_ties_at_the_top_k_and_top_p_boundaries():
    # The rest weigh exactly 0, so every sum is of these four and no coin lands within rounding of a
    # boundary (the walk's precision is test_same_coin_same_token's business).
    logits = np.full(V, -1e4, dtype=np.float32)
    logits[[3, 10, 11, 12]] = [2.0, 1.0, 1.0, 1.0]
    weights = [1.0, np.exp(-1.0)]
    assert 0.5 * (weights[0] + 3 * weights[1]) < weights[0] + weights[1]  # top_p 0.5 cuts inside the tie
    for coin in np.linspace(0.01, 0.99, sizes(3, 50), dtype=np.float32):
        # top_k = 2 keeps 3 and all three tied at the second weight; top_p = 0.5 keeps them all too
        for top_k, top_p in ((2, 1.0), (0, 0.5)):
            want = sample(logits, 1.0, top_k, top_p, coin)
            assert want in (3, 10, 11, 12)
            assert sampling_k.sample(device(logits), 1.0, top_k, top_p, coin) == want


@pytest.mark.parametrize("V_", sizes([1, 33], [1, 1000, 50257]))
def test_greedy_is_argmax_with_the_lowest_id_on_ties(V_):
    logits = RNG.standard_normal(V_).astype(np.float32)
    logits[V_ // 2:] = logits.max() + 1  # a tie for the max: the lowest id wins
    assert sampling_k.sample(device(logits), 0.0, 40, 0.9, 0.5) == int(np.argmax(logits)) == V_ // 2


@pytest.mark.parametrize("temperature", [1e-46, 1e-40, 1e-30])
def test_a_tiny_temperature_is_greedy_as_in_the_reference(temperature):
    logits = RNG.standard_normal(sizes(300, 50257)).astype(np.float32)
    best = int(np.argmax(logits))
    for coin in (0.0, 0.5, 0.999):
        want = sample(logits, temperature, 40, 0.9, coin)
        assert sampling_k.sample(device(logits), temperature, 40, 0.9, coin) == want == best


def test_penalties_min_p_and_logprobs_on_the_device_match_the_reference():
    """One launch, four rows: penalties (changed in place on the device), min_p,
    the sampled token's log-probability from the device, the top alternatives."""
    V_ = sizes(300, 50257)
    logits = (RNG.standard_normal((4, V_)) * 3).astype(np.float32)
    seen = [5, 9, 9, 17, V_ - 1]
    rows = [Sampling(0.8, 0, 1.0, 0.3, min_p=0.1, penalties=Penalties.of(seen, 2, 1.3, 0.4, 0.2), logprobs=5),
            Sampling(0.0, 0, 1.0, 0.5, penalties=Penalties.of(seen, 4, 2.0, 0.0, 0.0), logprobs=0),
            Sampling(1.0, 40, 0.9, 0.7, min_p=0.05),
            Sampling(1.2, 0, 0.95, 0.1, logprobs=20)]
    d_logits = device(logits)
    got = BatchSampler(4, V_, max_seen=len(set(seen))).launch(d_logits, rows)
    penalized = d_logits.copy_to_host()
    for r, (row, s, pick) in enumerate(zip(logits, rows, got)):
        want_logits = penalize(row, s.penalties) if s.penalties is not None else row
        np.testing.assert_allclose(penalized[r], want_logits, rtol=1e-6, atol=1e-6)
        want = choose(row, s)
        weights = np.exp((want_logits - want_logits.max()) / np.float32(s.temperature or 1))
        assert pick.id == want.id or near_a_boundary(want_logits, s.temperature, s.top_k, s.top_p, s.coin), r
        assert top_k_mask(weights, s.top_k)[pick.id] and weights[pick.id] >= s.min_p
        if s.logprobs is None:
            assert pick.logprob is None and pick.top == ()
            continue
        assert abs(pick.logprob - float(want.logprob)) < 1e-5
        assert [i for i, _ in pick.top] == [i for i, _ in want.top]


def test_a_launch_with_penalties_allocates_nothing_on_the_device(monkeypatch):
    """The penalties' ids and amounts go into buffers allocated with the sampler,
    not into new device arrays every step."""
    logits = RNG.standard_normal((2, 300)).astype(np.float32)
    rows = [Sampling(0.0, 0, 1.0, 0.5, penalties=Penalties.of([3, 4, 4, 7], 1, 1.5, 0.5, 0.5)),
            Sampling(0.0, 0, 1.0, 0.5, penalties=Penalties.of([7, 8], 1, 1.2, 0.0, 0.0))]
    sampler, d_logits = BatchSampler(2, 300, max_seen=8), device(logits)

    def refuse(*args, **kwargs):
        raise AssertionError("a device allocation during a launch")

    monkeypatch.setattr(sampling_k.cuda, "to_device", refuse)
    monkeypatch.setattr(sampling_k.cuda, "device_array", refuse)
    picks = sampler.launch(d_logits, rows)
    assert [p.id for p in picks] == [choose(row, s).id for row, s in zip(logits, rows)]
