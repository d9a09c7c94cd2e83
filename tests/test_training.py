"""scripts/train_model.py resumes exactly: a run stopped and resumed from its
checkpoint ends with the same weights, optimizer state and loss log as one
that never stopped (PyTorch on the CPU, one thread: deterministic)."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "data" / "claude-rust-small"
SAMPLE = ROOT / "tests" / "data" / "rust_sample.rs"


def train(corpus, out, *extra):
    args = [sys.executable, str(ROOT / "scripts" / "train_model.py"), "--corpus", str(corpus),
            "--tokenizer", str(SHIPPED), "--out", str(out), "--export", str(out / "export"),
            "--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--n-ctx", "32", "--batch", "4",
            "--tokens", str(4 * 32 * 120), "--warmup", "10", "--threads", "1", *extra]
    subprocess.run(args, check=True, capture_output=True, cwd=ROOT, timeout=600)


def loss_rows(out):  # the log without its wall-clock column
    return [row[:2] + row[3:] for row in csv.reader((out / "loss.csv").open())]


def test_a_resumed_run_ends_where_an_unbroken_one_does(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = SAMPLE.read_text(encoding="utf-8")
    (corpus / "train-000.txt").write_text(text[: len(text) * 3 // 4], encoding="utf-8")
    (corpus / "val-000.txt").write_text(text[len(text) * 3 // 4:], encoding="utf-8")
    train(corpus, tmp_path / "whole")
    train(corpus, tmp_path / "broken", "--steps-this-run", "70")  # stops after step 70, checkpointed
    with (tmp_path / "broken" / "loss.csv").open("a") as log:  # as if it had been killed later, after
        log.write("100,12800,1.0,9.9,9.9\n")                   # logging a step its checkpoint does not hold
    train(corpus, tmp_path / "broken", "--resume")

    whole, broken = (torch.load(tmp_path / run / "ckpt.pt", weights_only=False) for run in ("whole", "broken"))
    assert whole["step"] == broken["step"] == 120
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, broken["model"][name]), name
    for a, b in zip(whole["opt"]["state"].values(), broken["opt"]["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in ("exp_avg", "exp_avg_sq"))
    assert loss_rows(tmp_path / "whole") == loss_rows(tmp_path / "broken")
    assert [row[0] for row in loss_rows(tmp_path / "whole")] == ["step", "100", "120"]
