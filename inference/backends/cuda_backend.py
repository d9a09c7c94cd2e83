"""The CUDA backend: the reference model's forward pass, kernel by kernel.

Weights are uploaded once, when the model loads. Each sequence (session)
allocates its KV cache and its activation buffers once, on the device. A
decode step then moves one token id in and one token id out: the logits
never leave the GPU, the sampling kernel picks the token there.

The engine's decode steps are replayed as CUDA graphs (StepGraphs): one
launch from the host for the kernels before sampling (58 for the shipped
model), where numba-cuda's launches cost the host more than the GPU's work.
"""

import logging
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import config, cuda
from numba.cuda.cudadrv.driver import CudaAPIError

from ..kernels.attention import MAX_CONTEXT, attention, store_kv
from ..kernels.embedding import embedding
from ..kernels.gelu import gelu
from ..kernels.layernorm import layer_norm
from ..kernels.matmul import linear
from ..kernels.paged import embedding_at, gather_rows, paged_attention, store_kv as store_kv_paged
from ..kernels.sampling import BatchSampler
from ..reference.paged import KVPool, batch_rows, sampled_rows
from ..reference.sampling import Pick, Sampling

log = logging.getLogger("inference.backends")


def upload(tree):
    """Copy a nested dict/list of NumPy arrays to the device, keeping its shape."""
    if isinstance(tree, dict):
        return {k: upload(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [upload(v) for v in tree]
    return cuda.to_device(np.ascontiguousarray(tree, dtype=np.float32))


class CudaModel:
    device = "cuda"

    def __init__(self, config, params, tokenizer, name, graphs: bool = True):
        self.config, self.tokenizer, self.name = config, tokenizer, name
        self.graphs = graphs  # the engine's decode steps replayed as CUDA graphs (StepGraphs), or all launched
        if config.n_ctx > MAX_CONTEXT:  # the decode attention kernel keeps a row of scores in shared memory
            raise ValueError(f"the CUDA backend supports contexts up to {MAX_CONTEXT} positions, not {config.n_ctx}")
        self.params = upload(params)
        self.params["wte_t"] = cuda.to_device(np.ascontiguousarray(params["wte"].T))  # [C, V] for the LM head
        self.params["no_bias"] = cuda.to_device(np.zeros(config.vocab_size, dtype=np.float32))

    def forward(self, ids) -> np.ndarray:  # [T] -> [T, V] float32 logits, on the host
        session = CudaSession(self)
        hidden = session.hidden_states(ids)
        return linear(hidden, self.params["wte_t"], self.params["no_bias"]).copy_to_host()

    def new_session(self) -> "CudaSession":
        return CudaSession(self)

    def new_kv_pool(self, n_blocks: int, block_size: int, max_rows=None, max_seqs=None) -> "CudaKVPool":
        return CudaKVPool(self, n_blocks, block_size, max_rows, max_seqs)

    def step_batch(self, pool: "CudaKVPool", chunks) -> list[Pick | None]:
        """One step over many sequences, as NumpyModel.step_batch: the rows'
        metadata copied in, the step's kernels, then one sampling block per
        sequence that samples picks its token on the device."""
        rows = pool.upload_batch(chunks)
        logits = pool.graphs.logits(rows)  # [n, V], on the device: batch_logits, replayed where it can be
        picks = [None] * len(chunks)
        if rows.sampled:
            for i, pick in zip(rows.sampled, pool.sampler.launch(logits, [chunks[i].sampling for i in rows.sampled])):
                picks[i] = pick
        return picks

    def batch_logits(self, pool: "CudaKVPool", rows: "BatchRows", stream=0):  # -> device [n, V], n sampled
        """The step's kernels alone, every input already on the device: the
        batch's N rows go through each linear layer together, attention reads
        each row's keys through its block table. No copy and no wait for the
        host, so the whole of it can be recorded as one CUDA graph: every
        launch goes to `stream`, a graph builder's while StepGraphs records."""
        c, p, s = self.config, self.params, stream
        a = pool.activations(rows.N, len(rows.sampled))
        embedding_at(p["wte"], p["wpe"], rows.ids, rows.positions, out=a.x, stream=s)
        for blk, k, v in zip(p["blocks"], pool.layers_k, pool.layers_v):
            layer_norm(a.x, blk["ln_1"]["g"], blk["ln_1"]["b"], c.eps, out=a.h, stream=s)
            linear(a.h, blk["attn"]["c_attn"]["w"], blk["attn"]["c_attn"]["b"], out=a.qkv, stream=s)
            store_kv_paged(a.qkv, k, v, rows.slot_mapping, stream=s)
            paged_attention(a.q, k, v, rows.positions, rows.seq, rows.block_tables, pool.block_size, c.n_head,
                            out=a.att, stream=s)
            linear(a.att, blk["attn"]["c_proj"]["w"], blk["attn"]["c_proj"]["b"], out=a.x, residual=a.x, stream=s)
            layer_norm(a.x, blk["ln_2"]["g"], blk["ln_2"]["b"], c.eps, out=a.h, stream=s)
            linear(a.h, blk["mlp"]["c_fc"]["w"], blk["mlp"]["c_fc"]["b"], out=a.fc, stream=s)
            gelu(a.fc, out=a.fc, stream=s)
            linear(a.fc, blk["mlp"]["c_proj"]["w"], blk["mlp"]["c_proj"]["b"], out=a.x, residual=a.x, stream=s)
        layer_norm(a.x, p["ln_f"]["g"], p["ln_f"]["b"], c.eps, out=a.h, stream=s)
        if rows.sampled:
            gather_rows(a.h, rows.last, out=a.h_last, stream=s)
            linear(a.h_last, p["wte_t"], p["no_bias"], out=a.logits, stream=s)
        return a.logits


class CudaSession:
    """One sequence: the KV cache and every activation buffer, sized for the
    whole context and allocated once; each step works on a prefix of them."""

    def __init__(self, model: CudaModel):
        self.model = model
        c = model.config
        C = c.n_embd
        self.cache_k = cuda.device_array((c.n_layer, c.n_ctx, C), dtype=np.float32)
        self.cache_v = cuda.device_array((c.n_layer, c.n_ctx, C), dtype=np.float32)
        self.ids = cuda.device_array(c.n_ctx, dtype=np.int32)
        self.x = cuda.device_array((c.n_ctx, C), dtype=np.float32)  # the residual stream
        self.h = cuda.device_array((c.n_ctx, C), dtype=np.float32)  # layer-norm output
        self.qkv = cuda.device_array((c.n_ctx, 3 * C), dtype=np.float32)
        self.att = cuda.device_array((c.n_ctx, C), dtype=np.float32)
        self.fc = cuda.device_array((c.n_ctx, 4 * C), dtype=np.float32)
        self.logits = cuda.device_array((1, c.vocab_size), dtype=np.float32)
        self.sampler = BatchSampler(1, c.vocab_size, c.n_ctx)
        self.length = 0

    def hidden_states(self, ids):  # [T] -> device [T, C], after the final layer norm
        c, p = self.model.config, self.model.params
        start, T = self.length, len(ids)
        if T == 0 or start + T > c.n_ctx:
            raise ValueError(f"positions {start}..{start + T - 1} do not fit the context of {c.n_ctx}")
        self.ids[:T].copy_to_device(np.asarray(ids, dtype=np.int32))
        x, h, qkv, att, fc = self.x[:T], self.h[:T], self.qkv[:T], self.att[:T], self.fc[:T]
        C = c.n_embd
        embedding(p["wte"], p["wpe"], self.ids[:T], start, out=x)
        for layer, blk in enumerate(p["blocks"]):
            cache_k, cache_v = self.cache_k[layer], self.cache_v[layer]
            layer_norm(x, blk["ln_1"]["g"], blk["ln_1"]["b"], c.eps, out=h)
            linear(h, blk["attn"]["c_attn"]["w"], blk["attn"]["c_attn"]["b"], out=qkv)
            store_kv(qkv, cache_k, cache_v, start)
            attention(qkv[:, :C], cache_k[:start + T], cache_v[:start + T], c.n_head, out=att)
            linear(att, blk["attn"]["c_proj"]["w"], blk["attn"]["c_proj"]["b"], out=x, residual=x)
            layer_norm(x, blk["ln_2"]["g"], blk["ln_2"]["b"], c.eps, out=h)
            linear(h, blk["mlp"]["c_fc"]["w"], blk["mlp"]["c_fc"]["b"], out=fc)
            gelu(fc, out=fc)
            linear(fc, blk["mlp"]["c_proj"]["w"], blk["mlp"]["c_proj"]["b"], out=x, residual=x)
        self.length = start + T
        return layer_norm(x, p["ln_f"]["g"], p["ln_f"]["b"], c.eps, out=h)

    def step(self, ids, sampling: Sampling) -> Pick:
        """Feed the new ids; pick the next token on the device; return it."""
        p = self.model.params
        last = self.hidden_states(ids)[len(ids) - 1:]  # [1, C]
        linear(last, p["wte_t"], p["no_bias"], out=self.logits)
        return self.sampler.launch(self.logits, [sampling])[0]


MAX_VIEWS = 256  # shapes of a step whose views a pool keeps


class CudaKVPool:
    """The paged KV cache on the device, k and v [n_layer, slots, C], and the
    batch's buffers, sized for the most rows (tokens) and sequences one step
    can hold: the engine's max_step_tokens and max_batch. Sized by the slots
    instead (a row for each), the logits and the sampler's scratch, [rows,
    vocabulary] each, were 1.6 GB apiece for the shipped model at --max-batch 16.

    A view of a device array (`x[:N]`, `k[layer]`) is a new Python object that
    costs the host about as much as launching a kernel (scripts/bench_kernels.py
    prints both), and a step used to make dozens of them: the views a
    step needs are made once per shape and kept."""

    def __init__(self, model: CudaModel, n_blocks: int, block_size: int, max_rows: int | None = None,
                 max_seqs: int | None = None):
        c, C = model.config, model.config.n_embd
        self.n_embd, self.n_blocks, self.block_size = C, n_blocks, block_size
        self.max_blocks = -(-c.n_ctx // block_size)  # a block table's length
        try:
            self.k, self.v = (cuda.device_array((c.n_layer, n_blocks * block_size, C), dtype=np.float32)
                              for _ in range(2))
        except CudaAPIError as e:  # said as NumPy says it on the host, for the server's start-up to report
            if "OUT_OF_MEMORY" not in str(e):
                raise
            nbytes = KVPool.nbytes(c, n_blocks, block_size)
            raise MemoryError(f"the GPU cannot hold a KV cache of {nbytes / 2 ** 30:.2f} GiB: {e}") from e
        self.layers_k = [self.k[layer] for layer in range(c.n_layer)]
        self.layers_v = [self.v[layer] for layer in range(c.n_layer)]
        R = max_rows or n_blocks * block_size  # no step has more rows than the pool has slots
        S = min(max_seqs or R, R)  # nor more sequences than rows
        self.x, self.h = (cuda.device_array((R, C), dtype=np.float32) for _ in range(2))
        self.qkv = cuda.device_array((R, 3 * C), dtype=np.float32)
        self.att = cuda.device_array((R, C), dtype=np.float32)
        self.fc = cuda.device_array((R, 4 * C), dtype=np.float32)
        # the batch's row metadata, refilled each step with one copy: ids, positions, sequence and
        # slot of each of the N rows, then the row of each of the n sampled chunks' last token
        self.rows_meta = cuda.device_array(4 * R + S, dtype=np.int32)
        self.block_tables = cuda.device_array((S, self.max_blocks), dtype=np.int32)
        self.h_last = cuda.device_array((S, C), dtype=np.float32)
        self.logits = cuda.device_array((S, c.vocab_size), dtype=np.float32)
        self.sampler = BatchSampler(S, c.vocab_size, c.n_ctx)
        self.views = {}  # (what, shape) -> the views made for it; emptied at MAX_VIEWS shapes
        self.graphs = StepGraphs(model, self)

    def upload_batch(self, chunks) -> "BatchRows":
        """The batch's row metadata, computed on the host and copied into the
        buffers allocated once: two copies, no allocation on the device."""
        ids, positions, seq, slot_mapping, tables = batch_rows(chunks, self.block_size, self.max_blocks)
        sampled, last_rows = sampled_rows(chunks)
        N, n = len(ids), len(sampled)
        meta = self.meta_views(N, n, len(chunks))
        meta.all.copy_to_device(np.concatenate([ids, positions, seq, slot_mapping, last_rows]).astype(np.int32))
        meta.block_tables.copy_to_device(tables.astype(np.int32))
        return BatchRows(N, meta.ids, meta.positions, meta.seq, meta.slot_mapping, meta.block_tables, sampled,
                         meta.last)

    def meta_views(self, N, n, n_seqs) -> "MetaViews":  # rows_meta's fields for N rows and n sampled, the tables
        m = self.rows_meta
        return self.kept(("meta", N, n, n_seqs), lambda: MetaViews(
            m[:4 * N + n], m[:N], m[N:2 * N], m[2 * N:3 * N], m[3 * N:4 * N], m[4 * N:4 * N + n],
            self.block_tables[:n_seqs]))

    def activations(self, N, n) -> "Activations":  # the step's buffers for N rows, n of them sampled
        return self.kept(("activations", N, n), lambda: Activations(
            self.x[:N], self.h[:N], self.qkv[:N], self.qkv[:N, :self.n_embd], self.att[:N], self.fc[:N],
            self.h_last[:n], self.logits[:n]))

    def kept(self, key, make):
        if key not in self.views:
            if len(self.views) >= MAX_VIEWS:  # prefill chunks of many lengths: start afresh
                self.views.clear()
            self.views[key] = make()
        return self.views[key]


class MetaViews(NamedTuple):
    all: object  # the fields one after another, as one copy fills them
    ids: object
    positions: object
    seq: object
    slot_mapping: object
    last: object
    block_tables: object


class Activations(NamedTuple):
    x: object  # [N, C] the residual stream
    h: object  # [N, C] a layer norm's output
    qkv: object  # [N, 3C]
    q: object  # [N, C], qkv's first third
    att: object  # [N, C]
    fc: object  # [N, 4C]
    h_last: object  # [n, C] the sampled chunks' last rows
    logits: object  # [n, V]


@dataclass
class BatchRows:
    """A step's rows on the device: token ids, positions, which sequence each
    belongs to, where its key and value go; the block tables; the chunks that
    sample (a list, on the host) and the row of each one's last token."""
    N: int
    ids: object
    positions: object
    seq: object
    slot_mapping: object
    block_tables: object
    sampled: list
    last: object

    @property
    def decodes(self) -> bool:  # one row for each sequence, and each one samples: a decode step
        return self.N == len(self.sampled)


RECORDABLE = not config.ENABLE_CUDASIM  # the simulator has no CUDA graphs


class StepGraphs:
    """The engine's decode steps replayed as CUDA graphs, one for each number
    of sequences N.

    A decode step launches 59 kernels, and numba-cuda's launch costs the host
    100-200 us (the arguments are checked and packed in Python each time), so
    launching took longer than the kernels ran (tutorial 8). A CUDA graph
    records the launches once and replays them all with one call. It records
    the arguments too, the buffers' addresses included; replaying it is right
    only while the step reads the same buffers. A decode step of N sequences
    always does: the pool's kept views of N rows (CudaKVPool.activations,
    meta_views) are slices of buffers allocated once, the rows' metadata and
    block tables are copied into them before each step, and the kernels read
    positions and tables from there, not from their launch arguments. Steps
    with prompt chunks (rows of many shapes) are launched as before.

    The first decode step of N sequences is launched (it compiles what is new
    and makes the views), the second is recorded, and then replayed once
    against the logits the same step gave launched: only the same bits keep
    the graph. Where recording fails (a numba-cuda without graph builders, a
    driver that refuses) or the bits differ, the pool says why in the log and
    launches from then on; under the simulator, and for a model loaded with
    cuda_graphs=False (the server's --cuda-graphs off), it always launches.
    Graphs run on stream 0, the default stream, where numba-cuda sends every
    launch and copy of the backend, so they wait for the copies before them,
    and the sampler's launch waits for them."""

    def __init__(self, model: CudaModel, pool: "CudaKVPool"):
        self.model, self.pool = model, pool
        self.on = model.graphs and RECORDABLE
        self.graphs = {}  # N -> the recorded decode step of N sequences
        self.seen = set()  # N whose first step was launched
        self.device = self.stream = None  # cuda.core's Device and stream 0, once a graph is recorded

    def logits(self, rows: BatchRows):  # -> device [n, V]: model.batch_logits(pool, rows)
        if not rows.decodes:
            return self.model.batch_logits(self.pool, rows)
        graph = self.graphs.get(rows.N)
        if graph is None and self.on and rows.N in self.seen:
            graph = self.recorded(rows)
        if graph is None:
            self.seen.add(rows.N)
            return self.model.batch_logits(self.pool, rows)
        graph.launch(self.stream)
        return self.pool.activations(rows.N, rows.N).logits

    def recorded(self, rows: BatchRows):
        """The step's kernels recorded as a graph, kept if replaying it gives the
        launched step's logits; None (and no more graphs) otherwise."""
        want = self.model.batch_logits(self.pool, rows).copy_to_host()
        try:
            graph = self.record(rows)
            logits = self.pool.activations(rows.N, rows.N).logits
            logits.copy_to_device(np.full(want.shape, np.nan, dtype=np.float32))  # the replay must write them
            graph.launch(self.stream)
            same = np.array_equal(logits.copy_to_host(), want)
        except Exception as e:  # no graph builder here, or the driver refused one: launch as before
            log.warning("CUDA graphs off: recording the decode step of %d sequences failed (%s: %s)",
                        rows.N, type(e).__name__, e)
            self.on = False
            return None
        if not same:
            log.warning("CUDA graphs off: the decode step of %d sequences replayed gave other logits than "
                        "launched", rows.N)
            self.on = False
            return None
        self.graphs[rows.N] = graph
        return graph

    def record(self, rows: BatchRows):  # -> a cuda.core Graph of model.batch_logits(pool, rows)
        from cuda.core import Device, Stream  # numba-cuda's dependency; it takes a graph builder as a stream (0.29+)
        if self.device is None:
            self.device = Device(cuda.get_current_device().id)
            self.stream = Stream.from_handle(0)  # the default stream, where numba-cuda sends our launches and copies
        self.device.set_current()  # numba's context (the device's primary one), in this thread
        builder = self.device.create_graph_builder()
        builder.begin_building()
        try:
            self.model.batch_logits(self.pool, rows, stream=builder)
        finally:
            builder.end_building()
        return builder.complete()


def gpu_name() -> str:
    dev = cuda.get_current_device()
    name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    return f"{name} (sm_{dev.compute_capability[0]}{dev.compute_capability[1]})"

