"""Train claude-rust-small: GPT-2 in PyTorch on the Rust corpus, then export it.

    pip install -e .[train]
    python scripts/train_model.py --corpus corpus --tokenizer data/claude-rust-small \
        --out runs/rust-small-2
    python scripts/train_model.py ... --resume          # continue from runs/rust-small-2/ckpt.pt
    python scripts/train_model.py ... --export-only     # write data/claude-rust-small from the checkpoint

The model is the architecture the NumPy reference computes (pre-norm blocks,
tanh GELU, biased-variance layer norm, causal attention, LM head tied to
wte), with Conv1D-style [in, out] weights so the export is a plain copy.
AdamW, linear warm-up then cosine decay to 10% over `--tokens`, a fixed seed,
a checkpoint every `--ckpt-minutes`, and a loss log (loss.csv) for the card.
"""

import argparse
import csv
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from inference.checkpoint import save_checkpoint
from inference.reference.model import GPT2Config
from inference.tokenizer import ENDOFTEXT, Tokenizer


class Conv1D(nn.Module):
    """A linear layer stored [in, out], as Hugging Face GPT-2 stores it."""

    def __init__(self, n_in, n_out, std=0.02):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_in, n_out) * std)
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).reshape(*x.shape[:-1], -1)


class Block(nn.Module):
    def __init__(self, c: GPT2Config):
        super().__init__()
        proj_std = 0.02 / math.sqrt(2 * c.n_layer)  # GPT-2's scaled init of residual projections
        self.n_head, self.eps = c.n_head, c.eps
        self.ln_1 = nn.LayerNorm(c.n_embd, eps=c.eps)
        self.c_attn = Conv1D(c.n_embd, 3 * c.n_embd)
        self.attn_proj = Conv1D(c.n_embd, c.n_embd, proj_std)
        self.ln_2 = nn.LayerNorm(c.n_embd, eps=c.eps)
        self.c_fc = Conv1D(c.n_embd, 4 * c.n_embd)
        self.mlp_proj = Conv1D(4 * c.n_embd, c.n_embd, proj_std)

    def forward(self, x):  # [B, T, C]
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=-1)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, c: GPT2Config):
        super().__init__()
        self.config = c
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.n_ctx, c.n_embd)
        nn.init.normal_(self.wte.weight, std=0.02)
        nn.init.normal_(self.wpe.weight, std=0.01)
        self.h = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd, eps=c.eps)

    def forward(self, ids):  # [B, T] -> [B, T, V]
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for block in self.h:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.T

    def hf_tensors(self) -> dict[str, np.ndarray]:
        """Our parameter names -> Hugging Face GPT-2 names."""
        rename = {".c_attn.": ".attn.c_attn.", ".attn_proj.": ".attn.c_proj.",
                  ".c_fc.": ".mlp.c_fc.", ".mlp_proj.": ".mlp.c_proj."}
        out = {}
        for name, p in self.state_dict().items():
            for ours, hf in rename.items():
                name = name.replace(ours, hf)
            out[name] = p.detach().cpu().float().numpy()
        return out


def load_tokens(corpus: Path, split: str, tokenizer: Tokenizer) -> np.ndarray:
    """All shards of a split as one uint16 array, cached beside the corpus."""
    cache = corpus / f"{split}-tokens-{tokenizer.vocab_size}.npy"
    if cache.is_file():
        return np.load(cache)
    ids = []
    for shard in sorted(corpus.glob(f"{split}-*.txt")):
        ids.extend(tokenizer.encode(shard.read_text(encoding="utf-8"), allowed_special={ENDOFTEXT}))
        print(f"tokenized {shard.name}: {len(ids):,} tokens so far", flush=True)
    arr = np.array(ids, dtype=np.uint16)
    np.save(cache, arr)
    return arr


