"""The bundled tiktoken files are written once into a cache folder that several processes share
(the workers of `crs serve --workers N` have one CRS_HOME): processes that start writing together
must all succeed and leave whole files."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from crs.memory.tokens import OFFLINE_ENCODINGS, prepare_offline_tiktoken


def _prepare(folder: str, start: mp.synchronize.Barrier, errors: mp.Queue) -> None:  # type: ignore[type-arg]
    start.wait()
    try:
        prepare_offline_tiktoken(folder)
    except Exception as exc:  # reported to the parent, which fails the test
        errors.put(f"{type(exc).__name__}: {exc}")


def test_processes_filling_one_cache_at_once_all_succeed(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    errors: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    for round_ in range(6):
        folder = tmp_path / f"cache{round_}"
        start = ctx.Barrier(6)
        procs = [ctx.Process(target=_prepare, args=(str(folder), start, errors)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        files = [f for f in folder.iterdir() if not f.name.endswith(".tmp")]
        assert len(files) == len(OFFLINE_ENCODINGS) and all(f.stat().st_size > 1000 for f in files)
        assert not [f for f in folder.iterdir() if f.name.endswith(".tmp")]  # no leftovers
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
