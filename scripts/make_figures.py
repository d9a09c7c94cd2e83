"""Draw the pictures in docs/ and the model card from the real code and the shipped model.

    pip install -e .[train]       # matplotlib
    python scripts/make_figures.py [--model data/claude-rust-small] [--out docs/figures]

gelu.png         the reference GELU beside ReLU
attention.png    attention weights of every head of one layer of the model on a Rust snippet
matmul_tiles.png which block and which thread compute which part of out in the tiled matmul (v2)
sampling.png     the next-token distribution after a prompt, and what top-k / top-p keep
paged_pool.png   tutorial 8's three requests in a pool of 12 blocks: their block tables, a shared prefix
loss.png         the training loss curve from the model folder's loss.csv (into the model folder)
"""

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from inference import Settings, load_model  # noqa: E402
from inference.engine.blocks import BlockManager  # noqa: E402
from inference.engine.request import Request  # noqa: E402
from inference.engine.scheduler import Scheduler  # noqa: E402
from inference.reference import layers  # noqa: E402
from inference.reference.model import KVCache  # noqa: E402
from inference.reference.sampling import Pick, top_k_mask, top_p_mask  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SNIPPET = "fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n\nfn main() {\n    let x = add(1, 2);\n"


def gelu_figure(out):
    x = np.linspace(-4, 4, 401, dtype=np.float32)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(x, layers.gelu(x), label="GELU (tanh form): reference.layers.gelu")
    ax.plot(x, np.maximum(x, 0), "--", label="ReLU: max(x, 0)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("x")
    ax.set_title("GELU is a smooth ReLU that lets small negatives through")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "gelu.png", dpi=120)


def attention_weights(model, ids, layer):  # -> [H, T, T] softmax weights of one layer
    """The reference forward pass, stopped at one layer to keep its attention."""
    p, c = model.params, model.config
    x = layers.embedding(p["wte"], p["wpe"], np.asarray(ids), np.arange(len(ids)))
    for i, blk in enumerate(p["blocks"]):
        if i == layer:
            h = layers.layer_norm(x, **blk["ln_1"], eps=c.eps)
            q, k, _ = np.split(layers.linear(h, **blk["attn"]["c_attn"]), 3, axis=-1)
            qh, kh = layers.split_heads(q, c.n_head), layers.split_heads(k, c.n_head)
            scores = qh @ kh.transpose(0, 2, 1) / np.sqrt(qh.shape[-1]) + layers.causal_mask(len(ids), len(ids))
            return layers.softmax(scores)
        cache = KVCache(c)
        x = layers.block(x, blk["ln_1"], blk["attn"], blk["ln_2"], blk["mlp"], c.n_head, c.eps,
                         cache.k[i], cache.v[i], 0)
    raise ValueError(f"the model has {c.n_layer} layers")


def attention_figure(model, out, layer):
    ids = model.tokenizer.encode(SNIPPET)
    weights = attention_weights(model, ids, layer)
    labels = [model.tokenizer.decode([i]).replace("\n", "\\n") for i in ids]
    H = weights.shape[0]
    fig, axes = plt.subplots(1, H, figsize=(4.2 * H, 4.6))
    for h, ax in enumerate(np.atleast_1d(axes)):
        ax.imshow(weights[h], cmap="viridis")
        ax.set_title(f"layer {layer}, head {h}")
        ax.set_xticks(range(len(ids)))
        ax.set_yticks(range(len(ids)))
        ax.set_xticklabels(labels, rotation=90, fontsize=5, family="monospace")
        ax.set_yticklabels(labels, fontsize=5, family="monospace")
        ax.set_xlabel("key (attended to)")
    np.atleast_1d(axes)[0].set_ylabel("query (attending)")
    fig.suptitle(f"{model.name}: attention weights on a Rust snippet (row = one query; the upper "
                 "triangle is the causal mask)")
    fig.tight_layout()
    fig.savefig(out / "attention.png", dpi=130)


