"""Load on ``crs serve``: concurrent clients on loopback, the offline engine, real HTTP turns.

    python benchmarks/api_load.py [--clients 16] [--turns 40] [--no-memory | --memory-server]
                                  [--turn-threads N] [--server-cpu auto|off|N] [--memory-process on|off]
                                  [--returning] [--repeat N]
                                  [--out benchmarks/out/api_load.json]

Starts ``crs serve`` (bundled catalog, long-term memory on unless --no-memory) on a free
loopback port, lets each client hold conversations (a genre and decade of its own, no, yes,
"just recommend something", "why the first one?", then picks the first item with an action)
until it has sent ``--turns`` turns, after one warm-up conversation per client that is not
counted. Prints and writes throughput and p50/p95/p99 per-turn latency (client side, whole
HTTP round trip; with ``--repeat N``, each run on a fresh server and the medians of the runs)
and checks the floor: p95 <= 100 ms per turn. It also reports the server's CPU time per turn
(from /proc, user + system, all its threads), and apart from it that of the memory store's
process: what a turn costs, whatever else the machine is running. ``--memory-process off``
keeps the embedded store in the server's own process (as before it had one of its own).
``--memory-server`` keeps long-term memory in a Chroma server (``chroma run`` on loopback)
instead of the embedded store: a separate mode, reported as such.
Each conversation is a new person unless ``--returning`` (each client one person throughout,
so memory recalls and extends what earlier conversations left).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _conversation import lines
from _report import write_json

FLOOR_P95_MS = 100.0
TOKEN = "bench-token-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_chroma(home: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A Chroma server on loopback (the ``chroma`` command beside this Python)."""
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    proc = subprocess.Popen([str(chroma), "run", "--path", str(home / "chroma"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(proc, f"http://127.0.0.1:{port}/api/v2/heartbeat", "chroma run", 60)
    return proc, port


def start_server(home: Path, memory: bool, chroma_port: int | None = None, turn_threads: int | None = None,
                 memory_process: bool | None = None, cpu: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    settings = home / "crs.toml"
    toml = [f"memory = {'true' if memory else 'false'}"]
    if memory_process is not None:
        toml += [f"memory_process = {'true' if memory_process else 'false'}"]
    if chroma_port is not None:
        toml += ['memory_host = "127.0.0.1"', f"memory_port = {chroma_port}"]
    serve = ([f"turn_threads = {turn_threads}"] if turn_threads is not None else []) + (
        [f"cpu = {cpu if cpu.isdigit() else repr(cpu)}"] if cpu is not None else [])
    if serve:
        toml += ["[serve]", *serve]
    settings.write_text("\n".join(toml) + "\n", "utf-8")
    env = {**os.environ, "HOME": str(home), "CRS_HOME": str(home / "crs"), "CRS_API_TOKENS": f"bench:{TOKEN}"}
    proc = subprocess.Popen([sys.executable, "-m", "crs.cli", "serve", "--port", str(port), "--settings",
                             str(settings)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, url + "/readyz", "crs serve", 120)
    return proc, url


def wait_ready(proc: subprocess.Popen[bytes], url: str, name: str, timeout: float) -> None:
    """Until ``url`` answers 200; a process that exits or is not ready in time ends the run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{name} did not become ready")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(pid: int) -> float:
    """:func:`cpu_seconds` of a process's live children (the memory store's process), summed."""
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return 0.0
    return sum(cpu_seconds(c) or 0.0 for c in children)


def server_code() -> dict[str, object]:
    """Which code ``crs serve`` runs here: the folder of the installed ``crs`` and its git commit."""
    where = subprocess.run([sys.executable, "-c", "import crs, os; print(os.path.dirname(crs.__file__))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    git = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no", "--", "..",
                            ":!../benchmarks/out"], capture_output=True, text=True)  # code, not results
    return {"path": str(Path(where).parent), "commit": git.stdout.strip() or None,
            "uncommitted_changes": bool(dirty.stdout.strip())}


async def conversation(client: aiohttp.ClientSession, who: str, session: str, n: int) -> list[tuple[str, float]]:
    """One conversation; returns (kind, seconds) of each turn: ``start`` for its first (where
    long-term memory is recalled), ``text`` for the other texts, and ``accept`` for the pick that
    ends it (where long-term memory reflects on the session)."""
    latencies: list[tuple[str, float]] = []
    last: dict[str, Any] = {}
    for i, line in enumerate(lines(n)):
        t0 = time.perf_counter()
        async with client.post("/v1/chat", json={"user_id": who, "session_id": session, "text": line}) as response:
            response.raise_for_status()
            last = await response.json()
        latencies.append(("start" if i == 0 else "text", time.perf_counter() - t0))
    recs = last.get("recommendations") or []
    if recs:
        t0 = time.perf_counter()
        async with client.post("/v1/chat", json={"user_id": who, "session_id": session,
                                                 "action": {"type": "accept_item", "item_id": recs[0]["id"]}}) as r:
            r.raise_for_status()
            await r.read()
        latencies.append(("accept", time.perf_counter() - t0))
    return latencies


async def drive(url: str, args: argparse.Namespace, server_pid: int) -> tuple[list[list[tuple[str, float]]], float,
                                                                            float | None, float | None, float]:
    """Every client at once on one event loop (aiohttp: about 0.1 ms of CPU per request, so the
    client does not set the pace); the clock starts when all have warmed up."""
    per_client: list[list[tuple[str, float]]] = [[] for _ in range(args.clients)]
    ready = asyncio.Barrier(args.clients + 1)
    async with aiohttp.ClientSession(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"},
                                     connector=aiohttp.TCPConnector(limit=args.clients),
                                     timeout=aiohttp.ClientTimeout(total=60)) as client:
        async def client_loop(index: int) -> None:
            await conversation(client, f"warm{index}", "warm", index)
            await ready.wait()
            n = 0
            while len(per_client[index]) < args.turns:
                who = f"c{index}" if args.returning else f"c{index}-{n}"
                per_client[index] += await conversation(client, who, f"s{n}", index * 7 + n)
                n += 1
            del per_client[index][args.turns:]

        tasks = [asyncio.create_task(client_loop(i)) for i in range(args.clients)]
        await ready.wait()
        start, cpu_start, child_start = time.perf_counter(), cpu_seconds(server_pid), children_cpu_seconds(server_pid)
        await asyncio.gather(*tasks)
        return (per_client, time.perf_counter() - start, cpu_start, cpu_seconds(server_pid),
                children_cpu_seconds(server_pid) - child_start)


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    """One fresh server, the clients' conversations, and this run's figures."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="crs-load-") as tmp:
        chroma, chroma_port = start_chroma(Path(tmp)) if args.memory_server else (None, None)
        proc, url = start_server(Path(tmp), memory=not args.no_memory, chroma_port=chroma_port,
                                 turn_threads=args.turn_threads, memory_process=args.memory_process,
                                 cpu=args.server_cpu)
        try:
            per_client, wall, cpu_start, cpu_end, child_cpu = asyncio.run(drive(url, args, proc.pid))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            if chroma is not None:
                chroma.terminate()
                chroma.wait(timeout=30)

    latencies = sorted(x * 1000 for xs in per_client for _, x in xs)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    by_kind = {}
    for kind in ("start", "text", "accept"):
        these = [x * 1000 for xs in per_client for k, x in xs if k == kind]
        if len(these) >= 2:
            q = statistics.quantiles(these, n=100, method="inclusive")
            by_kind[kind] = {"turns": len(these), "p50": round(q[49], 1), "p95": round(q[94], 1)}
    return {
        "turns": len(latencies),
        "wall_seconds": round(wall, 3),
        "throughput_turns_per_second": round(len(latencies) / wall, 1),
        "latency_ms": {"p50": round(cuts[49], 1), "p95": round(cuts[94], 1), "p99": round(cuts[98], 1),
                       "mean": round(statistics.fmean(latencies), 1), "max": round(latencies[-1], 1)},
        "latency_ms_by_turn": by_kind,
        "server_cpu_ms_per_turn": round((cpu_end - cpu_start) * 1000 / len(latencies), 2)
        if cpu_start is not None and cpu_end is not None else None,
        "memory_process_cpu_ms_per_turn": round(child_cpu * 1000 / len(latencies), 2),
        "load_average_1m_before": round(load_before, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--turns", type=int, default=40, help="counted turns per client (after warm-up)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-memory", action="store_true", help="serve without long-term memory")
    mode.add_argument("--memory-server", action="store_true", help="long-term memory in a Chroma server on loopback")
    parser.add_argument("--turn-threads", type=int, default=None,
                        help="the server's serve.turn_threads (default: the server's own default)")
    parser.add_argument("--server-cpu", default=None,
                        help="the server's serve.cpu: auto, off or a CPU (default: the server's own default, auto)")
    parser.add_argument("--memory-process", choices=("on", "off"), default=None,
                        help="the server's memory_process: the embedded store in a process of its own "
                        "(default: the server's own default, on)")
    parser.add_argument("--returning", action="store_true",
                        help="each client is one person across all its conversations (default: a new person each)")
    parser.add_argument("--repeat", type=int, default=1, help="runs, each on a fresh server; medians are reported")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON result here")
    args = parser.parse_args()
    if args.memory_process is not None:
        args.memory_process = args.memory_process == "on"

    runs = [run_once(args) for _ in range(args.repeat)]

    def median(get: Any) -> float:
        return round(statistics.median(get(r) for r in runs), 2)

    p95 = median(lambda r: r["latency_ms"]["p95"])
    result = {
        "command": "python benchmarks/api_load.py " + " ".join(sys.argv[1:]),
        "clients": args.clients,
        "turns": runs[0]["turns"],
        "memory": "chroma server" if args.memory_server else not args.no_memory,
        "people": "one per client, returning" if args.returning else "a new one per conversation",
        "turn_threads": args.turn_threads or "server default",
        "server_cpu": args.server_cpu or "server default",
        "memory_process": "server default" if args.memory_process is None else args.memory_process,
        "catalog": "bundled albums",
        "runs": len(runs),
        "throughput_turns_per_second": median(lambda r: r["throughput_turns_per_second"]),
        "latency_ms": {k: median(lambda r, k=k: r["latency_ms"][k]) for k in ("p50", "p95", "p99", "mean", "max")},
        "server_cpu_ms_per_turn": median(lambda r: r["server_cpu_ms_per_turn"] or 0.0),
        "memory_process_cpu_ms_per_turn": median(lambda r: r["memory_process_cpu_ms_per_turn"]),
        "each_run": runs,
        "server_code": server_code(),
        "floor_p95_ms": FLOOR_P95_MS,
        "floor_met": p95 <= FLOOR_P95_MS,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    }
    print(json.dumps(result, indent=2))
    write_json(args.out, result)
    if not result["floor_met"]:
        raise SystemExit(f"p95 {p95:.1f} ms (median of {len(runs)} runs) is over the floor of {FLOOR_P95_MS:.0f} ms")


if __name__ == "__main__":
    main()
