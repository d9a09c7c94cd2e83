"""The batching engine: the paged step against the single-sequence reference,
batch invariance, the block books under random traffic, and scheduling."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference import load_model
from inference.engine import Engine
from inference.engine.blocks import BlockManager
from inference.engine.request import Request, StepFailed
from inference.generation import Settings, Token, generate_tokens
from inference.reference.model import KVCache, forward, forward_last
from inference.reference.paged import Chunk, KVPool, batch_hidden_states, batch_lm_head
from test_server import wait_for_idle

RNG = np.random.default_rng(11)


def prompts(tokenizer, n, lengths=(1, 5, 16, 17, 33, 40)):
    """Real Rust lines, cut to awkward lengths (one token, a block, a block and one, ...)."""
    ids = tokenizer.encode("fn main() {\n    let mut total = 0;\n    for (i, x) in items.iter().enumerate() {\n"
                           "        if x.is_empty() { continue; }\n        total += i * x.len();\n    }\n"
                           "    println!(\"{total}\");\n}\n")
    return [ids[i:i + lengths[i % len(lengths)]] for i in range(n)]


# ------------------------------------------------------- the paged step itself

def test_paged_step_is_the_reference_fed_token_by_token_bit_for_bit(tiny_model):
    """Three sequences of different lengths in one pool, scattered blocks, prompts
    cut into chunks that end mid-block: every row's logits equal what the
    single-sequence reference computes one token at a time, exactly, and the
    whole-prompt reference within float32 rounding."""
    params, config = tiny_model.params, tiny_model.config
    seqs = prompts(tiny_model.tokenizer, 3, lengths=(23, 7, 40))
    pool = KVPool(config, n_blocks=16, block_size=8)
    pool.k[:] = pool.v[:] = np.nan  # an unwritten slot read by mistake poisons the answer
    tables = [[9, 2, 14], [0], [5, 11, 3, 8, 1]]
    got = [[] for _ in seqs]
    done = [0, 0, 0]
    for cut in (5, 9, 40):  # each step takes up to `cut` more tokens of every sequence
        chunks, owners = [], []
        for i, ids in enumerate(seqs):
            if done[i] < len(ids):
                n = min(cut, len(ids) - done[i])
                chunks.append(Chunk(ids[done[i]:done[i] + n], done[i], tables[i]))
                owners.append(i)
                done[i] += n
        hidden = batch_hidden_states(params, config, pool, chunks)
        logits = batch_lm_head(hidden, params["wte"])
        row = 0
        for i, chunk in zip(owners, chunks):
            got[i].extend(logits[row:row + len(chunk.ids)])
            row += len(chunk.ids)
    for ids, rows in zip(seqs, got):
        cache = KVCache(config)
        one_by_one = np.stack([forward_last(params, config, [t], cache) for t in ids])
        assert np.array_equal(np.stack(rows), one_by_one)
        np.testing.assert_allclose(np.stack(rows), forward(params, config, ids), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------- the engine

def stuck_after(seconds):
    def stuck():
        pytest.fail(f"no token for {seconds} s: the engine is stuck")
    return stuck


stuck = stuck_after(30)


def ids_of(request, stuck_after_s=30):
    return [t.id for t in request.stream(poll_s=stuck_after_s, client_gone=stuck_after(stuck_after_s))]


def run_all(engine, requests, stuck_after_s=30):
    submitted = [engine.submit(ids, s) for ids, s in requests]
    return [ids_of(r, stuck_after_s) for r in submitted]


def alone(model, requests, **options):
    engine = Engine(model, max_batch=1, **options)
    try:
        return [run_all(engine, [r])[0] for r in requests]
    finally:
        engine.stop()


@pytest.fixture(scope="module", params=["cpu", "cpu-numba"])
def cpu_model(request, tiny_model, tiny_model_dir):
    """The tiny model on each CPU backend: the NumPy reference and its compiled step."""
    return tiny_model if request.param == "cpu" else load_model(tiny_model_dir, device=request.param)


def mixed_requests(tokenizer, n):
    return [(ids, Settings(max_new_tokens=12 + 5 * (i % 3), do_sample=i % 2 == 0, seed=100 + i, temperature=1.0))
            for i, ids in enumerate(prompts(tokenizer, n))]


@pytest.mark.parametrize("options", [
    {"max_batch": 8},
    {"max_batch": 3, "max_step_tokens": 4},         # prompts prefilled in chunks of a few tokens
    {"max_batch": 8, "kv_blocks": 9, "block_size": 8},  # a pool so small that requests are preempted
], ids=["batched", "chunked prefill", "preempted"])
def test_batch_invariance(cpu_model, options):
    """A request's ids, greedy or sampled with a seed, are the same alone or in
    a batch with any others, whatever the chunks and preemptions."""
    requests = mixed_requests(cpu_model.tokenizer, 10)
    reference = alone(cpu_model, requests)
    engine = Engine(cpu_model, max_waiting=len(requests), **options)
    try:
        assert run_all(engine, requests) == reference
        if "kv_blocks" in options:
            assert engine.scheduler.preemptions > 0, "the pool was not small enough to preempt"
    finally:
        engine.stop()


def test_the_engine_gives_generate_tokens_answers(cpu_model, tiny_model):
    """Greedy ids equal the single-sequence NumPy loop's (it prefills the prompt
    with one matrix product, so only ids are compared, not bits)."""
    requests = mixed_requests(tiny_model.tokenizer, 6)
    engine = Engine(cpu_model, max_batch=4)
    try:
        got = run_all(engine, [(ids, Settings(max_new_tokens=15, do_sample=False)) for ids, _ in requests])
    finally:
        engine.stop()
    want = [[t.id for t in generate_tokens(tiny_model, ids, Settings(max_new_tokens=15, do_sample=False))]
            for ids, _ in requests]
    assert got == want


def test_a_cached_prefix_is_reused_and_gives_the_same_answer(tiny_model):
    ids = prompts(tiny_model.tokenizer, 1, lengths=(40,))[0]
    request = (ids, Settings(max_new_tokens=10, seed=5))
    engine = Engine(tiny_model, max_batch=2, block_size=8)
    try:
        first = run_all(engine, [request])
        second = engine.submit(*request)
        assert ids_of(second) == first[0]
        assert second.cached_tokens == 32  # 4 full blocks of the 40-token prompt (the last token is always computed)
    finally:
        engine.stop()


def test_cancelled_requests_free_their_place_and_blocks(tiny_model):
    engine = Engine(tiny_model, max_batch=2, block_size=8)
    try:
        long = [engine.submit(ids, Settings(max_new_tokens=50)) for ids in prompts(tiny_model.tokenizer, 4)]
        next(long[0].stream(poll_s=30, client_gone=stuck))
        for request in long:
            engine.cancel(request)
        short = engine.submit([1, 2, 3], Settings(max_new_tokens=2))
        assert len(ids_of(short)) == 2
        assert engine.stats() == {"running": 0, "waiting": 0, "kv_cache_usage": 0.0}
    finally:
        engine.stop()


def test_a_reader_takes_what_came_in_one_burst_then_the_failure(tiny_model):
    """Tokens that waited for the reader come as one list; a failure after
    them is raised once they are out, not in their place."""
    request = Request([1, 2], Settings(max_new_tokens=5), tiny_model.tokenizer, tiny_model.config.n_ctx)
    came = [Token(7, "a"), Token(8, "b"), Token(9, "c")]
    for token in came:
        request.outbox.put(token)
    request.outbox.put(StepFailed("generation failed"))
    bursts = request.bursts(interval=0.0)
    assert next(bursts) == came
    with pytest.raises(StepFailed):
        next(bursts)
    request.outbox.put(Token(10, "d", finish_reason="length"))
    request.outbox.put(Token(11, "never"))  # nothing after a finished token is read
    assert list(request.stream()) == [Token(10, "d", finish_reason="length")]


def test_a_prompt_is_prefilled_in_chunks_of_the_step_budget(tiny_model):
    engine = Engine(tiny_model, max_batch=2, max_step_tokens=8)
    try:
        ids = prompts(tiny_model.tokenizer, 1, lengths=(40,))[0]
        run_all(engine, [(ids, Settings(max_new_tokens=1))])
        assert engine.steps == 5  # 40 prompt tokens, 8 a step
    finally:
        engine.stop()


def test_settings_that_cannot_work_are_refused():
    class Model:
        class config:
            n_ctx = 64
    with pytest.raises(ValueError, match="cannot hold one full context"):
        Engine(Model, kv_blocks=3, block_size=16)
    with pytest.raises(ValueError, match="must be at least max_batch"):
        Engine(Model, max_batch=8, max_step_tokens=4)


# ------------------------------------------------------------ the block books

def check_books(blocks: BlockManager, tables):
    """Every block is free or used, reference counts match the tables, and the
    prefix cache only names blocks whose key it holds."""
    refs = [0] * blocks.n_blocks
    for table in tables:
        for b in table:
            refs[b] += 1
    assert refs == blocks.refs
    assert set(blocks.free) == {b for b in range(blocks.n_blocks) if refs[b] == 0}
    assert all(blocks.key_of[b] == key for key, b in blocks.by_key.items())


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 30), st.integers(1, 12), st.booleans()),
                min_size=1, max_size=40), st.integers(8, 16), st.integers(1, 4))
def test_no_block_leaks_and_no_starvation(tiny_model, traffic, kv_blocks, max_batch):
    """Random traffic against a small pool: prompts (often sharing a prefix),
    some cancelled at once. Every request that was not cancelled finishes, and
    afterwards every block is free, with the books balanced all along."""
    engine = Engine(tiny_model, max_batch=max_batch, max_waiting=100, kv_blocks=kv_blocks, block_size=8,
                    max_step_tokens=16)
    try:
        base = prompts(tiny_model.tokenizer, 1, lengths=(40,))[0]
        submitted = []
        for prefix, length, new, cancel in traffic:
            ids = (base[:prefix * 8] + [(length * 7 + i) % 500 for i in range(length)])[:60 - new]
            request = engine.submit(ids, Settings(max_new_tokens=new, seed=length))
            if cancel:
                engine.cancel(request)
            submitted.append((request, cancel))
        with engine.wakeup:  # between two steps
            live = list(engine.scheduler.running) + list(engine.scheduler.waiting)
            check_books(engine.blocks, [r.block_table for r in live])
        for request, cancelled in submitted:
            if not cancelled:
                tokens = list(request.stream(poll_s=30, client_gone=stuck))
                assert tokens[-1].finish_reason is not None
        assert wait_for_idle(engine)
        with engine.wakeup:
            check_books(engine.blocks, [])
    finally:
        engine.stop()
