"""The batched step's kernels against reference.paged, at awkward shapes with
poisoned outputs, and the CUDA backend's batched step against the NumPy one."""

import numpy as np
import pytest
from numba import config, cuda

from inference.kernels import paged
from inference.kernels.sampling import BatchSampler
from inference.reference import paged as ref
from inference.reference.sampling import Sampling, sample
from parity import assert_close, device, poisoned, sizes

RNG = np.random.default_rng(5)
C, H, B = sizes((16, 2, 4), (768, 12, 16))  # width, heads, block size
# three sequences: a prefill chunk ending mid-block, a one-token decode, a chunk across blocks
CHUNKS = [ref.Chunk([1] * 5, 0, [6, 2]), ref.Chunk([1], 9, [0, 7, 3]), ref.Chunk([1] * 3, 2, [5, 1])]
N_BLOCKS = 8
# An engine here waits this long for a token before it is called stuck: under the simulator
# (every thread in Python) with coverage on, a slow machine took over 30 s to give a request
# its first token (two steps), and on a GPU the first step compiles the kernels.
STUCK_AFTER_S = 600


def batch_rows(chunks):
    positions = np.concatenate([np.arange(c.start, c.end) for c in chunks])
    seq = np.concatenate([np.full(len(c.ids), i) for i, c in enumerate(chunks)])
    slot_mapping = np.concatenate([ref.slots(c.block_table, np.arange(c.start, c.end), B) for c in chunks])
    tables = np.zeros((len(chunks), max(len(c.block_table) for c in chunks)), dtype=np.int32)
    for i, c in enumerate(chunks):
        tables[i, :len(c.block_table)] = c.block_table
    return positions, seq, slot_mapping, tables


def test_store_kv_writes_each_row_to_its_slot():
    positions, _, slot_mapping, _ = batch_rows(CHUNKS)
    qkv = RNG.standard_normal((len(positions), 3 * C)).astype(np.float32)
    pool_k, pool_v = poisoned((N_BLOCKS * B, C)), poisoned((N_BLOCKS * B, C))
    paged.store_kv(device(qkv), pool_k, pool_v, device(slot_mapping, np.int32))
    k, v = pool_k.copy_to_host(), pool_v.copy_to_host()
    assert np.array_equal(k[slot_mapping], qkv[:, C:2 * C]) and np.array_equal(v[slot_mapping], qkv[:, 2 * C:])
    untouched = np.setdiff1d(np.arange(N_BLOCKS * B), slot_mapping)
    assert np.isnan(k[untouched]).all(), "a slot no row maps to was written"


def test_paged_attention_matches_the_reference():
    positions, seq, _, tables = batch_rows(CHUNKS)
    pool_k = RNG.standard_normal((N_BLOCKS * B, C)).astype(np.float32)
    pool_v = RNG.standard_normal((N_BLOCKS * B, C)).astype(np.float32)
    q = RNG.standard_normal((len(positions), C)).astype(np.float32)
    want = ref.paged_attention(q, pool_k, pool_v, CHUNKS, H, B)
    out = poisoned((len(positions), C))
    paged.paged_attention(device(q), device(pool_k), device(pool_v), device(positions, np.int32),
                          device(seq, np.int32), device(tables, np.int32), B, H, out)
    assert_close(out.copy_to_host(), want, "attention")


def test_embedding_at_any_positions_and_gather_rows_are_exact():
    V, n_ctx = 50, 40
    wte, wpe = RNG.standard_normal((V, C)).astype(np.float32), RNG.standard_normal((n_ctx, C)).astype(np.float32)
    ids, positions = np.array([3, 49, 0, 7], dtype=np.int32), np.array([0, 39, 5, 5], dtype=np.int32)
    out = poisoned((4, C))
    paged.embedding_at(device(wte), device(wpe), device(ids, np.int32), device(positions, np.int32), out)
    assert_close(out.copy_to_host(), wte[ids] + wpe[positions], "embedding")
    rows, gathered = np.array([3, 0], dtype=np.int32), poisoned((2, C))
    paged.gather_rows(out, device(rows, np.int32), gathered)
    assert np.array_equal(gathered.copy_to_host(), (wte[ids] + wpe[positions])[rows])


