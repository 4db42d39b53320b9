"""Bad input at scale: Hypothesis feeds the catalog loaders, the settings loader and the parser.

Each may only succeed or raise its documented error (``CatalogError``, ``SettingsError``); the
parser always returns a ``Feedback``. Edge cases (and any case Hypothesis finds) are kept as
``@example`` rows, so they run every time.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import suppress
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crs import Settings, SettingsError, load_settings
from crs.kb import Catalog, CatalogError, build_graph, load_catalog, load_interactions, load_vocabulary
from crs.kb.loaders import BUNDLED_CATALOG
from crs.language.nlu import NLUContext, OfflineNLU
from crs.reasoning.state import Feedback

pytestmark = pytest.mark.slow
# CRS_FUZZ_EXAMPLES=5000 for a long hunt; the found cases become @example rows.
FUZZ = settings(max_examples=int(os.environ.get("CRS_FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# JSON values that look like catalog rows: known keys with values of any type, and stray keys.
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8), inner, max_size=4), max_leaves=12)
row_keys = st.sampled_from(["id", "name", "description", "attributes", "user", "item", "timestamp", "extra"])
rows = st.dictionaries(row_keys, values, max_size=6) | st.fixed_dictionaries(
    {"id": st.text(max_size=10), "name": st.text(max_size=20),
     "attributes": st.dictionaries(st.text(max_size=8), st.lists(st.text(max_size=10), max_size=3) | values,
                                   max_size=3)})


def _write(suffix: str, content: str | bytes) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="crs-fuzz-"))
    path = folder / f"data{suffix}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    return path


def _lines(batch: list[object]) -> str:
    return "\n".join(json.dumps(r, allow_nan=True) for r in batch)


@FUZZ
@given(st.lists(rows, max_size=5))
@example([{"id": "", "name": "x", "attributes": {}}])
@example([{"id": "a", "name": "A", "attributes": {"": ["x"]}}])
@example([{"id": "a", "name": "A", "attributes": {"genre": "jazz"}}])
@example([{"id": "a", "name": "A", "attributes": {"genre": [""]}}])
def test_jsonl_catalogs_load_or_say_what_is_wrong(batch: list[object]) -> None:
    path = _write(".jsonl", _lines(batch))
    try:
        catalog = load_catalog(path)
    except CatalogError as exc:
        assert str(exc).startswith(str(path)), exc
        return
    assert isinstance(catalog, Catalog) and catalog.items
    build_graph(catalog)  # a catalog that loads also builds a graph


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
@example(b"\xff\xfe")
@example(b'{"id": "a", "name": "A"}\n[1, 2]')
@example(b"id,name,genre\na,A,jazz|rock\n")
@example(b"id,name\na,A,extra\n")
def test_any_bytes_in_a_catalog_file(content: bytes) -> None:
    for suffix in (".jsonl", ".csv"):
        path = _write(suffix, content)
        try:
            catalog = load_catalog(path)
        except CatalogError:
            continue
        build_graph(catalog)


@FUZZ
@given(st.lists(rows, max_size=5), st.binary(max_size=200))
@example([{"user": "u", "item": "i", "timestamp": "soon"}], b"user,item\nu\n")
def test_interactions_and_vocabularies(batch: list[object], content: bytes) -> None:
    for path in (_write(".jsonl", _lines(batch)), _write(".csv", content)):
        with suppress(CatalogError):  # loaded, or refused with the documented error
            load_interactions(path)
    for path in (_write(".json", json.dumps(batch[0] if batch else None)), _write(".json", content)):
        with suppress(CatalogError):
            load_vocabulary(path)


setting_keys = st.sampled_from(["catalog", "persona", "policy", "memory", "max_message_chars", "state_dir",
                                "llm", "memory_settings", "embeddings", "temprature", ""])


@FUZZ
@given(st.dictionaries(setting_keys, values, max_size=4), st.sampled_from([".json", ".toml", ".yaml", ".yml"]),
       st.text(max_size=120))
@example({"policy": {"top_k": -1}}, ".json", "")
@example({"max_message_chars": 0}, ".json", "")
@example({}, ".toml", "persona = 'nobody'")
@example({}, ".yaml", "- just\n- a list")
@example({}, ".toml", "[policy\n")
def test_settings_files_load_or_name_the_problem(table: dict[str, object], suffix: str, raw: str) -> None:
    texts = [raw]
    if suffix == ".json":
        texts.append(json.dumps(table, allow_nan=True))
    for text in texts:
        path = _write(suffix, text)
        try:
            loaded = load_settings(path)
        except SettingsError as exc:
            assert str(path) in str(exc), exc
            continue
        assert isinstance(loaded, Settings)


@pytest.fixture(scope="module")
def nlu() -> OfflineNLU:
    return OfflineNLU(build_graph(load_catalog(BUNDLED_CATALOG)))


@FUZZ
@given(text=st.text(max_size=400) | st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=400),
       shown=st.lists(st.sampled_from(["kind-of-blue", "time-out", "blue-train", "nope"]), max_size=3))
@example(text="\x00" * 50 + "jazz", shown=[])
@example(text="#99999999999999999999", shown=["kind-of-blue"])
@example(text="number 0", shown=["kind-of-blue"])
@example(text="the -1st one", shown=["kind-of-blue", "time-out"])
@example(text="\u202e\u200bzaj", shown=[])
def test_the_parser_reads_anything(nlu: OfflineNLU, text: str, shown: list[str]) -> None:
    context = NLUContext(question="genre:jazz", recommended=tuple(dict.fromkeys(s for s in shown if s != "nope")))
    feedback = nlu.understand(text, context)
    assert isinstance(feedback, Feedback)
    assert set(feedback.accept_attributes).isdisjoint(feedback.reject_attributes)
