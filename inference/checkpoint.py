"""Read and write a Hugging Face GPT-2 folder.

    config.json         n_layer, n_head, n_embd, n_positions, vocab_size, layer_norm_epsilon
    model.safetensors   the weights (keys with or without the "transformer." prefix)
    vocab.json, merges.txt   the tokenizer

Conv1D weights are stored [in, out], so they are used as x @ w with no
transpose. The LM head is tied to wte: a separate "lm_head.weight" is
accepted only if it equals wte.
"""

import json
from pathlib import Path

import numpy as np

from .reference.model import GPT2Config


class CheckpointError(ValueError):
    """A model folder that cannot be loaded; the message names the file."""


CONFIG_KEYS = {"n_layer": "n_layer", "n_head": "n_head", "n_embd": "n_embd",
               "n_ctx": "n_positions", "vocab_size": "vocab_size", "eps": "layer_norm_epsilon"}


def read_config(path: Path) -> GPT2Config:
    file = Path(path) / "config.json"
    if not file.is_file():
        raise CheckpointError(f"model config not found: {file}")
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{file} is not valid JSON: {e}") from None
    missing = [hf for ours, hf in CONFIG_KEYS.items() if hf not in raw and ours != "eps"]
    if missing:
        raise CheckpointError(f"{file} is missing {', '.join(missing)}")
    config = GPT2Config(**{ours: raw.get(hf, 1e-5) for ours, hf in CONFIG_KEYS.items()})
    if config.n_embd % config.n_head:
        raise CheckpointError(f"{file}: n_embd {config.n_embd} is not divisible by n_head {config.n_head}")
    return config


def expected_shapes(config: GPT2Config) -> dict[str, tuple[int, ...]]:
    """Every tensor of a GPT-2 checkpoint, by Hugging Face name, with its shape."""
    C, V = config.n_embd, config.vocab_size
    shapes = {"wte.weight": (V, C), "wpe.weight": (config.n_ctx, C),
              "ln_f.weight": (C,), "ln_f.bias": (C,)}
    for i in range(config.n_layer):
        h = f"h.{i}."
        shapes.update({
            h + "ln_1.weight": (C,), h + "ln_1.bias": (C,),
            h + "attn.c_attn.weight": (C, 3 * C), h + "attn.c_attn.bias": (3 * C,),
            h + "attn.c_proj.weight": (C, C), h + "attn.c_proj.bias": (C,),
            h + "ln_2.weight": (C,), h + "ln_2.bias": (C,),
            h + "mlp.c_fc.weight": (C, 4 * C), h + "mlp.c_fc.bias": (4 * C,),
            h + "mlp.c_proj.weight": (4 * C, C), h + "mlp.c_proj.bias": (C,),
        })
    return shapes


def read_tensors(path: Path, config: GPT2Config) -> dict[str, np.ndarray]:
    """The checkpoint's tensors by Hugging Face name (prefix removed), float32,
    each checked against the shape the config implies."""
    from safetensors import SafetensorError, safe_open

    file = Path(path) / "model.safetensors"
    if not file.is_file():
        raise CheckpointError(f"model weights not found: {file}")
    tensors = {}
    try:
        with safe_open(str(file), framework="np") as f:
            for key in f.keys():
                name = key.removeprefix("transformer.")
                if name.endswith((".attn.bias", ".attn.masked_bias")):
                    continue  # old HF causal-mask buffers, not weights
                tensors[name] = f.get_tensor(key)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{file} is not a readable safetensors file: {e}") from None

    for name, shape in expected_shapes(config).items():
        if name not in tensors:
            raise CheckpointError(f"{file}: missing tensor {name!r} (expected shape {list(shape)})")
        if tuple(tensors[name].shape) != shape:
            raise CheckpointError(f"{file}: tensor {name!r} has shape {list(tensors[name].shape)}, "
                                  f"config.json implies {list(shape)}")
        tensors[name] = np.ascontiguousarray(tensors[name], dtype=np.float32)
    head = tensors.pop("lm_head.weight", None)
    if head is not None and not np.array_equal(head.astype(np.float32), tensors["wte.weight"]):
        raise CheckpointError(f"{file}: lm_head.weight differs from wte.weight; only a tied LM head is supported")
    return tensors


def nest(tensors: dict[str, np.ndarray], config: GPT2Config) -> dict:
    """Flat Hugging Face names -> the nested tree the reference reads:
    params["blocks"][i]["mlp"]["c_fc"] == {"w": ..., "b": ...}."""
    def affine(prefix, w="w", b="b"):
        return {w: tensors[prefix + ".weight"], b: tensors[prefix + ".bias"]}

    def norm(prefix):
        return affine(prefix, "g", "b")

    blocks = [{
        "ln_1": norm(f"h.{i}.ln_1"), "ln_2": norm(f"h.{i}.ln_2"),
        "attn": {"c_attn": affine(f"h.{i}.attn.c_attn"), "c_proj": affine(f"h.{i}.attn.c_proj")},
        "mlp": {"c_fc": affine(f"h.{i}.mlp.c_fc"), "c_proj": affine(f"h.{i}.mlp.c_proj")},
    } for i in range(config.n_layer)]
    return {"wte": tensors["wte.weight"], "wpe": tensors["wpe.weight"], "blocks": blocks, "ln_f": norm("ln_f")}


def load_checkpoint(path) -> tuple[GPT2Config, dict]:
    """A model folder -> (config, nested float32 params)."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"model folder not found: {path}")
    config = read_config(path)
    return config, nest(read_tensors(path, config), config)


def save_checkpoint(path, config: GPT2Config, tensors: dict[str, np.ndarray], tokenizer=None,
                    eos_token_id: int | None = None) -> None:
    """Write config.json + model.safetensors (+ the tokenizer files) in the
    layout Hugging Face transformers loads as GPT2LMHeadModel."""
    from safetensors.numpy import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    eos = eos_token_id if eos_token_id is not None else config.vocab_size - 1
    hf_config = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "n_layer": config.n_layer, "n_head": config.n_head, "n_embd": config.n_embd,
        "n_positions": config.n_ctx, "n_ctx": config.n_ctx, "vocab_size": config.vocab_size,
        "layer_norm_epsilon": config.eps, "activation_function": "gelu_new",
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
        "bos_token_id": eos, "eos_token_id": eos, "tie_word_embeddings": True,
        "torch_dtype": "float32",
    }
    (path / "config.json").write_text(json.dumps(hf_config, indent=2) + "\n")
    flat = {"transformer." + k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    save_file(flat, str(path / "model.safetensors"), metadata={"format": "pt"})
    if tokenizer is not None:
        tokenizer.save(path)
