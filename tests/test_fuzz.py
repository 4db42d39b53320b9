"""Bad input at scale: Hypothesis feeds the catalog loaders, the settings loader and the parser.

The catalog loaders' fast paths (for 1M-item catalogs) are fuzzed against the plain paths too.

Each may only succeed or raise its documented error (``CatalogError``, ``SettingsError``); the
parser always returns a ``Feedback``. Edge cases (and any case Hypothesis finds) are kept as
``@example`` rows, so they run every time.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crs import Settings, SettingsError, load_settings
from crs.kb import Catalog, CatalogError, build_graph, load_catalog, load_interactions, load_vocabulary
from crs.kb.loaders import BUNDLED_CATALOG, _jsonl_rows, _validated_items, iter_interaction_pairs
from crs.kb.models import Item
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


# ------------------------------------------------------------- fast paths
# A 1M-item catalog loads through fast paths (one-step JSON validation, streamed interaction
# pairs); on anything at all they must give what the plain paths give: the same items or pairs,
# or the same error message.

def _outcome(load: Callable[[], object]) -> tuple[str, object]:
    try:
        return "ok", load()
    except CatalogError as exc:
        return "error", str(exc)


def _plain_items(path: Path) -> list[Item]:
    items = _validated_items(_jsonl_rows(path), path, None)
    if not items:
        raise CatalogError("the catalog has no items", path=path)
    return items


@FUZZ
@given(st.lists(rows, max_size=4), st.lists(st.sampled_from(
    ["", " ", "\ufeff{}", "{} {}", "[]", "null", '{"id": "\\ud800", "name": "A", "attributes": {"g": ["x"]}}',
     '{"id": "a", "name": "A", "attributes": {"g": ["x"]}, "id": "b"}', "NaN", '"text"']), max_size=2),
       st.booleans())
@example([{"id": "a", "name": "A", "attributes": {"g": ["x"]}}], ["\ufeff{}"], True)
@example([{"id": " a ", "name": "A", "attributes": {"g": ["x", "x"]}}], ["{} {}"], False)
@example([], ['{"id": "\\ud800", "name": "A", "attributes": {"g": ["x"]}}'], False)
@example([{"id": "a", "name": "A", "attributes": {"g": ["x"]}}] * 2, [], False)
def test_the_fast_catalog_path_reads_what_the_plain_one_reads(batch: list[object], noise: list[str],
                                                                noise_first: bool) -> None:
    lines = [json.dumps(r, allow_nan=True) for r in batch]
    lines = [*noise, *lines] if noise_first else [*lines, *noise]
    path = _write(".jsonl", "\n".join(lines))
    fast = _outcome(lambda: load_catalog(path).items)
    assert fast == _outcome(lambda: _plain_items(path))


@FUZZ
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode), st.sampled_from(
    [b"user,item\n", b"user,item,timestamp\n", b"item,user\n", b"user,item,extra\n", b""]))
@example(b"u1,i1\n u2,i2\nu3, \n", b"user,item\n")
@example(b"u1,i1,\nu2,i2,12.5\nu3,i3,soon\n", b"user,item,timestamp\n")
@example(b"\n,\nu1\nu1,i1,i2\n", b"user,item\n")
@example(b'"u 1","i,1"\n"u\xe2\x80\x83",i\nu1,"i1\n', b"user,item\n")
def test_streamed_interaction_pairs_match_the_records(body: bytes, header: bytes) -> None:
    path = _write(".csv", header + body)
    pairs = _outcome(lambda: list(iter_interaction_pairs(path)))
    assert pairs == _outcome(lambda: [(r.user, r.item) for r in load_interactions(path)])
    path = _write(".jsonl", body)
    pairs = _outcome(lambda: list(iter_interaction_pairs(path)))
    assert pairs == _outcome(lambda: [(r.user, r.item) for r in load_interactions(path)])
