"""Choosing the next token: logits + the request's settings + a coin -> id.

    pick = choose(logits, Sampling(temperature=0.7, top_k=40, top_p=0.9, coin=0.31, min_p=0.05,
                                   penalties=Penalties.of(tokens, prompt_length, 1.2, 0.0, 0.0), logprobs=5))
    pick.id, pick.logprob, pick.top  # the token, its log-probability, the 5 likeliest and theirs

The randomness is a single number, the coin, uniform in [0, 1), drawn by the
caller from a per-request seeded generator. Given the same coin, any
implementation of these rules (the CUDA kernel included) picks the same token:

0. Penalties (if any) change the logits first (see `penalize`): the
   repetition penalty divides a positive logit of a token seen in the prompt
   or the output (multiplies a negative one); the frequency and presence
   penalties subtract count * frequency + presence from a token the output holds.
1. temperature == 0 means greedy: the id of the largest logit (lowest id on ties).
   The temperature is a float32 like everything else, so one too small for a
   float32 (below 1.4e-45) is 0: greedy, which is what such a value means.
2. Weights w_i = exp((logit_i - max) / temperature): unnormalized probabilities.
3. top_k > 0 keeps the tokens whose weight is >= the k-th largest weight
   (ties at the boundary are all kept).
   min_p > 0 keeps, of those, the tokens whose weight is >= min_p: a probability
   at least min_p times the likeliest token's (whose weight is 1).
4. top_p < 1 keeps, of those, the tokens whose "mass above" (the total weight of
   kept tokens with a strictly larger weight) is < top_p * (total kept weight):
   the smallest set of most likely tokens that reaches top_p, plus ties.
5. Walk the kept tokens in id order, adding up their weights; the answer is the
   first token at which the running sum exceeds coin * (total kept weight).

Rules 3 and 4 are thresholds on the weight, so they need no sort on a GPU,
and rule 5 walks in id order, which a GPU does with a prefix sum.

A token's log-probability (asked for with `logprobs`) is taken under the
distribution after penalties and temperature, before top-k/min-p/top-p cut
it: log softmax(logits / temperature), with temperature 1 for greedy.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class Penalties:
    """What the penalties subtract or divide, per token id that has been seen:
    ids [n] the distinct ids of the prompt and the output, `subtract` [n]
    float32 count * frequency + (count > 0) * presence, counting the output only."""
    repetition: float
    ids: np.ndarray
    subtract: np.ndarray

    @staticmethod
    def of(tokens, prompt_length: int, repetition: float, frequency: float, presence: float) -> "Penalties":
        ids = np.unique(np.asarray(tokens, dtype=np.int64))
        counts = np.bincount(np.asarray(tokens[prompt_length:], dtype=np.int64), minlength=ids.max() + 1)[ids]
        counts = counts.astype(np.float32)  # [n] times in the output
        subtract = counts * np.float32(frequency) + (counts > 0).astype(np.float32) * np.float32(presence)
        return Penalties(float(repetition), ids, subtract)


def penalize(logits, penalties: Penalties):  # [V] float32 -> [V] float32, a new array
    logits = np.array(logits, dtype=np.float32)
    seen = logits[penalties.ids]
    r = np.float32(penalties.repetition)
    seen = np.where(seen > 0, seen / r, seen * r)  # CTRL's repetition penalty, as Hugging Face applies it
    logits[penalties.ids] = seen - penalties.subtract  # OpenAI's frequency and presence penalties
    return logits


class Sampling(NamedTuple):  # made for every token of every request: a NamedTuple costs a third of a dataclass
    """How one row of logits becomes one token; `coin` is uniform in [0, 1)."""
    temperature: float
    top_k: int
    top_p: float
    coin: float
    min_p: float = 0.0
    penalties: Penalties | None = None
    logprobs: int | None = None  # None: none; k: the token's and the k likeliest tokens'


class Pick(NamedTuple):
    """The chosen id; with logprobs asked for, its log-probability and the
    likeliest alternatives as (id, logprob), likeliest first."""
    id: int
    logprob: float | None = None
    top: tuple = ()


def choose(logits, s: Sampling) -> Pick:  # [V] float32 -> the token (and its log-probability)
    logits = penalized(logits, s)
    return picked(sample(logits, s.temperature, s.top_k, s.top_p, s.coin, s.min_p), logits, s)


def penalized(logits, s: Sampling):  # [V] -> [V]: the logits the rules see (penalized in a new array, if any)
    return logits if s.penalties is None else penalize(logits, s.penalties)


def picked(token: int, logits, s: Sampling) -> Pick:
    """The token chosen from these (penalized) logits, with its log-probability
    and the likeliest alternatives' if s asks for them."""
    if s.logprobs is None:
        return Pick(token)
    logprobs = log_softmax(logits, s.temperature)
    return Pick(token, float(logprobs[token]), top_logprobs(logprobs, s.logprobs))