def matmul_tiles_figure(out, tile=16):
    """out [48 x 64] in 16 x 16 tiles: one block per tile; inside, thread (tx, ty) owns one element."""
    N, M = 48, 64
    fig, ax = plt.subplots(figsize=(7, 5.6))
    colors = plt.cm.Pastel1(np.arange(12) % 9)
    for by in range(N // tile):
        for bx in range(M // tile):
            ax.add_patch(plt.Rectangle((bx * tile, by * tile), tile, tile, facecolor=colors[by * 4 + bx],
                                       edgecolor="black", lw=1.5))
            ax.text(bx * tile + tile / 2, by * tile + 4, f"block ({bx}, {by})", ha="center", va="center")
    ax.add_patch(plt.Rectangle((1 * tile + 5, 1 * tile + 9), 1, 1, facecolor="crimson"))
    ax.annotate("thread (tx=5, ty=9) of block (1, 1):\nout[1*16+9, 1*16+5], summed over k\nfrom the x and w tiles "
                "in shared memory", xy=(tile + 5.5, tile + 9.5), xytext=(30, 45),
                arrowprops=dict(arrowstyle="->"), fontsize=8,
                bbox=dict(facecolor="white", edgecolor="grey", alpha=0.95))
    for k in range(0, M + 1, 1):
        ax.axvline(k, color="grey", lw=0.1)
    ax.set_xlim(0, M)
    ax.set_ylim(N, 0)
    ax.set_xlabel("column c of out  (blockIdx.x * 16 + threadIdx.x)")
    ax.set_ylabel("row r of out  (blockIdx.y * 16 + threadIdx.y)")
    ax.set_title("linear v2: one 16 x 16 block of threads per 16 x 16 tile of out")
    fig.tight_layout()
    fig.savefig(out / "matmul_tiles.png", dpi=120)


def sampling_figure(model, out, top_k=40, top_p=0.9, temperature=0.7):
    prompt = "fn main() {\n    let mut v = Vec::new();\n    v."
    cache = KVCache(model.config)
    from inference.reference.model import forward_last
    logits = forward_last(model.params, model.config, model.tokenizer.encode(prompt), cache)
    w = np.exp((logits - logits.max()) / np.float32(temperature))
    p = w / w.sum()
    order = np.argsort(-p)[:60]
    k_kept = top_k_mask(w, top_k)
    p_kept = k_kept & top_p_mask(w, k_kept, top_p)
    colors = ["tab:green" if p_kept[i] else ("tab:orange" if k_kept[i] else "lightgrey") for i in order]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(range(len(order)), p[order], color=colors)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([repr(model.tokenizer.decode([int(i)]))[1:-1] for i in order], rotation=90,
                       fontsize=6, family="monospace")
    ax.set_ylabel(f"probability (temperature {temperature})")
    ax.set_title(f"next token after {prompt[-14:]!r}: green = kept by top-k {top_k} and top-p {top_p} "
                 f"({p[p_kept].sum():.0%} of the mass), orange = cut by top-p, grey = cut by top-k")
    ax.title.set_fontsize(8)
    fig.tight_layout()
    fig.savefig(out / "sampling.png", dpi=120)


def loss_figure(model_dir):
    rows = list(csv.DictReader((model_dir / "loss.csv").open()))
    tokens = [int(r["tokens"]) / 1e6 for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(tokens, [float(r["train_loss"]) for r in rows], label="train (smoothed)")
    ax.plot(tokens, [float(r["val_loss"]) for r in rows], label="validation")
    ax.set_xlabel("training tokens (millions)")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(f"{model_dir.name}: loss while training")
    ax.legend()
    fig.tight_layout()
    fig.savefig(model_dir / "loss.png", dpi=120)


def paged_requests(model):
    """Tutorial 8's example, through the real scheduler and block manager: A and B
    prefilled in one step and given a token each, then C, whose prompt starts as
    A's does. -> (the block manager, {name: request}) after C's step is scheduled."""
    tok, n_ctx = model.tokenizer, model.config.n_ctx
    blocks = BlockManager(n_blocks=12, block_size=4)
    scheduler = Scheduler(blocks, max_batch=4, max_step_tokens=64, max_waiting=4)
    shared = "use std::collections::HashMap;\n\n"
    a = Request(tok.encode(shared + "fn count(words: &[&str]) -> usize {"), Settings(), tok, n_ctx)
    b = Request(tok.encode("let total: u32 = 0;"), Settings(), tok, n_ctx)
    scheduler.waiting.extend([a, b])
    scheduler.finish_step(scheduler.schedule(), [Pick(42), Pick(43)])
    c = Request(tok.encode(shared + "fn main() {"), Settings(), tok, n_ctx)
    scheduler.waiting.append(c)
    scheduler.schedule()
    return blocks, {"A": a, "B": b, "C": c}


def paged_pool_figure(model, out):
    """The pool's blocks (each a column of block_size slots, slot 0 on top, filled where a
    position's key and value are), and each request's block table pointing into it; C shares
    A's first blocks."""
    blocks, requests = paged_requests(model)
    B, colors = blocks.block_size, {"A": "#8dd3c7", "B": "#fdb462", "C": "#bebada"}
    filled = {(r.block_table[p // B], p % B) for r in requests.values() for p in range(len(r.tokens))}
    fig, ax = plt.subplots(figsize=(10, 3.8))
    pool_y, width = 3.2, 1.0
    for block in range(blocks.n_blocks):  # the pool: one column of B slots per block
        users = [name for name, r in requests.items() if block in r.block_table]
        x = block * (width + 0.25)
        for slot in range(B):
            ax.add_patch(plt.Rectangle((x, pool_y + (B - 1 - slot) * 0.3), width, 0.3, edgecolor="black", lw=0.6,
                                       facecolor=colors[users[0]] if (block, slot) in filled else "white",
                                       hatch="//" if len(users) > 1 else None))
        ax.text(x + width / 2, pool_y - 0.25, str(block), ha="center", va="center", fontsize=9)
        label = "+".join(users) if users else "free"
        ax.text(x + width / 2, pool_y + B * 0.3 + 0.2, label, ha="center", va="center", fontsize=8)
    ax.text(-0.3, pool_y + B * 0.15, f"pool\n({B} slots\na block)", ha="right", va="center", fontsize=9)
    table_x, cell, y = 0.3, 0.7, 0.6
    for name, r in requests.items():  # the block tables side by side, and where each entry points
        ax.text(table_x, y - 0.3, f"{name}'s block table: {len(r.tokens)} positions" + (
            f",\n{r.cached_tokens} of them found cached" if r.cached_tokens else ""), va="top", fontsize=8)
        for i, block in enumerate(r.block_table):
            x = table_x + i * cell
            ax.add_patch(plt.Rectangle((x, y), cell, 0.4, facecolor=colors[name], edgecolor="black", lw=0.6))
            ax.text(x + cell / 2, y + 0.2, str(block), ha="center", va="center", fontsize=8)
            ax.annotate("", xy=(block * (width + 0.25) + width / 2, pool_y - 0.45), xytext=(x + cell / 2, y + 0.4),
                        arrowprops=dict(arrowstyle="->", color=colors[name], lw=1.2))
        table_x += len(r.block_table) * cell + 1.2
    ax.set_xlim(-2.6, blocks.n_blocks * (width + 0.25))
    ax.set_ylim(-0.4, pool_y + B * 0.3 + 0.5)
    ax.axis("off")
    ax.set_title("block tables over the pool: position p is slot p % 4 of block table[p // 4] "
                 "(hatched: a block two requests share)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "paged_pool.png", dpi=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "data" / "claude-rust-small")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    ap.add_argument("--layer", type=int, default=1)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, device="cpu")
    gelu_figure(args.out)
    attention_figure(model, args.out, args.layer)
    matmul_tiles_figure(args.out)
    sampling_figure(model, args.out)
    paged_pool_figure(model, args.out)
    if (args.model / "loss.csv").is_file():
        loss_figure(args.model)
    print(f"figures written to {args.out}")


if __name__ == "__main__":
    main()