def test_the_batch_sampler_picks_per_row_what_the_reference_picks():
    V = sizes(300, 50257)
    logits = (RNG.standard_normal((4, V)) * 3).astype(np.float32)
    settings = [(0.0, 40, 0.9, 0.5), (1.0, 5, 1.0, 0.25), (0.7, 0, 0.5, 0.75), (1.3, 3, 0.95, 0.1)]
    got = BatchSampler(4, V).launch(device(logits), [Sampling(*s) for s in settings])
    assert [pick.id for pick in got] == [sample(row, *s) for row, s in zip(logits, settings)]


@pytest.mark.parametrize("max_views", [256, 1])  # 1: the pool drops its kept views at every new shape
def test_the_cuda_batched_step_matches_numpy(tiny_cuda_pair, monkeypatch, max_views):
    """Both backends run the same three-sequence step twice (prefill pieces,
    then a decode and a chunk): same greedy ids, and the same keys in the pool."""
    from inference.backends import cuda_backend
    monkeypatch.setattr(cuda_backend, "MAX_VIEWS", max_views)
    cpu, gpu = tiny_cuda_pair
    pools = cpu.new_kv_pool(8, 4), gpu.new_kv_pool(8, 4)
    greedy = Sampling(temperature=0.0, top_k=0, top_p=1.0, coin=0.5)
    steps = [[ref.Chunk([5, 6, 7, 8, 9], 0, [3, 1], greedy),
              ref.Chunk([11, 12], 0, [6], greedy), ref.Chunk([1, 2, 3], 0, [0, 2], None)],
             [ref.Chunk([4], 5, [3, 1], greedy), ref.Chunk([2, 2, 2], 3, [0, 2], greedy)]]
    for chunks in steps:
        assert cpu.step_batch(pools[0], chunks) == gpu.step_batch(pools[1], chunks)
    used = np.concatenate([ref.slots([3, 1], np.arange(6), 4), ref.slots([0, 2], np.arange(6), 4)])
    assert_close(pools[1].k.copy_to_host()[:, used], pools[0].k[:, used], "linear")


def test_the_engine_sizes_the_cuda_step_by_its_bounds(tiny_cuda_pair):
    """The step's buffers hold max_step_tokens rows and max_batch sequences, not a row for every
    slot of the pool; requests that fill them (a prompt in chunks beside a decode) get the NumPy
    engine's ids."""
    from inference.engine import Engine
    from inference.generation import Settings
    from test_engine import run_all
    requests = [(list(range(3, 14)), Settings(max_new_tokens=4, do_sample=False)),
                ([5, 6, 7], Settings(max_new_tokens=6, seed=1))]
    got = []
    for model in tiny_cuda_pair:
        engine = Engine(model, max_batch=2, max_step_tokens=8, block_size=4)
        try:
            got.append(run_all(engine, requests, STUCK_AFTER_S))
        finally:
            engine.stop()
    pool = engine.pool  # the CUDA engine's
    assert (pool.x.shape[0], pool.logits.shape[0], pool.sampler.out.shape[0]) == (8, 2, 2)
    assert pool.k.shape[1] == 2 * 32  # the KV cache itself: slots for max_batch full contexts of 32
    assert got[0] == got[1] and [len(ids) for ids in got[0]] == [4, 6]


@pytest.fixture(scope="module")
def tiny_paged_dir(tmp_path_factory):
    if not cuda.is_available():
        pytest.skip("needs a GPU or the simulator")
    from inference.checkpoint import save_checkpoint
    from inference.reference.model import GPT2Config
    from inference.tokenizer import count_pieces, train_bpe
    from model_helpers import random_tensors
    tokenizer = train_bpe(count_pieces(["fn main() { let x = 1; println!(\"{x}\"); }\n"] * 20), n_merges=30)
    config = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_ctx=32, vocab_size=tokenizer.vocab_size)
    path = tmp_path_factory.mktemp("tiny-paged")
    save_checkpoint(path, config, random_tensors(config), tokenizer)
    return path


