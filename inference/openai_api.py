"""The OpenAI completions API, the one editors, agents and scripts speak:

    POST /v1/completions   {"model", "prompt", "max_tokens", "temperature", "top_p", "stop", "seed",
                            "stream", "stream_options": {"include_usage"}, "logprobs",
                            "frequency_penalty", "presence_penalty",
                            and, as vLLM also takes them, "top_k", "min_p", "repetition_penalty"}
    GET  /v1/models

Requests go to the same engine as /generate; only the shapes differ. What
this server cannot do is refused with a 400 naming the field, never
ignored: n and best_of other than 1, echo, suffix, logit_bias. OpenAI's
defaults apply (temperature 1, top_p 1, no top-k, max_tokens 16); logprobs
may ask for up to 20 alternatives (OpenAI's limit is 5). There is no chat
route: the shipped model is a completion model for Rust source and has no
chat format to put messages in.
"""

import time
from dataclasses import dataclass

from .generation import Settings, Token
from .validation import (SAMPLING_CONTROLS, ApiError, Limits, boolean, integer, invalid, json_type, number,
                         reject_unknown, sampling_controls, string, unicode_text)

# Accepted only with the value that means "not used": anything else is a 400.
NOT_SUPPORTED = {"n": 1, "best_of": 1, "echo": False, "suffix": None, "logit_bias": {}}
COMPLETION_FIELDS = {"model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "stop", "seed", "stream",
                     "stream_options", "user"} | SAMPLING_CONTROLS | set(NOT_SUPPORTED)
FINISH_REASONS = {"length": "length", "stop": "stop", "eos": "stop"}  # OpenAI has no "eos": the model stopped
ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
               415: "invalid_request_error", 429: "rate_limit_error", 503: "server_error"}


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    prompt: str
    settings: Settings
    stream: bool
    include_usage: bool


def completion_request(body: dict, limits: Limits) -> CompletionRequest:
    reject_unknown(body, COMPLETION_FIELDS)
    body = {name: value for name, value in body.items() if value is not None}  # null: "not given", as in OpenAI's API
    for name, neutral in NOT_SUPPORTED.items():
        if body.get(name) not in (neutral, None):
            raise ApiError(400, f"{name}={body[name]!r} is not supported by this server (only {neutral!r})",
                           "validation", param=name)
    if not isinstance(body.get("prompt"), str):
        raise ApiError(400, f"prompt must be a string, got {json_type(body.get('prompt'))} (token arrays and "
                            f"batches of prompts are not supported)", "validation", param="prompt")
    temperature = number(body, "temperature", 1.0, low=0, high=2)
    top_p = number(body, "top_p", 1.0, low=0, high=1, low_open=True)
    settings = Settings(max_new_tokens=integer(body, "max_tokens", 16, 1, limits.max_new_tokens),
                        temperature=temperature, top_k=integer(body, "top_k", 0, low=0), top_p=top_p,
                        stop_sequences=stops(body, limits), do_sample=temperature > 0,
                        seed=integer(body, "seed", 0, 0, 2**63 - 1) if "seed" in body else None,
                        **sampling_controls(body))
    options = body.get("stream_options") or {}
    if not isinstance(options, dict) or set(options) - {"include_usage"}:
        raise ApiError(400, "stream_options may only hold include_usage", "validation", param="stream_options")
    return CompletionRequest(string(body, "model"), string(body, "prompt"), settings,
                             boolean(body, "stream", False), boolean(options, "include_usage", False))


def stops(body: dict, limits: Limits) -> tuple[str, ...]:
    value = body.get("stop")
    value = [] if value is None else [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ApiError(400, "stop must be a string or an array of strings", "validation", param="stop")
    if len(value) > limits.max_stop_sequences:
        raise ApiError(400, f"stop may hold at most {limits.max_stop_sequences} strings, got {len(value)}",
                       "validation", param="stop")
    for i, s in enumerate(value):
        if not 1 <= len(s) <= limits.max_stop_length:
            raise invalid(f"stop[{i}] must be 1 to {limits.max_stop_length} characters, got {len(s)}")
        unicode_text(f"stop[{i}]", s)
    return tuple(value)


class Completion:
    """One completion's id, time and model, for its response or its stream's
    chunks; `token_text` (id -> its text) when logprobs were asked for."""

    def __init__(self, model: str, token_text=None):
        self.id, self.created, self.model = f"cmpl-{time.time_ns():x}", int(time.time()), model
        self.token_text, self.offset = token_text, 0

    def body(self, tokens: list[Token], prompt_tokens: int, cached_tokens: int) -> dict:
        choice = self.choice("".join(t.text for t in tokens), tokens[-1].finish_reason, self.logprobs(tokens))
        return {**self.head(), "choices": [choice], "usage": usage(prompt_tokens, len(tokens), cached_tokens)}

    def chunk(self, token: Token) -> dict:
        return {**self.head(), "choices": [self.choice(token.text, token.finish_reason, self.logprobs([token]))]}

    def logprobs(self, tokens: list[Token]) -> dict | None:
        """OpenAI's completions logprobs: parallel lists, one entry per token, each
        token as its own text; text_offset counts characters of those texts from 0."""
        if self.token_text is None:
            return None
        out = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        for token in tokens:
            text = self.token_text(token.id)
            out["tokens"].append(text)
            out["token_logprobs"].append(token.logprob)
            out["top_logprobs"].append({self.token_text(i): logprob for i, logprob in token.top})
            out["text_offset"].append(self.offset)
            self.offset += len(text)
        return out

    def usage_chunk(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict:
        return {**self.head(), "choices": [], "usage": usage(prompt_tokens, completion_tokens, cached_tokens)}

    def head(self) -> dict:
        return {"id": self.id, "object": "text_completion", "created": self.created, "model": self.model}

    @staticmethod
    def choice(text: str, finish_reason: str | None, logprobs: dict | None) -> dict:
        return {"text": text, "index": 0, "logprobs": logprobs,
                "finish_reason": FINISH_REASONS[finish_reason] if finish_reason else None}


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict:
    """OpenAI's usage; cached_tokens: the prompt's positions found in the prefix cache."""
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens}}


def models_list(name: str, created: int) -> dict:
    return {"object": "list", "data": [{"id": name, "object": "model", "created": created, "owned_by": "inference"}]}


def openai_error(e: ApiError) -> dict:
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": e.message, "type": ERROR_TYPES.get(e.status, "server_error"),
                      "param": e.param, "code": e.error_type}}
