"""Shared fixtures: small catalogs, the benchmark data location, and an isolated home."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from crs.kb import Catalog, FacetSpec, Item, KnowledgeGraph, Vocabulary, build_graph

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never write into the user's home: caches and state go to a temporary folder."""
    home = tmp_path_factory.getbasetemp() / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CRS_HOME", str(home / "crs"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(autouse=True)
def _every_cpu_back() -> Iterator[None]:
    """A test that runs `crs serve` in this process leaves it on one CPU (crs.ui.cpus): put back
    the CPUs it had, so later tests (and what they start) are not confined to it."""
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    yield
    if before is not None and os.sched_getaffinity(0) != before:
        for task in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                os.sched_setaffinity(int(task), before)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def switch(name: str) -> bool:
    """A boolean environment switch: 1/true/yes/on or 0/false/no/off (unset is off); anything else is an error."""
    value = os.environ.get(name, "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise pytest.UsageError(f"{name}={os.environ[name]!r}: use 1 or 0 (true/false, yes/no, on/off)")
    return value in _TRUE


REQUIREMENTS = ("DATA", "BROWSER", "LOCAL_LLM", "SERVICES")


def pytest_configure(config: pytest.Config) -> None:
    for requirement in REQUIREMENTS:  # a mistyped value stops the run at once, not at the first skip
        switch(f"CRS_REQUIRE_{requirement}")


def missing(requirement: str, reason: str) -> NoReturn:
    """Skip for want of something a test needs, or fail where ``CRS_REQUIRE_<requirement>`` says it must be there.

    CI sets CRS_REQUIRE_DATA, CRS_REQUIRE_BROWSER, CRS_REQUIRE_LOCAL_LLM and CRS_REQUIRE_SERVICES, so nothing
    is skipped there; on a fresh machine these tests skip with the reason.
    """
    if switch(f"CRS_REQUIRE_{requirement}"):
        pytest.fail(f"{reason} (required: CRS_REQUIRE_{requirement} is set)")
    pytest.skip(reason)


def require_data(name: str = "lastfm") -> Path:
    """The benchmark folder, or a skip saying why (a failure in CI, where it must exist)."""
    path = SHARED_DATA / name
    if not path.is_dir():
        missing("DATA", f"benchmark data not found at {path} (it lives outside the repository)")
    return SHARED_DATA


@pytest.fixture
def data_dir() -> Path:
    return require_data("lastfm")


def _album(ident: str, name: str, **facets: list[str]) -> Item:
    return Item(id=ident, name=name, attributes=dict(facets))


TOY_ITEMS = [
    _album("kind-of-blue", "Kind of Blue — Miles Davis", genre=["jazz"], decade=["1950s"], mood=["calm"]),
    _album("a-love-supreme", "A Love Supreme — John Coltrane", genre=["jazz"], decade=["1960s"],
           mood=["uplifting"]),
    _album("blue-train", "Blue Train — John Coltrane", genre=["jazz"], decade=["1950s"], mood=["energetic"]),
    _album("thriller", "Thriller — Michael Jackson", genre=["pop"], decade=["1980s"], mood=["party"]),
    _album("purple-rain", "Purple Rain — Prince", genre=["pop", "rock"], decade=["1980s"], mood=["energetic"]),
    _album("nevermind", "Nevermind — Nirvana", genre=["rock", "grunge"], decade=["1990s"], mood=["energetic"]),
    _album("ok-computer", "OK Computer — Radiohead", genre=["rock"], decade=["1990s"], mood=["melancholic"]),
    _album("blue", "Blue — Joni Mitchell", genre=["folk"], decade=["1970s"], mood=["melancholic"]),
    _album("illmatic", "Illmatic — Nas", genre=["hip hop"], decade=["1990s"], mood=["dark"]),
    _album("discovery", "Discovery — Daft Punk", genre=["electronic"], decade=["2000s"], mood=["party"]),
    _album("vespertine", "Vespertine — Björk", genre=["electronic"], decade=["2000s"], mood=["calm"]),
    _album("rumours", "Rumours — Fleetwood Mac", genre=["rock", "pop"], decade=["1970s"], mood=["upbeat"]),
]
TOY_VOCAB = Vocabulary(
    facets={
        "genre": FacetSpec(question="In the mood for {value}?", synonyms={"hip hop": ["rap", "hip-hop"]}),
        "decade": FacetSpec(question="Something from the {value}?",
                            synonyms={"1980s": ["80s", "eighties"], "1990s": ["90s"]}),
        "mood": FacetSpec(synonyms={"calm": ["chill", "relaxed"]}),
    }
)


@pytest.fixture
def toy_catalog() -> Catalog:
    return Catalog(items=list(TOY_ITEMS), vocabulary=TOY_VOCAB)


@pytest.fixture
def toy_graph(toy_catalog: Catalog) -> KnowledgeGraph:
    interactions = [("u1", "thriller"), ("u2", "thriller"), ("u1", "kind-of-blue"), ("u3", "nevermind")]
    return build_graph(toy_catalog, interactions)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database for the tests: ``CRS_TEST_POSTGRES_URL`` (CI starts one), else a cluster
    of our own in a temp folder when the binaries are installed, else a skip (a failure in CI)."""
    url = os.environ.get("CRS_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from tests.services import Postgres, postgres_bindir

    if postgres_bindir() is None:
        missing("SERVICES", "PostgreSQL is not installed (no initdb) and CRS_TEST_POSTGRES_URL is not set")
    folder = Path(tempfile.mkdtemp(prefix="crs-test-pg-"))  # not under pytest's 0700 root-owned tmp
    server = Postgres(folder).start()
    try:
        yield server.url
    finally:
        server.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def chroma_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A Chroma server for the tests: ``CRS_TEST_CHROMA=host:port`` (CI starts one), else ``chroma run``
    of our own, else a skip (a failure in CI)."""
    address = os.environ.get("CRS_TEST_CHROMA")
    if address:
        host, _, port = address.rpartition(":")
        yield host, int(port)
        return
    from tests.services import CHROMA, Chroma

    if not CHROMA.exists():
        missing("SERVICES", f"the chroma command is not installed next to {CHROMA.parent} and CRS_TEST_CHROMA is "
                "not set")
    server = Chroma(tmp_path_factory.mktemp("chroma-server")).start()
    try:
        yield "127.0.0.1", server.port
    finally:
        server.stop()
