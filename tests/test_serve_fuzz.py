"""Schemathesis over ``crs serve``'s OpenAPI schema, against a real process: no input gets a 5xx."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from tests.live_server import crs_serve

TOKEN = "fuzz-token-123"
CASES: Counter[tuple[str, str]] = Counter()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("fuzz")
    with crs_serve(home, env={"CRS_API_TOKENS": f"fuzz:{TOKEN}"}) as (url, _):
        yield url


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_input_gets_a_server_error(server: str, mode: GenerationMode) -> None:
    """Every operation, with data that fits the schema and data that breaks it: no 5xx, only
    documented status codes and content types, responses that match their schema, and data
    that breaks the schema refused with a 4xx.

    Schema-valid data may still be refused: an action can name an attribute or item the catalog
    does not have, which is a 422 by design (so Schemathesis's positive-data check is left out).
    """
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 8
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET" and "{" not in operation.path:
            continue  # /healthz, /readyz, /metrics take no input: nothing to break

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            CASES[(mode.value, case.operation.label)] += 1
            case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60,
                                   excluded_checks=[positive_data_acceptance])

        fuzz()


@pytest.mark.slow
def test_every_operation_was_fuzzed(capsys: pytest.CaptureFixture[str]) -> None:
    """Runs after the fuzzing above (later in the same module): every operation got cases."""
    assert len({label for _, label in CASES}) == 8, CASES
    with capsys.disabled():
        print(f"\nschemathesis: {sum(CASES.values())} cases over 8 operations: {dict(CASES)}")