def log_softmax(logits, temperature):  # [V] float32 -> [V] float32, at temperature 1 for greedy
    logits = np.asarray(logits, dtype=np.float32)
    t = np.float32(temperature) if np.float32(temperature) > 0 else np.float32(1)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = (logits - logits.max()) / t  # [V], max 0; a tiny t sends the rest to -inf
        return scaled - np.log(np.exp(scaled).sum(dtype=np.float32))


def top_logprobs(logprobs, k: int) -> tuple:  # [V] -> ((id, logprob), ...) k likeliest, ties by id
    order = np.lexsort((np.arange(len(logprobs)), -logprobs))[:k]
    return tuple((int(i), float(logprobs[i])) for i in order)


def sample(logits, temperature, top_k, top_p, coin, min_p=0.0):  # [V] float32 ... coin in [0, 1) -> id
    logits, temperature = np.asarray(logits, dtype=np.float32), np.float32(temperature)
    if not np.isfinite(logits.max()):  # NaN, or +inf: a broken forward pass, not a distribution to sample
        raise FloatingPointError(f"the model's logits are not finite (max {logits.max()}): no token can be chosen")
    if temperature == 0:
        return int(np.argmax(logits))
    with np.errstate(over="ignore"):  # a tiny temperature sends (logit - max) / t to -inf: weight 0
        weights = np.exp((logits - logits.max()) / temperature)  # [V], max weight is 1
    kept = top_k_mask(weights, top_k) & (weights >= np.float32(min_p))
    kept &= top_p_mask(weights, kept, top_p)
    # [V], walks in id order. The running sum is float64: a float32 one, added in sequence over
    # GPT-2's 50,257 weights, drifts by a few 1e-5 of the total: enough to move the pick of a coin
    # near a boundary, where the GPU's sums (in chunks, then across them) drift far less.
    cumulative = np.cumsum(np.where(kept, weights, np.float32(0)), dtype=np.float64)
    target = np.float64(np.float32(coin)) * cumulative[-1]
    chosen = int(np.searchsorted(cumulative, target, side="right"))  # first index with sum > target
    return chosen if chosen < len(weights) and kept[chosen] else int(np.flatnonzero(kept)[-1])


def top_k_threshold(weights, top_k):  # -> the k-th largest weight (0 when top-k is off)
    if top_k <= 0 or top_k >= len(weights):
        return np.float32(0)
    return np.partition(weights, len(weights) - top_k)[len(weights) - top_k]


def top_k_mask(weights, top_k):  # [V] -> [V] bool
    return weights >= top_k_threshold(weights, top_k)


def top_p_mask(weights, kept, top_p):  # [V], [V] bool -> [V] bool, within the kept set
    if top_p >= 1.0:
        return kept
    ordered = np.sort(weights[kept])[::-1]  # descending
    mass_above = np.concatenate([[0], np.cumsum(ordered)[:-1]]).astype(np.float32)
    budget = np.float32(top_p) * ordered.sum(dtype=np.float32)
    # mass_above only grows along `ordered`, so the kept ones are a prefix; its
    # last weight is the threshold, and ties with it are kept too.
    last = np.searchsorted(mass_above, budget, side="left") - 1
    return kept & (weights >= ordered[max(last, 0)])
