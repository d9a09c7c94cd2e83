"""The OpenAI routes, driven by the official `openai` client against the real server."""

import openai
import pytest

from test_server import serving


@pytest.fixture(scope="module")
def served(tiny_model):
    with serving(tiny_model) as (client, _):
        yield client, openai.OpenAI(base_url=f"http://127.0.0.1:{client.port}/v1", api_key="unused", max_retries=0)


def test_models_lists_the_loaded_model(served):
    _, api = served
    assert [m.id for m in api.models.list()] == ["tiny-random"]


def test_a_completion_is_the_native_generation(served):
    client, api = served
    done = api.completions.create(model="tiny-random", prompt="fn main() {", max_tokens=12, temperature=0.8,
                                  top_p=0.95, seed=3)
    native = client.post("/generate", {"prompt": "fn main() {", "max_new_tokens": 12, "temperature": 0.8,
                                       "top_p": 0.95, "top_k": 0, "seed": 3})[2]
    assert done.object == "text_completion" and done.model == "tiny-random"
    assert done.choices[0].text == native["text"]
    assert done.choices[0].finish_reason == {"eos": "stop"}.get(native["finish_reason"], native["finish_reason"])
    prompt_tokens = len(client.post("/tokenize", {"text": "fn main() {"})[2]["ids"])
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (prompt_tokens, native["generated_tokens"])
    assert done.usage.total_tokens == prompt_tokens + native["generated_tokens"]


def test_the_same_seed_gives_the_same_text(served):
    _, api = served
    texts = {api.completions.create(model="tiny-random", prompt="let", max_tokens=20, seed=11).choices[0].text
             for _ in range(3)}
    assert len(texts) == 1


def test_streaming_joins_to_the_same_text_and_ends_with_usage(served):
    _, api = served
    kwargs = dict(model="tiny-random", prompt="struct", max_tokens=15, seed=5)
    whole = api.completions.create(**kwargs)
    chunks = list(api.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    text_chunks, usage = chunks[:-1], chunks[-1]
    assert "".join(c.choices[0].text for c in text_chunks) == whole.choices[0].text
    assert [c.choices[0].finish_reason for c in text_chunks[:-1]] == [None] * (len(text_chunks) - 1)
    assert text_chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert usage.choices == [] and usage.usage.completion_tokens == whole.usage.completion_tokens


def test_usage_counts_the_prompt_tokens_found_in_the_prefix_cache(served):
    """A prompt sent again finds its full blocks of 16 before its last token
    in the prefix cache (tutorial 8); the usage says how many, as OpenAI's does."""
    client, api = served
    prompt = "pub fn parse(input: &str) -> Result<Vec<u32>, ParseIntError> { input.split(',').map(str::parse)"
    n = len(client.post("/tokenize", {"text": prompt})[2]["ids"])
    first = api.completions.create(model="tiny-random", prompt=prompt, max_tokens=2)
    again = api.completions.create(model="tiny-random", prompt=prompt, max_tokens=2, stream=True,
                                   stream_options={"include_usage": True})
    usage = list(again)[-1].usage
    assert n > 32 and first.usage.prompt_tokens_details.cached_tokens == 0
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens) == (n, (n - 1) // 16 * 16)


def test_stop_sequences(served):
    _, api = served
    free = api.completions.create(model="tiny-random", prompt="", max_tokens=30, seed=1).choices[0].text
    stop = free[5:8]
    cut = api.completions.create(model="tiny-random", prompt="", max_tokens=30, seed=1, stop=[stop]).choices[0]
    assert cut.finish_reason == "stop" and free.startswith(cut.text + stop)


@pytest.mark.parametrize("kwargs, param", [
    ({"n": 2}, "n"), ({"best_of": 3}, "best_of"), ({"echo": True}, "echo"), ({"logit_bias": {"5": 1}}, "logit_bias"),
    ({"suffix": "}"}, "suffix"), ({"max_tokens": 0}, None), ({"logprobs": 21}, None),
    ({"presence_penalty": 2.5}, None), ({"temperature": 3}, None), ({"extra_body": {"tools": []}}, None),
])
def test_what_is_not_supported_is_a_clear_400(served, kwargs, param):
    _, api = served
    with pytest.raises(openai.BadRequestError) as caught:
        api.completions.create(model="tiny-random", prompt="fn", **kwargs)
    error = caught.value.body
    assert error["type"] == "invalid_request_error" and error["message"]
    if param:
        assert error["param"] == param and "not supported" in error["message"]


def test_another_model_is_a_404(served):
    _, api = served
    with pytest.raises(openai.NotFoundError, match="is not loaded"):
        api.completions.create(model="gpt-4", prompt="fn")


def test_logprobs_match_the_native_api_and_the_reference(served, tiny_model):
    from test_server import reference_logprobs
    client, api = served
    done = api.completions.create(model="tiny-random", prompt="fn main() {", max_tokens=8, temperature=0, logprobs=3)
    native = client.post("/generate", {"prompt": "fn main() {", "max_new_tokens": 8, "do_sample": False,
                                       "logprobs": 3})[2]["tokens"]
    lp = done.choices[0].logprobs
    assert lp.tokens == [t["text"] for t in native] and "".join(lp.tokens) == done.choices[0].text
    assert lp.token_logprobs == [t["logprob"] for t in native]
    assert lp.top_logprobs == [{a["text"]: a["logprob"] for a in t["top_logprobs"]} for t in native]
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(len(lp.tokens))]
    want = reference_logprobs(tiny_model, tiny_model.tokenizer.encode("fn main() {"), [t["id"] for t in native])
    assert all(abs(t["logprob"] - row[t["id"]]) < 1e-4 for t, row in zip(native, want))
    chunks = list(api.completions.create(model="tiny-random", prompt="fn main() {", max_tokens=8, temperature=0,
                                         logprobs=3, stream=True))
    assert [c.choices[0].logprobs.token_logprobs[0] for c in chunks] == lp.token_logprobs
    assert [c.choices[0].logprobs.text_offset[0] for c in chunks] == lp.text_offset


def test_penalties_and_vllms_extra_controls_reach_the_engine(served):
    client, api = served
    done = api.completions.create(model="tiny-random", prompt="let", max_tokens=20, seed=4, frequency_penalty=0.8,
                                  presence_penalty=0.4, extra_body={"top_k": 20, "min_p": 0.05,
                                                                    "repetition_penalty": 1.2})
    native = client.post("/generate", {"prompt": "let", "max_new_tokens": 20, "seed": 4, "temperature": 1.0,
                                       "top_p": 1.0, "top_k": 20, "min_p": 0.05, "repetition_penalty": 1.2,
                                       "frequency_penalty": 0.8, "presence_penalty": 0.4})[2]
    plain = api.completions.create(model="tiny-random", prompt="let", max_tokens=20, seed=4,
                                   extra_body={"top_k": 20, "min_p": 0.05})
    assert done.choices[0].text == native["text"] != plain.choices[0].text
