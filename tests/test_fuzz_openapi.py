"""Fuzzing from the OpenAPI description (schemathesis): requests generated from
every operation's schema, valid and invalid, against the real server over
loopback. Every response must be a documented status with a body matching
its schema, none a 5xx, and the server must answer /health afterwards.

Bounded for CI: FUZZ_EXAMPLES examples per operation and mode (positive:
bodies the schema allows; negative: bodies it forbids).
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from inference.server import OPENAPI_FILE
from inference.validation import Limits
from test_server import serving

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def running(tiny_model):
    with serving(tiny_model, limits=Limits(max_new_tokens=8)) as (client, _):
        yield client


schema = schemathesis.openapi.from_path(OPENAPI_FILE)  # the file the server serves
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented_and_none_is_a_5xx(case, running):
    case.call_and_validate(base_url=f"http://127.0.0.1:{running.port}", checks=CHECKS, timeout=30)


def test_the_server_lives_on_after_the_fuzzing(running):
    assert running.request("GET", "/health")[0] == 200
