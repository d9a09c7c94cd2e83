"""Random GPT-2 weights for tests."""

import numpy as np

from inference.checkpoint import expected_shapes


def random_tensors(config, seed=0, scale=0.3):
    """Random GPT-2 weights in Hugging Face names. Larger than GPT-2's 0.02 init
    so the logits are far from uniform and sampling decisions are sharp."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in expected_shapes(config).items():
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            tensors[name] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            tensors[name] = (scale * rng.standard_normal(shape)).astype(np.float32)
    return tensors



def log_softmax_float64(logits, temperature=1.0):  # [..., V] -> [..., V]: the definition, in float64
    x = np.float64(logits) / (temperature or 1.0)  # temperature 0 (greedy) is reported at 1
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))
