"""Choosing the next token: logits + (temperature, top_k, top_p) + a coin -> id.

The randomness is a single number, the coin, uniform in [0, 1), drawn by the
caller from a per-request seeded generator. Given the same coin, any
implementation of these rules (the CUDA kernel included) picks the same token:

1. temperature == 0 means greedy: the id of the largest logit (lowest id on ties).
   The temperature is a float32 like everything else, so one too small for a
   float32 (below 1.4e-45) is 0: greedy, which is what such a value means.
2. Weights w_i = exp((logit_i - max) / temperature): unnormalized probabilities.
3. top_k > 0 keeps the tokens whose weight is >= the k-th largest weight
   (ties at the boundary are all kept).
4. top_p < 1 keeps, of those, the tokens whose "mass above" (the total weight of
   kept tokens with a strictly larger weight) is < top_p * (total kept weight):
   the smallest set of most likely tokens that reaches top_p, plus ties.
5. Walk the kept tokens in id order, adding up their weights; the answer is the
   first token at which the running sum exceeds coin * (total kept weight).

Rules 3 and 4 are thresholds on the weight, so they need no sort on a GPU,
and rule 5 walks in id order, which a GPU does with a prefix sum.
"""

import numpy as np


def sample(logits, temperature, top_k, top_p, coin):  # [V] float32, floats, int, coin in [0, 1) -> id
    logits, temperature = np.asarray(logits, dtype=np.float32), np.float32(temperature)
    if temperature == 0:
        return int(np.argmax(logits))
    with np.errstate(over="ignore"):  # a tiny temperature sends (logit - max) / t to -inf: weight 0
        weights = np.exp((logits - logits.max()) / temperature)  # [V], max weight is 1
    kept = top_k_mask(weights, top_k) & top_p_mask(weights, top_k, top_p)
    cumulative = np.cumsum(np.where(kept, weights, np.float32(0)))  # [V], walks in id order
    target = np.float32(coin) * cumulative[-1]
    chosen = int(np.searchsorted(cumulative, target, side="right"))  # first index with sum > target
    return chosen if chosen < len(weights) and kept[chosen] else int(np.flatnonzero(kept)[-1])


def top_k_threshold(weights, top_k):  # -> the k-th largest weight (0 when top-k is off)
    if top_k <= 0 or top_k >= len(weights):
        return np.float32(0)
    return np.partition(weights, len(weights) - top_k)[len(weights) - top_k]


def top_k_mask(weights, top_k):  # [V] -> [V] bool
    return weights >= top_k_threshold(weights, top_k)


def top_p_mask(weights, top_k, top_p):  # [V] -> [V] bool, within the top-k set
    kept = top_k_mask(weights, top_k)
    if top_p >= 1.0:
        return kept
    ordered = np.sort(weights[kept])[::-1]  # descending
    mass_above = np.concatenate([[0], np.cumsum(ordered)[:-1]]).astype(np.float32)
    budget = np.float32(top_p) * ordered.sum(dtype=np.float32)
    # mass_above only grows along `ordered`, so the kept ones are a prefix; its
    # last weight is the threshold, and ties with it are kept too.
    last = np.searchsorted(mass_above, budget, side="left") - 1
    return kept & (weights >= ordered[max(last, 0)])
