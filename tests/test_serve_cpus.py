"""Where ``crs serve`` runs: its interpreter's threads on one CPU, its memory store on the others."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crs import Settings
from crs.ui.cpus import serving_cpu
from tests.live_server import crs_serve
from tests.test_cli import crs
from tests.test_cli_front_door import one_clear_line

linux_affinity = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="CPU affinity is Linux's")


@pytest.fixture
def two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)


@pytest.mark.usefixtures("two_cpus")
@pytest.mark.parametrize(("settings", "workers", "cpu"), [
    ({}, 1, 1),  # one process, memory in a process of its own: the last CPU
    ({"memory": False}, 1, 1),
    ({"memory_host": "127.0.0.1"}, 1, 1),
    ({}, 2, None),  # several workers: each a process, the kernel places them
    ({"memory_process": False}, 1, None),  # embedded Chroma's threads would share the one CPU
    ({"llm": {"provider": "local"}}, 1, None),  # a local model computes on every CPU
    ({"serve": {"cpu": "off"}}, 1, None),
    ({"serve": {"cpu": 0}}, 1, 0),
])
def test_serving_cpu_keeps_one_process_on_one_cpu_when_nothing_needs_more(
        tmp_path: Path, settings: dict[str, object], workers: int, cpu: int | None) -> None:
    full = {"memory_process": True, **settings}  # as crs serve sets it
    assert serving_cpu(Settings(state_dir=tmp_path, **full), workers) == cpu  # type: ignore[arg-type]


def test_serving_cpu_names_the_cpus_a_process_may_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    with pytest.raises(ValueError, match=r"cpu = 5: this process may only use CPUs 0, 1"):
        serving_cpu(Settings(state_dir=tmp_path, serve={"cpu": 5}))


def test_a_cpu_asked_for_where_none_can_be_kept_is_an_error(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert serving_cpu(Settings(state_dir=tmp_path, memory_process=True)) is None  # auto: nothing to do
    with pytest.raises(ValueError, match=r"cpu = 1: this system cannot keep a process on a CPU"):
        serving_cpu(Settings(state_dir=tmp_path, serve={"cpu": 1}))


def test_one_cpu_for_several_workers_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cpu = 0 keeps one process on a CPU; with --workers 2"):
        serving_cpu(Settings(state_dir=tmp_path, serve={"cpu": 0}), workers=2)


@linux_affinity
def test_crs_serve_names_a_cpu_it_may_not_use_in_one_line(tmp_path: Path) -> None:
    settings = tmp_path / "crs.toml"
    settings.write_text("[serve]\ncpu = 4096\n", "utf-8")
    one_clear_line(crs("serve", "--insecure-no-auth", "--settings", str(settings), env_home=tmp_path),
                   "cpu = 4096", "may only use CPUs")


@pytest.mark.parametrize(("value", "shown"), [("-1", "-1"), ('"fast"', "'fast'"), ("true", "True")])
def test_a_cpu_setting_of_no_known_form_is_named_in_one_line(tmp_path: Path, value: str, shown: str) -> None:
    settings = tmp_path / "crs.toml"
    settings.write_text(f"[serve]\ncpu = {value}\n", "utf-8")
    one_clear_line(crs("serve", "--insecure-no-auth", "--settings", str(settings), env_home=tmp_path),
                   "serve.cpu", 'expected a CPU number (0, 1, ...), "auto" or "off"', f"got {shown}")


def test_one_cpu_leaves_nothing_to_choose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert serving_cpu(Settings(state_dir=tmp_path, memory_process=True)) is None


def _cpus(pid: int) -> set[frozenset[int]]:
    """The CPU sets of every thread of a process."""
    return {frozenset(os.sched_getaffinity(int(task))) for task in os.listdir(f"/proc/{pid}/task")}


@linux_affinity
@pytest.mark.slow
def test_a_real_server_runs_on_one_cpu_and_its_memory_store_on_the_others(tmp_path: Path) -> None:
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        pytest.skip("one CPU: nothing to place")
    with crs_serve(tmp_path, env={"CRS_API_TOKENS": "t:cpu-token-123"}) as (_, proc):
        children = [int(c) for c in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        server, store = _cpus(proc.pid), [_cpus(c) for c in children]
    assert server == {frozenset({max(allowed)})}  # every thread of the server, on the last CPU
    assert store == [{frozenset(allowed - {max(allowed)})}]  # its one child, every thread, on the others
    assert f"on CPU {max(allowed)}" in next(tmp_path.glob("serve-*.log")).read_text()
