"""The cpu-numba backend: the engine's step compiled, its products included.
Its logits against the NumPy reference's (float32 rounding, not bits), its
tokens against the reference's, its batch invariance bit for bit, and its
sampling against reference.sampling's rules."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import njit

from inference import backends, load_model
from inference.backends import DeviceError, numba_cpu
from inference.backends.numba_cpu import (COLUMNS, PANEL, choose_rows, exp32, kth_largest, panels_of, rows_times,
                                          rows_times_on_all_cores, sample_row, top_k_ids)
from inference.backends.vectors import LANES, fma, load, prefetch, splat, store
from inference.reference.paged import Chunk, batch_hidden_states, batch_lm_head
from inference.reference.sampling import Penalties, Sampling, choose, penalize, sample
from test_sampling_kernel import near_a_boundary

RNG = np.random.default_rng(5)
GREEDY = Sampling(0.0, 0, 1.0, 0.5)


def compiled_sample(logits, temperature, top_k, top_p, coin, min_p=0.0) -> int:
    """reference.sampling.sample's signature: one row through cpu-numba's sampler (choose_rows)."""
    return choose_rows(logits[None].copy(), [Sampling(temperature, top_k, top_p, coin, min_p)])[0].id


@pytest.fixture(scope="module")
def compiled(tiny_model_dir):
    return load_model(tiny_model_dir, device="cpu-numba")


def some_ids(model, *lengths):
    return [RNG.integers(0, model.config.vocab_size, size=n).tolist() for n in lengths]


def nan_pool(model, n_blocks=8, block_size=8):
    pool = model.new_kv_pool(n_blocks, block_size)
    pool.k[:] = pool.v[:] = np.nan  # a slot read before it is written poisons the answer
    return pool


def test_logits_match_the_reference_over_chunks_and_scattered_blocks(tiny_model, compiled):
    """Two sequences side by side, prompts cut into chunks that end mid-block,
    blocks out of order: each chunk's last logits within float32 rounding of
    the NumPy step's, which is the reference model's bit for bit."""
    seqs, tables = some_ids(tiny_model, 21, 9), [[6, 1, 3], [0, 4]]
    pools = nan_pool(tiny_model), nan_pool(compiled)
    for start, end in ((0, 5), (5, 13), (13, 21)):
        chunks = [Chunk(ids[start:end], start, table, GREEDY) for ids, table in zip(seqs, tables) if start < len(ids)]
        hidden = batch_hidden_states(tiny_model.params, tiny_model.config, pools[0], chunks)
        want = batch_lm_head(hidden[np.cumsum([len(c.ids) for c in chunks]) - 1], tiny_model.params["wte"])
        got = compiled.batch_logits(pools[1], chunks)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_a_row_is_the_same_bits_alone_in_a_batch_and_token_by_token(compiled):
    seqs, tables = some_ids(compiled, 9, 17, 3), [[5, 1], [0, 7, 3], [6]]
    alone = [compiled.batch_logits(nan_pool(compiled), [Chunk(ids, 0, table, GREEDY)])[0]
             for ids, table in zip(seqs, tables)]
    together = compiled.batch_logits(nan_pool(compiled), [Chunk(ids, 0, t, GREEDY) for ids, t in zip(seqs, tables)])
    for got, want in zip(together, alone):
        assert np.array_equal(got, want)
    shared = nan_pool(compiled)
    for t in range(len(seqs[1])):  # sequence 1 one token a step, sequence 0 beside it while it lasts
        chunks = [Chunk(seqs[1][t:t + 1], t, tables[1], GREEDY)]
        if t < len(seqs[0]):
            chunks.append(Chunk(seqs[0][t:t + 1], t, tables[0], GREEDY))
        logits = compiled.batch_logits(shared, chunks)
        if t == len(seqs[0]) - 1:
            assert np.array_equal(logits[1], alone[0])
    assert np.array_equal(logits[0], alone[1])


@pytest.mark.parametrize("n_in, n_out", [(256, 768), (1024, 256), (256, 4096), (24, 5), (3, 37)])
def test_rows_times_matches_float64_and_gives_a_row_the_same_bits_in_any_company(n_in, n_out):
    """The compiled product at the shipped model's widths (and small odd
    ones: a last panel part empty): each output within float32 rounding of
    float64's, and every row's bits the same among 1 to 19 rows (tiles of
    eight, four and the rows left over) as alone, on one core and with the
    panels shared among the cores."""
    w_t = RNG.standard_normal((n_out, n_in)).astype(np.float32)  # [n_out, n_in]
    x = RNG.standard_normal((19, n_in)).astype(np.float32)
    panels = panels_of(w_t)
    alone = np.concatenate([rows_times(x[i:i + 1], panels, np.empty((1, n_out), np.float32), 1) for i in range(19)])
    want = x.astype(np.float64) @ w_t.T.astype(np.float64)
    assert np.allclose(alone, want, rtol=1e-4, atol=1e-4 * np.sqrt(n_in))
    for times in rows_times, rows_times_on_all_cores:
        for tile_rows in 1, 4, 8:
            for n in range(1, 20):
                out = np.full((n + 1, n_out), np.nan, np.float32)  # a row past the end, to show no lane spills into it
                together = times(x[:n], panels, out[:n], tile_rows)
                assert np.array_equal(together, alone[:n])
                assert np.isnan(out[n]).all()


def test_a_product_with_a_gelu_bias_is_gelu_of_the_product_plus_bias_to_float32_rounding():
    """c_fc's product takes its bias and GELU into each task: the result
    within float32 rounding of float64's gelu(x @ w + b), and the same bits
    on one core as on all of them, for every row in any company."""
    n_in, n_out = 256, 1024 + 24  # a last task of one and a half panels
    w_t = RNG.standard_normal((n_out, n_in)).astype(np.float32) / 16
    x, bias = RNG.standard_normal((11, n_in)).astype(np.float32), RNG.standard_normal(n_out).astype(np.float32)
    v = x.astype(np.float64) @ w_t.T.astype(np.float64) + bias
    want = 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v ** 3)))
    alone = rows_times(x, panels_of(w_t), np.empty((11, n_out), np.float32), 8, bias)
    np.testing.assert_allclose(alone, want, rtol=1e-4, atol=1e-4)
    for n in 1, 5, 11:
        out = np.full((n, n_out), np.nan, np.float32)
        assert np.array_equal(rows_times_on_all_cores(x[:n], panels_of(w_t), out, 8, bias), alone[:n])


@njit
def multiply_add_rows(x, w, c, out):  # out[j:j + LANES] = x[j // LANES] * w[j:j + LANES] + c[j:j + LANES], by vectors
    for j in range(0, out.shape[0], LANES):
        store(out, j, fma(splat(x[j // LANES]), load(w, j), load(c, j)))


def test_vectors_multiply_and_add_each_lane_rounding_once_and_store_only_the_lanes_that_fit():
    x, w, c = (RNG.standard_normal(n).astype(np.float32) for n in (3, 3 * LANES, 3 * LANES))
    out = np.full(3 * LANES, np.nan, np.float32)
    multiply_add_rows(x, w, c, out[:3 * LANES - 3])  # the last vector's last 3 lanes fall past the end
    # float64 holds x * w exactly; the sum then rounds once to float32 (rounding twice, to float64 first, errs
    # only for sums within 2^-29 of a tie: none in these)
    want = (np.repeat(x, LANES).astype(np.float64) * w + c).astype(np.float32)
    assert np.array_equal(out[:-3], want[:-3])
    assert np.isnan(out[-3:]).all()


@njit
def prefetched_sum(row, ahead):  # row.sum(), asking for row[i + ahead] at each i, past the end too
    total = np.float32(0)
    for i in range(row.shape[0]):
        prefetch(row, i + ahead)
        total += row[i]
    return total


def test_a_prefetch_is_only_a_hint_and_never_faults_even_far_past_the_end():
    """The products and the attention ask for memory ahead of their reads, up
    to the end of a panel or a row and beyond: a hint that reads nothing the
    program sees, and cannot fail, even 1 GB past the end of the array."""
    row = RNG.standard_normal(1000).astype(np.float32)
    for ahead in (0, 32, 1 << 28):
        assert prefetched_sum(row, ahead) == prefetched_sum(row, 0)
    assert prefetched_sum(row, 0) == np.cumsum(row)[-1]  # the same float32 sum, in the same order


def test_panels_hold_each_output_s_weights_in_k_order():
    w_t = np.arange(3 * (PANEL + 4), dtype=np.float32).reshape(PANEL + 4, 3)  # [n_out, n_in]
    panels = panels_of(w_t)  # [2, 3 * PANEL]: the first PANEL outputs, then the last 4 and zero outputs
    assert panels.shape == (2, 3 * PANEL)
    assert np.array_equal(panels[0].reshape(3, PANEL), w_t[:PANEL].T)
    assert np.array_equal(panels[1].reshape(3, PANEL)[:, :4], w_t[PANEL:].T)
    assert not panels[1].reshape(3, PANEL)[:, 4:].any()


def test_the_shipped_model_computes_on_all_cores_here(shipped_model_dir):
    """On the machine the tests run on, Numba has a thread pool that serves
    (OpenMP here) and compiles the parallel loops to the same sums; were it
    not so, cpu-numba would run on one core."""
    model = load_model(shipped_model_dir, device="cpu-numba")
    assert model.tile_rows in (4, 8)
    assert model.on_all_cores or model.cores == 1


def test_a_step_on_all_cores_gives_each_sequence_its_bits_alone_on_one_core(shipped_model_dir):
    """Prompts of several lengths in one step (57 rows: products in tiles of rows and
    the attention's rows shared among the cores), then a decode step of the
    five: each sequence's logits the same bits as alone on one core."""
    model = load_model(shipped_model_dir, device="cpu-numba")
    if not model.on_all_cores:
        pytest.skip("cpu-numba runs on one core here")
    seqs = some_ids(model, 20, 3, 11, 7, 16)
    chunks = [Chunk(ids, 0, [i], GREEDY) for i, ids in enumerate(seqs)]
    decode = [Chunk([7], len(ids), [i], GREEDY) for i, ids in enumerate(seqs)]
    model.on_all_cores = False
    alone = []
    for prompt, token in zip(chunks, decode):
        pool = model.new_kv_pool(8, 32)
        alone.append((model.batch_logits(pool, [prompt])[0], model.batch_logits(pool, [token])[0]))
    model.on_all_cores = True
    pool = model.new_kv_pool(8, 32)
    prompts, tokens = model.batch_logits(pool, chunks), model.batch_logits(pool, decode)
    for (prompt_logits, token_logits), got_prompt, got_token in zip(alone, prompts, tokens):
        assert np.array_equal(got_prompt, prompt_logits)
        assert np.array_equal(got_token, token_logits)


def step_changed(when, change):  # step_logits, its logits changed where when(tile_rows, all_cores)
    step_logits = numba_cpu.step_logits

    def changed(*args):
        logits = step_logits(*args)
        if when(*args[-2:]):
            change(logits)
        return logits
    return changed


def one_step_off(logits):  # as a different order of sums leaves many of them
    logits[:] = np.nextafter(logits, np.float32(np.inf))


# In a fresh process whose Numba has 4 threads (more than the cores here): steps from two threads in turn,
# each thread's own thread count after its step
STEPS_FROM_TWO_THREADS = """
import sys, threading, numba
from inference import load_model
from inference.reference.paged import Chunk
from inference.reference.sampling import Sampling
model = load_model(sys.argv[1], device="cpu-numba")
counts = []

def step():
    chunks = [Chunk([1, 2, 3, 4, 5], 0, [block], Sampling(1.0, 0, 1.0, 0.5)) for block in (0, 1)]
    model.step_batch(model.new_kv_pool(4, 16), chunks)
    counts.append(numba.get_num_threads())

for _ in range(2):
    thread = threading.Thread(target=step)
    thread.start()
    thread.join()
print(model.cores, model.on_all_cores, *counts)
"""


def test_every_thread_that_steps_keeps_to_the_cores_allowed(tiny_model_dir):
    """Numba's thread count is each calling thread's own: the model sets it once
    in each thread that steps, not once for all (a second thread would start as
    many threads as Numba has, more than the cores allowed)."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core: the model keeps to it and sets no thread count")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    result = subprocess.run([sys.executable, "-c", STEPS_FROM_TWO_THREADS, str(tiny_model_dir)],
                            capture_output=True, text=True, timeout=300, env={**env, "NUMBA_NUM_THREADS": "4"})
    assert result.returncode == 0, result.stderr
    cores = min(4, len(os.sched_getaffinity(0)))
    assert result.stdout.split() == [str(cores), "True", str(cores), str(cores)]


def test_the_model_keeps_to_one_core_where_all_cores_would_change_the_bits(shipped_model_dir, monkeypatch):
    """The check at load compares a small step on all cores with one core:
    logits one float32 step off on all cores are caught."""
    model = load_model(shipped_model_dir, device="cpu-numba")
    if not model.on_all_cores:
        pytest.skip("cpu-numba runs on one core here")
    monkeypatch.setattr(numba_cpu, "step_logits", step_changed(lambda tile_rows, all_cores: all_cores, one_step_off))
    assert not model.all_cores_serve()


def test_the_model_keeps_to_one_core_where_its_parallel_loops_fail(shipped_model_dir, monkeypatch, caplog):
    model = load_model(shipped_model_dir, device="cpu-numba")

    def fails(logits):
        raise RuntimeError("a parallel loop failed")

    monkeypatch.setattr(numba_cpu, "step_logits", step_changed(lambda tile_rows, all_cores: all_cores, fails))
    assert not model.all_cores_serve()
    assert "cpu-numba keeps to one core" in caplog.text


def test_a_thread_pool_that_cannot_be_loaded_is_a_clear_error_at_load(shipped_model_dir, monkeypatch):
    """What Numba raises when the first step compiles, where
    NUMBA_THREADING_LAYER asks for a thread pool it cannot load."""
    def no_thread_pool(*args):
        raise ValueError("No threading layer could be loaded.")

    monkeypatch.setattr(numba_cpu, "step_logits", no_thread_pool)
    with pytest.raises(DeviceError, match="cpu-numba cannot compile its loops: No threading layer"):
        load_model(shipped_model_dir, device="cpu-numba")


def test_auto_loads_on_cpu_numba_without_a_gpu_and_on_cpu_where_its_loops_fail(tiny_model_dir, monkeypatch, caplog):
    monkeypatch.setattr(backends, "real_gpu_available", lambda: False)
    assert load_model(tiny_model_dir, device="auto").device == "cpu-numba"

    def no_thread_pool(*args):
        raise ValueError("No threading layer could be loaded.")

    monkeypatch.setattr(numba_cpu, "step_logits", no_thread_pool)
    model = load_model(tiny_model_dir, device="auto")
    assert model.device == "cpu" and model.forward([1, 2]).shape == (2, model.config.vocab_size)
    assert "device auto: cpu-numba cannot run here (DeviceError: cpu-numba cannot compile its loops" in caplog.text


def test_auto_says_why_a_gpu_that_is_here_goes_unused(tiny_model_dir, monkeypatch, caplog):
    """A GPU machine where numba-cuda cannot load (its CUDA libraries not installed): cpu-numba,
    and a warning that says why and what to install, not silence."""
    monkeypatch.setattr(backends, "gpu_present", lambda: True)
    monkeypatch.setattr(backends, "simulating", lambda: False)
    monkeypatch.setitem(sys.modules, "numba.cuda", None)  # importing it fails, as without libcudart
    assert load_model(tiny_model_dir, device="auto").device == "cpu-numba"
    assert "device auto: a GPU is here, but numba-cuda cannot load (ModuleNotFoundError" in caplog.text
    assert "pip install -e '.[cuda]'" in caplog.text
    with pytest.raises(DeviceError, match=r"--device cuda was asked for, but numba-cuda cannot load"):
        load_model(tiny_model_dir, device="cuda")


# In the copy on the read-only file system: which package it imported, the device auto chose, one step
LOAD_WITH_NOWHERE_TO_CACHE = """
import sys, numpy as np, inference
from inference import load_model
from inference.reference.paged import Chunk
from inference.reference.sampling import Sampling
model = load_model(sys.argv[1], device="auto")
pick = model.step_batch(model.new_kv_pool(4, 16), [Chunk([1, 2, 3], 0, [0], Sampling(0.0, 0, 1.0, 0.5))])[0]
print(inference.__file__, model.device, pick.id)
"""


def test_cpu_numba_compiles_where_numba_has_nowhere_to_cache(tiny_model, tiny_model_dir, tmp_path):
    """As a container's arbitrary user meets it: the package owned by someone else, no writable
    home, no NUMBA_CACHE_DIR. Here a copy of it on a read-only mount (unshare's own mount
    namespace), HOME inside it. Numba's cache=True fails as the module is imported; the loops
    must compile instead, not leave the server on the NumPy path."""
    readonly = tmp_path / "readonly"
    shutil.copytree(Path(numba_cpu.__file__).parents[1], readonly / "inference",
                    ignore=shutil.ignore_patterns("__pycache__"))
    if subprocess.run(["unshare", "--mount", "mount", "--bind", "-o", "ro", str(readonly), str(readonly)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a read-only folder here (unshare --mount needs root)")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "NUMBA_ENABLE_CUDASIM")}
    env.update(HOME=str(readonly), PYTHONPATH=str(readonly))
    mount_and_load = f'mount --bind -o ro "$1" "$1" && exec "{sys.executable}" -c "$2" "$3"'
    result = subprocess.run(["unshare", "--mount", "sh", "-c", mount_and_load, "sh", str(readonly),
                             LOAD_WITH_NOWHERE_TO_CACHE, str(tiny_model_dir)],
                            capture_output=True, text=True, timeout=300, env=env, cwd=readonly)
    assert result.returncode == 0, result.stderr
    module, device, picked = result.stdout.split()
    assert Path(module).is_relative_to(readonly) and device == "cpu-numba"
    greedy = Chunk([1, 2, 3], 0, [0], Sampling(0.0, 0, 1.0, 0.5))
    assert int(picked) == tiny_model.step_batch(tiny_model.new_kv_pool(4, 16), [greedy])[0].id  # the reference's
    assert "Numba has nowhere to keep its compiled loops" in result.stderr


def test_penalties_min_p_and_logprobs_pick_what_the_reference_picks(tiny_model, compiled):
    """The same prompt through both backends' step, four ways of choosing."""
    ids = some_ids(tiny_model, 12)[0]
    rows = [Sampling(0.8, 0, 1.0, 0.3, min_p=0.1, penalties=Penalties.of(ids, 6, 1.3, 0.4, 0.2), logprobs=5),
            Sampling(0.0, 0, 1.0, 0.5, penalties=Penalties.of(ids, 10, 2.0, 0.0, 0.0), logprobs=0),
            Sampling(1.0, 40, 0.9, 0.7, min_p=0.05), Sampling(1.2, 0, 0.95, 0.1, logprobs=20)]
    for s in rows:
        want = tiny_model.step_batch(nan_pool(tiny_model), [Chunk(ids, 0, [2, 5], s)])[0]
        got = compiled.step_batch(nan_pool(compiled), [Chunk(ids, 0, [2, 5], s)])[0]
        assert got.id == want.id
        assert (got.logprob is None) == (want.logprob is None)
        if want.logprob is not None:
            assert got.logprob == pytest.approx(want.logprob, abs=1e-4)
            assert [i for i, _ in got.top] == [i for i, _ in want.top]


@pytest.mark.parametrize("temperature, top_k, top_p, min_p", [(1.0, 0, 1.0, 0.0), (0.7, 40, 0.9, 0.0),
                                                              (1.3, 5, 1.0, 0.1), (0.5, 0, 0.5, 0.0)])
def test_compiled_sampling_picks_what_the_rules_pick(temperature, top_k, top_p, min_p):
    logits = (RNG.standard_normal(4096) * 3).astype(np.float32)
    for coin in RNG.random(100, dtype=np.float32):
        want = sample(logits, temperature, top_k, top_p, coin, min_p)
        got = compiled_sample(logits, temperature, top_k, top_p, coin, min_p)
        assert got == want or (min_p == 0 and near_a_boundary(logits, temperature, top_k, top_p, coin)), coin


@pytest.mark.parametrize("all_cores", [False, True])
def test_a_batch_of_rows_is_chosen_as_each_row_alone(all_cores):
    """choose_rows over 24 rows of mixed settings (penalties, min_p, top-k,
    top-p, greedy, log-probabilities): each row's pick is the reference's
    choose of that row alone, its id bit for bit unless the coin falls near
    a boundary, and the same on one core as on all of them."""
    ids = RNG.integers(0, 4096, 30).tolist()
    kinds = [Sampling(0.8, 0, 1.0, 0, min_p=0.1, penalties=Penalties.of(ids, 10, 1.3, 0.4, 0.2), logprobs=5),
             Sampling(0.0, 0, 1.0, 0, penalties=Penalties.of(ids, 20, 2.0, 0.0, 0.0), logprobs=0),
             Sampling(1.0, 40, 0.9, 0), Sampling(1.2, 0, 0.95, 0, logprobs=3), Sampling(0.7, 5, 1.0, 0, min_p=0.05),
             Sampling(0.0, 0, 1.0, 0)]
    coins = RNG.random(24, dtype=np.float32)
    samplings = [kinds[r % len(kinds)]._replace(coin=float(coin)) for r, coin in enumerate(coins)]
    logits = (RNG.standard_normal((24, 4096)) * 3).astype(np.float32)
    got = choose_rows(logits.copy(), samplings, all_cores)
    assert got == choose_rows(logits.copy(), samplings, not all_cores)
    for row, s, pick in zip(logits, samplings, got):
        want = choose(row, s)
        seen = row if s.penalties is None else penalize(row, s.penalties)
        assert pick.id == want.id or (s.min_p == 0 and near_a_boundary(seen, s.temperature, s.top_k, s.top_p,
                                                                          s.coin))
        if want.logprob is not None and pick.id == want.id:
            assert pick.logprob == pytest.approx(want.logprob, abs=1e-5) and pick.top == want.top


@pytest.mark.parametrize("V, k", [(4096, 40), (4096, 1), (7, 7), (50, 3)])
def test_kth_largest_is_numpys_kth_largest_with_ties_and_infinities(V, k):
    for trial in range(20):
        values = RNG.integers(-5, 5, V).astype(np.float32)  # many ties
        if trial % 2:
            values = RNG.standard_normal(V).astype(np.float32)
            values[RNG.integers(0, V, 3)] = -np.inf
        assert kth_largest(values, k) == np.partition(values, V - k)[V - k]


@pytest.mark.parametrize("V, k", [(4096, 40), (4096, 1), (4096, COLUMNS), (4096, COLUMNS + 1), (4096 + 37, 40),
                                  (2 * COLUMNS - 1, 40), (50, 3), (7, 6)])
def test_top_k_ids_are_the_k_largest_values_and_their_ties_in_id_order(V, k):
    """Through the columns' maxima where the row is long enough (also with
    values left over past the last full row), and one row of columns where it
    is not or k is more than the columns: NumPy's k largest and their ties."""
    for trial in range(20):
        values = RNG.integers(-5, 5, V).astype(np.float32)  # many ties
        if trial % 2:
            values = (RNG.standard_normal(V) * 3).astype(np.float32)
            values[RNG.integers(0, V, 3)] = -np.inf
        lowest = np.partition(values, V - k)[V - k]
        assert np.array_equal(top_k_ids(values, k), np.nonzero(values >= lowest)[0])


@njit
def exp32_of(x):  # [n] float32 -> [n], exp32 in a compiled loop, as the step calls it
    out = np.empty_like(x)
    for j in range(x.shape[0]):
        out[j] = exp32(x[j])
    return out


def test_exp32_is_within_two_units_in_the_last_place_of_float64s_exp():
    x = np.concatenate([np.linspace(-87.3, 88.72, 2_000_001, dtype=np.float32),  # normal results
                        RNG.uniform(-1, 1, 100_000).astype(np.float32)])
    want = np.exp(x.astype(np.float64))
    ulp = np.spacing(want.astype(np.float32)).astype(np.float64)  # float32's unit in the last place there
    assert (np.abs(exp32_of(x) - want) <= 2 * ulp).all()


def test_exp32_at_the_edges_of_float32():
    x = np.array([0, -0.0, 88.72, 88.73, 200, np.inf, -100, -104, -200, -np.inf, np.nan], dtype=np.float32)
    got = exp32_of(x)
    assert got[:2].tolist() == [1, 1]
    assert np.isfinite(got[2]) and got[2] == pytest.approx(np.exp(np.float64(x[2])), rel=2e-7)
    assert (got[3:6] == np.inf).all()  # past float32's largest
    assert 0 < got[6] < 1e-43 and (got[7:10] == 0).all()  # a subnormal, then too small for float32
    assert np.isnan(got[10])


def test_ties_at_the_top_k_and_top_p_boundaries_are_kept():
    logits = np.zeros(50, dtype=np.float32)
    logits[[3, 10, 11, 12]] = [2.0, 1.0, 1.0, 1.0]  # top_k = 2 keeps 3 and all three tied 1.0s
    for coin in np.linspace(0.01, 0.99, 50, dtype=np.float32):
        assert compiled_sample(logits, 1.0, 2, 1.0, coin) == sample(logits, 1.0, 2, 1.0, coin)
        assert compiled_sample(logits, 1.0, 0, 0.3, coin) == sample(logits, 1.0, 0, 0.3, coin)


@pytest.mark.parametrize("temperature", [1e-46, 1e-40, 1e-30])
def test_a_tiny_temperature_picks_the_likeliest_as_in_the_reference(temperature):
    """1e-46 is 0 as a float32 (greedy); 1e-40 is a subnormal whose reciprocal overflows."""
    logits = RNG.standard_normal(300).astype(np.float32)
    for coin in (0.0, 0.5, 0.999):
        assert compiled_sample(logits, temperature, 40, 0.9, coin) == sample(logits, temperature, 40, 0.9, coin) \
            == int(np.argmax(logits))


def test_greedy_takes_the_lowest_id_on_ties_and_nan_logits_are_refused():
    logits = np.zeros(50, dtype=np.float32)
    logits[[7, 30]] = 2.0
    assert compiled_sample(logits, 0.0, 0, 1.0, 0.5) == 7
    logits[3] = np.nan
    assert sample_row(logits, np.float32(0.7), 0, 1.0, 0.5, 0.0) == -1
    with pytest.raises(FloatingPointError, match="not finite"):
        compiled_sample(logits, 0.7, 0, 1.0, 0.5)
