"""scripts/bench_kernels.py runs every step (each kernel version beside
PyTorch, then decode on both backends and in PyTorch) at --smoke sizes: on a
GPU for real, under the simulator as a check of the script itself."""

import importlib.util
import re
from pathlib import Path

import pytest

from inference.kernels.common import SIMULATOR

pytest.importorskip("torch", reason="the benchmark compares with PyTorch: pip install -e .[train]")
pytest.importorskip("transformers", reason="the decode comparison runs the weights in transformers")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_kernels.py"


def test_smoke_run_prints_every_row(capsys, monkeypatch, tiny_model_dir):
    """On a small random model: under the simulator each step of the shipped one takes many seconds."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # as `python scripts/bench_kernels.py` has it, for its imports
    spec = importlib.util.spec_from_file_location("bench_kernels", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--smoke", "--model", str(tiny_model_dir)])
    out = capsys.readouterr().out
    from inference.kernels import attention, gelu, layernorm, matmul, softmax
    for name, module in [("layer_norm", layernorm), ("gelu", gelu), ("softmax", softmax), ("linear", matmul),
                         ("attention", attention)]:
        for v in module.VERSIONS:
            assert f"| {name} v{v} |" in out
    assert "| sample (" in out and "| paged_attention (decode rows) |" in out
    assert "| sample_batch, the whole launch: settings up, ids back |" in out
    assert len(re.findall(r"^\| sample_batch, its kernel alone \| N=\d+ ", out, re.M)) == 2, out
    assert "| requests at once | tokens/s | vs one |" in out
    launches = re.findall(r"^\| (one sequence \(CudaSession\)|engine, 1 row|engine, 2 rows) \| (\d+) \|", out, re.M)
    assert len(launches) == 3 and all(int(n) > 0 for _, n in launches), out
    no_graphs = "not tried: the simulator has no CUDA graphs"
    graphs = re.findall(rf"^\| engine, (?:1 row|2 rows) \| .* \| (yes|NO|{no_graphs}) \|$", out, re.M)
    assert graphs == ([no_graphs] * 2 if SIMULATOR else ["yes", "yes"]), out  # the graph's logits are the launched ones
    for backend in ("inference, cuda backend", "inference, cpu backend", "PyTorch eager (HF)"):
        assert f"| {backend}" in out