def learning_rate(step, total_steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def batch(tokens, rng, batch_size, n_ctx):  # -> inputs, targets [B, n_ctx]
    starts = rng.integers(0, len(tokens) - n_ctx - 1, size=batch_size)
    rows = np.stack([tokens[s:s + n_ctx + 1] for s in starts]).astype(np.int64)
    rows = torch.from_numpy(rows)
    return rows[:, :-1], rows[:, 1:]


@torch.no_grad()
def validation_loss(model, tokens, n_ctx, n_windows=32):
    rng = np.random.default_rng(1234)  # the same windows every time
    x, y = batch(tokens, rng, n_windows, n_ctx)
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()


class LossLog:
    """loss.csv, kept up to the step a run starts from: rows a killed run wrote
    after its last checkpoint are dropped, since the resumed run computes those steps again."""

    def __init__(self, path: Path, step: int):
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = list(csv.reader(path.open(newline=""))) if step and path.is_file() else []
        rows = rows[:1] + [row for row in rows[1:] if int(row[0]) <= step]
        with path.open("w", newline="") as f:
            csv.writer(f).writerows(rows or [["step", "tokens", "seconds", "train_loss", "val_loss"]])
        self.file = path.open("a", newline="")

    def write(self, row: list) -> None:
        csv.writer(self.file).writerow(row)
        self.file.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("corpus"))
    ap.add_argument("--tokenizer", type=Path, default=Path("data/claude-rust-small"))
    ap.add_argument("--out", type=Path, default=Path("runs/rust-small-2"))
    ap.add_argument("--export", type=Path, default=Path("data/claude-rust-small"))
    ap.add_argument("--n-layer", type=int, default=6)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--n-ctx", type=int, default=512)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--tokens", type=float, default=30e6, help="tokens the schedule spans")
    ap.add_argument("--minutes", type=float, default=1e9, help="stop (and export) after this long")
    ap.add_argument("--steps-this-run", type=int, default=0, help="stop (and export) after this many steps (0: no limit)")
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export-only", action="store_true")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = Tokenizer.from_dir(args.tokenizer)
    eos = tokenizer.special_tokens[ENDOFTEXT]
    config = GPT2Config(args.n_layer, args.n_head, args.n_embd, args.n_ctx, tokenizer.vocab_size)
    model = GPT2(config)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    step, rng, elapsed, smooth = 0, np.random.default_rng(args.seed), 0.0, None
    ckpt = args.out / "ckpt.pt"
    if args.resume or args.export_only:
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, elapsed, smooth = state["step"], state["elapsed"], state.get("smooth")
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed from {ckpt} at step {step}")

    def save():
        args.out.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "elapsed": elapsed,
                    "smooth": smooth, "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                    "config": vars(config)}, ckpt.with_suffix(".tmp"))
        ckpt.with_suffix(".tmp").replace(ckpt)  # a run killed mid-save keeps the previous checkpoint

    def export():
        save_checkpoint(args.export, config, model.hf_tensors(), tokenizer, eos_token_id=eos)
        if (args.out / "loss.csv").is_file():  # the model card's loss curve is drawn from it
            shutil.copy(args.out / "loss.csv", args.export / "loss.csv")
        print(f"exported {sum(p.numel() for p in model.parameters()):,} parameters to {args.export}")

    if args.export_only:
        return export()

    train = load_tokens(args.corpus, "train", tokenizer)
    val = load_tokens(args.corpus, "val", tokenizer)
    tokens_per_step = args.batch * args.n_ctx
    total_steps = int(args.tokens // tokens_per_step)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params:,} parameters; {len(train):,} train tokens; {total_steps} steps of {tokens_per_step}")

    log = LossLog(args.out / "loss.csv", step)
    t_start, t_ckpt = time.perf_counter() - elapsed, time.perf_counter()
    model.train()
    last_step = min(total_steps, step + args.steps_this_run) if args.steps_this_run else total_steps
    while step < last_step:
        lr = learning_rate(step, total_steps, args.lr, args.warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = batch(train, rng, args.batch, args.n_ctx)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        elapsed = time.perf_counter() - t_start
        smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
        tps = step * tokens_per_step / elapsed
        if step % 10 == 0 or step == total_steps:
            done = step / total_steps
            bar = "#" * int(30 * done) + "-" * (30 - int(30 * done))
            eta = (total_steps - step) * tokens_per_step / tps / 60
            sys.stdout.write(f"\r[{bar}] step {step}/{total_steps} loss {smooth:.3f} lr {lr:.2e} "
                             f"{tps:,.0f} tok/s eta {eta:.0f} min ")
            sys.stdout.flush()
        if step % 100 == 0 or step == total_steps:
            model.eval()
            vl = validation_loss(model, val, args.n_ctx)
            model.train()
            log.write([step, step * tokens_per_step, round(elapsed, 1), round(smooth, 4), round(vl, 4)])
            print(f"\nstep {step}: val loss {vl:.3f}", flush=True)
        if time.perf_counter() - t_ckpt > args.ckpt_minutes * 60:
            save()
            t_ckpt = time.perf_counter()
        if elapsed > args.minutes * 60:
            print(f"\nstopping after {args.minutes} minutes (resume with --resume)")
            break
    save()
    export()


if __name__ == "__main__":
    main()
