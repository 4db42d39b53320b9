"""Where a one-process ``crs serve`` runs: its interpreter on one CPU, its memory store beside it.

Python runs one thread of a process at a time (the interpreter lock), and each turn hands it
from thread to thread several times: the event loop, the turn's thread, the thread LangGraph
starts to save the checkpoint, and back. Left to the kernel, those threads land on different
cores, and every handoff crosses cores (a wake-up on the other core, the interpreter's state
moved between caches). Kept on one CPU, the same turns cost a quarter less CPU: at 16 clients,
3.94 -> 2.98 ms a turn without memory, 5.05 -> 3.64 ms with it, and p95 124.7 -> 71.2 ms
(``benchmarks/RESULTS.md``, "HTTP API under load"). The memory store's process then runs on the
other CPUs (:mod:`crs.memory.process_store`), where its writes never wait for the server's core.

Only where nothing of the server computes on several cores at once: not with ``--workers N``
(each worker is a process of its own, as are PostgreSQL and a Chroma server), not with a local
chat model (it computes on every core it may use), and not with the embedded memory store in
the server's own process (Chroma's threads would share the one core).
"""

from __future__ import annotations

import os

from crs import Settings

__all__ = ["keep_on_cpu", "serving_cpu"]


def serving_cpu(settings: Settings, workers: int = 1) -> int | None:
    """The CPU to keep a server process on (``[serve] cpu``), or None to leave its threads to the
    kernel. ``"auto"`` picks the last CPU this process may use, when it may use two or more."""
    choice = settings.serve.cpu
    if isinstance(choice, int) and workers > 1:
        raise ValueError(f"[serve] cpu = {choice} keeps one process on a CPU; with --workers {workers} "
                         "set cpu = \"auto\" or \"off\"")
    if choice == "off" or workers > 1:
        return None
    if not hasattr(os, "sched_getaffinity"):
        if isinstance(choice, int):
            raise ValueError(f"[serve] cpu = {choice}: this system cannot keep a process on a CPU; "
                             "use \"auto\" or \"off\"")
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if isinstance(choice, int):
        if choice not in allowed:
            raise ValueError(f"[serve] cpu = {choice}: this process may only use CPUs "
                             f"{', '.join(map(str, allowed))}")
        return choice
    in_process_chroma = settings.memory and settings.memory_host is None and not settings.memory_process
    if len(allowed) < 2 or settings.llm.provider == "local" or in_process_chroma:
        return None
    return allowed[-1]


def keep_on_cpu(cpu: int) -> None:
    """Confine every thread of this process to ``cpu``; threads and processes it starts later
    inherit it (the memory store's process moves itself to the other CPUs)."""
    try:
        tasks = [int(task) for task in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: this thread, and those it starts from now on
        tasks = [0]
    for task in tasks:
        try:
            os.sched_setaffinity(task, {cpu})
        except ProcessLookupError:  # a thread that ended meanwhile
            continue
