"""Request bodies -> checked Python values, or an ApiError naming the problem.

Every check names the field, the value it got and what is allowed; a field
of the wrong type is an error, never silently replaced by a default.
"""

import json
import math
from dataclasses import dataclass

from .generation import Settings


class ApiError(Exception):
    """An error a client can act on: HTTP status + JSON body."""

    def __init__(self, status: int, message: str, error_type: str, headers: dict | None = None,
                 param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.error_type = status, message, error_type
        self.headers, self.param = headers or {}, param  # param: the field at fault, where one is

    def body(self) -> dict:
        return {"error": self.message, "error_type": self.error_type}


def invalid(message: str) -> ApiError:
    return ApiError(400, message, "validation")


@dataclass(frozen=True)
class Limits:
    """What the server accepts; see docs/api.md."""
    max_body_bytes: int = 1 << 20
    max_new_tokens: int = 1024
    max_stop_sequences: int = 8
    max_stop_length: int = 64
    max_ids: int = 65536


def parse_json_object(body: bytes) -> dict:
    try:
        value = json.loads(body.decode("utf-8"), object_pairs_hook=object_without_repeats)
    except UnicodeDecodeError:
        raise invalid("request body is not UTF-8") from None
    except json.JSONDecodeError as e:
        raise invalid(f"request body is not valid JSON: {e}") from None
    except RecursionError:  # [[[[...]]]]: Python's parser recurses once per level
        raise invalid("request body is nested too deeply") from None
    if not isinstance(value, dict):
        raise invalid(f"request body must be a JSON object, got {json_type(value)}")
    return value


def object_without_repeats(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object; a key given twice is an error (parsers disagree on which one wins)."""
    value = dict(pairs)
    if len(value) < len(pairs):
        seen = set()
        repeated = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise invalid(f"field {repeated!r} appears more than once")
    return value


def json_type(value) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
             dict: "object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def reject_unknown(body: dict, allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid(f"unknown field {unknown[0]!r}; allowed fields are {', '.join(sorted(allowed))}")


def integer(body, name, default=None, low=None, high=None):
    value = body.get(name, default)
    if name not in body and default is None:
        raise invalid(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{name} must be an integer, got {json_type(value)}")
    check_range(name, value, low, high)
    return value


def number(body, name, default, low=None, high=None, low_open=False):
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(f"{name} must be a number, got {json_type(value)}")
    if not math.isfinite(value):
        raise invalid(f"{name} must be a finite number, got {value}")
    if low_open and value <= low:
        raise invalid(f"{name} must be > {low}{f' and <= {high}' if high is not None else ''}, got {value}")
    check_range(name, value, None if low_open else low, high)
    return float(value)


def check_range(name, value, low, high):
    if low is not None and high is not None and not low <= value <= high:
        raise invalid(f"{name} must be between {low} and {high}, got {value}")
    if low is not None and value < low:
        raise invalid(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise invalid(f"{name} must be <= {high}, got {value}")


def string(body, name, default=None):
    if name not in body and default is None:
        raise invalid(f"{name} is required")
    value = body.get(name, default)
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string, got {json_type(value)}")
    return unicode_text(name, value)


def unicode_text(name: str, value: str) -> str:
    """JSON can spell a lone surrogate ("\\ud800"), which no UTF-8 text holds."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise invalid(f"{name} is not valid Unicode: a lone surrogate U+{ord(value[e.start]):04X} "
                      f"at character {e.start}") from None
    return value


def boolean(body, name, default):
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false, got {json_type(value)}")
    return value


def stop_sequences(body, limits: Limits) -> tuple[str, ...]:
    value = body.get("stop_sequences", [])
    if not isinstance(value, list):
        raise invalid(f"stop_sequences must be an array of strings, got {json_type(value)}")
    if len(value) > limits.max_stop_sequences:
        raise invalid(f"stop_sequences may hold at most {limits.max_stop_sequences} strings, got {len(value)}")
    for i, s in enumerate(value):
        if not isinstance(s, str):
            raise invalid(f"stop_sequences[{i}] must be a string, got {json_type(s)}")
        if not 1 <= len(s) <= limits.max_stop_length:
            raise invalid(f"stop_sequences[{i}] must be 1 to {limits.max_stop_length} characters, got {len(s)}")
        unicode_text(f"stop_sequences[{i}]", s)
    return tuple(value)


SAMPLING_CONTROLS = {"min_p", "repetition_penalty", "frequency_penalty", "presence_penalty", "logprobs"}
GENERATE_FIELDS = {"prompt", "max_new_tokens", "temperature", "top_k", "top_p", "stop_sequences",
                   "do_sample", "seed", "model"} | SAMPLING_CONTROLS
MAX_LOGPROBS = 20


def sampling_controls(body: dict) -> dict:
    """The fields both APIs share beyond the basics, checked; defaults change nothing."""
    defaults = Settings()
    return dict(
        min_p=number(body, "min_p", defaults.min_p, low=0, high=1),
        repetition_penalty=number(body, "repetition_penalty", defaults.repetition_penalty, low=0, high=10,
                                  low_open=True),
        frequency_penalty=number(body, "frequency_penalty", defaults.frequency_penalty, low=-2, high=2),
        presence_penalty=number(body, "presence_penalty", defaults.presence_penalty, low=-2, high=2),
        logprobs=integer(body, "logprobs", 0, 0, MAX_LOGPROBS) if body.get("logprobs") is not None else None,
    )


@dataclass(frozen=True)
class GenerateRequest:
    prompt: str
    settings: Settings
    model: str | None


def generate_request(body: dict, limits: Limits) -> GenerateRequest:
    """Check a /generate or /generate_stream body; defaults as in docs/api.md."""
    reject_unknown(body, GENERATE_FIELDS)
    defaults = Settings()
    settings = Settings(
        max_new_tokens=integer(body, "max_new_tokens", defaults.max_new_tokens, 1, limits.max_new_tokens),
        temperature=number(body, "temperature", defaults.temperature, low=0),
        top_k=integer(body, "top_k", defaults.top_k, low=0),
        top_p=number(body, "top_p", defaults.top_p, low=0, high=1, low_open=True),
        stop_sequences=stop_sequences(body, limits),
        do_sample=boolean(body, "do_sample", defaults.do_sample),
        seed=integer(body, "seed", 0, 0, 2**63 - 1) if "seed" in body else None,
        **sampling_controls(body),
    )
    model = string(body, "model") if "model" in body else None
    return GenerateRequest(string(body, "prompt"), settings, model)


def tokenize_request(body: dict) -> str:
    reject_unknown(body, {"text"})
    return string(body, "text")


def detokenize_request(body: dict, vocab_size: int, limits: Limits) -> list[int]:
    reject_unknown(body, {"ids"})
    if "ids" not in body:
        raise invalid("ids is required")
    ids = body["ids"]
    if not isinstance(ids, list):
        raise invalid(f"ids must be an array of integers, got {json_type(ids)}")
    if len(ids) > limits.max_ids:
        raise invalid(f"ids may hold at most {limits.max_ids} ids, got {len(ids)}")
    for i, x in enumerate(ids):
        if isinstance(x, bool) or not isinstance(x, int):
            raise invalid(f"ids[{i}] must be an integer, got {json_type(x)}")
        if not 0 <= x < vocab_size:
            raise invalid(f"ids[{i}] = {x} is not in the vocabulary (ids are 0..{vocab_size - 1})")
    return ids