@pytest.fixture(scope="module")
def tiny_cuda_pair(tiny_paged_dir):
    from inference.backends import load_model
    return load_model(tiny_paged_dir, "cpu"), load_model(tiny_paged_dir, "cuda")


def test_a_sequences_logits_are_the_same_bits_alone_or_in_any_batch(tiny_cuda_pair):
    """Batch invariance on the GPU: one sequence's decode step alone (1 row),
    beside 3 others (4 rows), beside 4 (5 rows, past where `linear` changes
    kernels) and beside another's 6-token prompt chunk gives the same logits,
    bit for bit."""
    _, gpu = tiny_cuda_pair
    pool = gpu.new_kv_pool(12, 4)
    greedy = Sampling(temperature=0.0, top_k=0, top_p=1.0, coin=0.5)
    tables = [[2 * i, 2 * i + 1] for i in range(5)]
    prompts = [ref.Chunk([3 + i, 9, 4 + i], 0, table, greedy) for i, table in enumerate(tables)]
    gpu.step_batch(pool, prompts)  # every sequence's first three positions, in the pool
    decodes = [ref.Chunk([7 + i], 3, table, greedy) for i, table in enumerate(tables)]
    prompt = ref.Chunk([5, 6, 7, 8, 9, 10], 0, [10, 11], greedy)

    def logits(batch):  # the first sequence's next-token logits, in this batch
        return gpu.batch_logits(pool, pool.upload_batch(batch)).copy_to_host()[0]

    alone = logits(decodes[:1])
    for name, batch in [("3 others", decodes[:4]), ("4 others", decodes), ("a prompt chunk", [decodes[0], prompt])]:
        assert np.array_equal(logits(batch), alone), f"the logits changed beside {name}"


def prompts_then_decodes(steps=4):  # two sequences' prompts in one step, then their decode steps, sampled
    sampled = Sampling(temperature=1.0, top_k=0, top_p=1.0, coin=0.3)
    tables = [[3, 1], [0, 2]]
    yield [ref.Chunk([5, 6, 7], 0, tables[0], sampled), ref.Chunk([11, 12], 0, tables[1], sampled)]
    for t in range(steps):
        yield [ref.Chunk([4 + t], 3 + t, tables[0], sampled), ref.Chunk([9 + t], 2 + t, tables[1], sampled)]


@pytest.mark.skipif(bool(config.ENABLE_CUDASIM), reason="the simulator has no CUDA graphs (the next test stands in "
                    "for one there); `tox -e gpu` runs this on a GPU")
def test_decode_steps_replayed_as_cuda_graphs_give_the_numpy_ids(tiny_cuda_pair):
    cpu, gpu = tiny_cuda_pair
    pools = cpu.new_kv_pool(8, 4), gpu.new_kv_pool(8, 4)
    for chunks in prompts_then_decodes(steps=6):
        assert cpu.step_batch(pools[0], chunks) == gpu.step_batch(pools[1], chunks)
    assert pools[1].graphs.on and list(pools[1].graphs.graphs) == [2], "the decode step was not replayed"


class Replay:
    """A CUDA graph's stand-in under the simulator, which has none: the recorded
    step's launches made again with the arguments they were recorded with."""

    def __init__(self, model, pool, rows, broken=False):
        self.model, self.pool, self.rows, self.broken, self.launches = model, pool, rows, broken, 0

    def launch(self, stream):
        self.launches += 1
        if not self.broken:  # a broken graph writes nothing: the poisoned logits stay
            self.model.batch_logits(self.pool, self.rows)


def stand_in_graphs(monkeypatch, graph="replays"):  # -> the list of Replays the CUDA pools record
    """StepGraphs.record gives a Replay (or, for "cannot be recorded", raises)."""
    from types import SimpleNamespace

    from inference.backends.cuda_backend import StepGraphs
    recorded = []

    def record(graphs, rows):
        if graph == "cannot be recorded":
            raise RuntimeError("no graph builder here")
        graphs.device, graphs.stream = SimpleNamespace(), 0
        recorded.append(Replay(graphs.model, graphs.pool, rows, broken=graph == "writes nothing"))
        return recorded[-1]

    monkeypatch.setattr(StepGraphs, "record", record)
    return recorded


@pytest.mark.parametrize("graph", ["replays", "writes nothing", "cannot be recorded"])
def test_decode_steps_are_recorded_once_then_replayed(tiny_cuda_pair, monkeypatch, caplog, graph):
    """The CUDA pool launches the first decode step of N sequences, records the
    second and checks its replay against it, then replays; prompt steps are
    always launched. A graph that gives other logits, or none, turns graphs
    off. Every step's ids are the NumPy engine's."""
    cpu, gpu = tiny_cuda_pair
    recorded = stand_in_graphs(monkeypatch, graph)
    pools = cpu.new_kv_pool(8, 4), gpu.new_kv_pool(8, 4)
    pools[1].graphs.on = True
    for chunks in prompts_then_decodes(steps=4 if graph == "replays" else 2):  # the second decode step records
        assert cpu.step_batch(pools[0], chunks) == gpu.step_batch(pools[1], chunks)
    if graph == "replays":
        assert [r.launches for r in recorded] == [1 + 1 + 2]  # the check, its own step, the two steps after
        assert list(pools[1].graphs.graphs) == [2] and pools[1].graphs.on
    else:
        assert not pools[1].graphs.on and not pools[1].graphs.graphs
        assert "CUDA graphs off" in caplog.text


@pytest.mark.parametrize("cuda_graphs", [True, False])
def test_a_model_loaded_without_cuda_graphs_launches_every_step(tiny_paged_dir, monkeypatch, cuda_graphs):
    """load_model(..., cuda_graphs=False), the server's --cuda-graphs off: its
    pools never record a step, where they could (a stand-in graph here)."""
    from inference.backends import cuda_backend, load_model
    monkeypatch.setattr(cuda_backend, "RECORDABLE", True)  # as on a GPU
    recorded = stand_in_graphs(monkeypatch)
    cpu, gpu = load_model(tiny_paged_dir, "cpu"), load_model(tiny_paged_dir, "cuda", cuda_graphs=cuda_graphs)
    pools = cpu.new_kv_pool(8, 4), gpu.new_kv_pool(8, 4)
    for chunks in prompts_then_decodes(steps=2):  # the second decode step records
        assert cpu.step_batch(pools[0], chunks) == gpu.step_batch(pools[1], chunks)
    assert pools[1].graphs.on == cuda_graphs and len(recorded) == (1 if cuda_graphs else 0)


def test_an_engine_whose_decode_steps_are_replayed_gives_the_numpy_engines_ids(tiny_cuda_pair, monkeypatch):
    """Requests come and go while the batch keeps two sequences: the same graph
    of two replays steps of other sequences, at other positions, through the
    block tables and positions copied in before it (a stand-in graph under the
    simulator; `test_decode_steps_replayed_as_cuda_graphs_give_the_numpy_ids`
    replays real ones on a GPU)."""
    from inference.engine import Engine
    from inference.generation import Settings
    from test_engine import run_all
    recorded = stand_in_graphs(monkeypatch)
    requests = [([3, 4, 5], Settings(max_new_tokens=3, do_sample=False)),
                ([6, 7], Settings(max_new_tokens=6, seed=1)),
                ([8, 9, 10, 11], Settings(max_new_tokens=4, seed=2))]
    got = []
    for model in tiny_cuda_pair:
        engine = Engine(model, max_batch=2, max_step_tokens=8, block_size=4)
        if model is tiny_cuda_pair[1]:
            engine.pool.graphs.on = True
        try:
            got.append(run_all(engine, requests, STUCK_AFTER_S))
        finally:
            engine.stop()
    assert got[0] == got[1] and [len(ids) for ids in got[0]] == [3, 6, 4]
    assert [r.rows.N for r in recorded] == [2] and recorded[0].launches > 3, "no graph of two replayed several steps"
