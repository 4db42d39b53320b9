"""Load on ``crs serve --workers N`` over the shared stores: PostgreSQL checkpoints, a Chroma server.

    python benchmarks/workers_load.py [--users 200] [--turns 20] [--workers 1 2] \
        [--out benchmarks/out/workers_load.json]

Starts a PostgreSQL cluster (durable defaults: fsync on) and ``chroma run`` in a temp folder,
then for each worker count a fresh ``crs serve --workers N`` on them (bundled catalog, long-term
memory on). One client process (asyncio + aiohttp) runs every simulated user at once; each user
holds the conversations of ``benchmarks/api_load.py`` (a genre and decade, no, yes, "just
recommend something", "why the first one?", then the first item shown is chosen with an action,
where long-term memory reflects on the session) until it has sent ``--turns`` turns, after one
warm-up turn per user that is not counted. Reports throughput, p50/p95/p99 per-turn latency (whole HTTP round trip),
errors (must be 0), the CPU seconds used by the workers, PostgreSQL, Chroma and the client, the
load average, and the throughput ratio of the last worker count to the first (floor: 1.6).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._conversation import lines  # noqa: E402
from benchmarks._report import write_json  # noqa: E402
from tests.services import Chroma, Postgres, free_port  # noqa: E402
from tests.workers_server import wait_ready, worker_pids  # noqa: E402

FLOOR_RATIO = 1.6
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """user + system CPU of a process and its waited-for children, in seconds (0 if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / _TICK


def _tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


class CpuMeter:
    """CPU seconds used by process trees between start() and stop() (processes that come and go
    during the run are sampled every 0.5 s, so short-lived ones are counted up to the last sample)."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self.seen: dict[str, dict[int, tuple[float, float]]] = {name: {} for name in roots}
        self._stop = threading.Event()
        self.loads: list[float] = []

    def _sample(self) -> None:
        for name, root in self.roots.items():
            for pid in _tree(root):
                cpu = _cpu_seconds(pid)
                first, _ = self.seen[name].get(pid, (cpu, cpu))
                self.seen[name][pid] = (first, cpu)
        self.loads.append(os.getloadavg()[0])

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def start(self) -> None:
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._sample()
        return {name: round(sum(last - first for first, last in pids.values()), 2) for name, pids in self.seen.items()}

    def busiest(self, name: str, n: int) -> list[float]:
        """CPU seconds of the ``n`` busiest processes of one tree (the workers of the supervisor)."""
        return sorted((round(last - first, 2) for first, last in self.seen[name].values()), reverse=True)[:n]


def start_serve(home: Path, settings: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "HOME": str(home), "CRS_HOME": str(home / "crs"), "ANONYMIZED_TELEMETRY": "False"}
    log_path = home / f"serve-{workers}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "crs.cli", "serve", "--port", str(port), "--workers",
                             str(workers), "--insecure-no-auth", "--settings", str(settings)],
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own session, as on a server: not the client's
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc, log_path, workers, timeout=300)
    return proc, url


async def user(client: aiohttp.ClientSession, who: str, n: int, turns: int, warm: asyncio.Barrier,
               latencies: list[float], errors: list[str], choose: bool = True) -> None:
    shown: list[str] = []  # the items of the last reply

    async def turn(session: str, said: dict[str, Any], key: str) -> float | None:
        t0 = time.perf_counter()
        try:
            async with client.post("/v1/chat", json={"user_id": who, "session_id": session, **said},
                                   headers={"Idempotency-Key": key}) as r:
                body = await r.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            return None
        if r.status != 200:
            errors.append(f"{r.status}: {body[:200]!r}")
            return None
        shown[:] = [item["id"] for item in json.loads(body).get("recommendations") or ()]
        return time.perf_counter() - t0

    await turn("warm", {"text": "hello"}, f"{who}-warm")
    await warm.wait()  # every user is warm: the measured part starts together
    sent = 0
    conversation = 0
    while sent < turns:
        # the conversation of api_load.py: five messages, then the first item shown is chosen
        # (where long-term memory reflects on the session)
        for text in [*lines(n + conversation), None]:
            if sent >= turns or (text is None and not (choose and shown)):
                break
            said = {"text": text} if text is not None else {"action": {"type": "accept_item", "item_id": shown[0]}}
            took = await turn(f"c{conversation}", said, f"{who}-{sent}")
            if took is not None:
                latencies.append(took)
            sent += 1
        conversation += 1


async def drive(url: str, users: int, turns: int, tag: str, choose: bool = True) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    warm = asyncio.Barrier(users + 1)
    # aiohttp, not httpx: httpx's async pool spent 3.5 ms of CPU per request at this many
    # connections (aiohttp: 0.1 ms), so the client, not crs, set the pace on a 2-core machine
    connector = aiohttp.TCPConnector(limit=users)
    async with aiohttp.ClientSession(base_url=url, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=300)) as client:
        tasks = [asyncio.create_task(user(client, f"{tag}-u{i}", i, turns, warm, latencies, errors, choose))
                 for i in range(users)]
        await warm.wait()
        t0 = time.perf_counter()
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - t0
    return {"latencies": latencies, "errors": errors, "wall": wall}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


def run_one(home: Path, settings: Path, workers: int, users: int, turns: int,
            stores: dict[str, int], choose: bool = True) -> dict[str, Any]:
    proc, url = start_serve(home, settings, workers)
    try:
        pids = worker_pids(proc.pid)
        meter = CpuMeter({"crs workers": proc.pid, **stores})
        client_before = resource.getrusage(resource.RUSAGE_SELF)
        load_before = os.getloadavg()
        meter.start()
        out = asyncio.run(drive(url, users, turns, f"w{workers}", choose))
        cpu = meter.stop()
        client_after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    if out["errors"]:  # the server's log says why; keep it where the temp folder will not take it
        kept = Path(tempfile.gettempdir()) / f"crs-workers-load-{workers}-{os.getpid()}.log"
        shutil.copy(home / f"serve-{workers}.log", kept)
        print(f"  server log with the errors: {kept}", flush=True)
    # the client's CPU includes the warm-up turns; it is a bound, not an exact share
    cpu["client (this process)"] = round((client_after.ru_utime + client_after.ru_stime)
                                         - (client_before.ru_utime + client_before.ru_stime), 2)
    lat_ms = [x * 1000 for x in out["latencies"]]
    done = len(out["latencies"])
    wall = out["wall"]
    result = {
        "workers": workers,
        "worker_pids": len(pids),
        "turns": done,
        "errors": len(out["errors"]),
        "error_samples": out["errors"][:5],
        "seconds": round(wall, 2),
        "throughput_turns_per_s": round(done / wall, 2),
        "latency_ms": {"p50": round(pct(lat_ms, 50), 1), "p95": round(pct(lat_ms, 95), 1),
                       "p99": round(pct(lat_ms, 99), 1),
                       "mean": round(statistics.fmean(lat_ms), 1) if lat_ms else None},
        "cpu_seconds": cpu,
        "cores_busy": {k: round(v / wall, 2) for k, v in cpu.items()},
        "cores_busy_total": round(sum(cpu.values()) / wall, 2),
        "cpu_seconds_per_worker": meter.busiest("crs workers", workers),
        "cpu_seconds_per_turn": {k: round(v / max(done, 1) * 1000, 2) for k, v in cpu.items()},
        "loadavg_1min": {"before": round(load_before[0], 2), "during_mean": round(statistics.fmean(meter.loads), 2),
                         "during_max": round(max(meter.loads), 2)},
    }
    result["cpu_seconds_per_turn_unit"] = "ms of CPU per turn"
    print(f"{workers} worker(s): {done} turns in {wall:.1f} s = {done / wall:.1f} turns/s; "
          f"p50 {result['latency_ms']['p50']} ms, p95 {result['latency_ms']['p95']} ms, "
          f"p99 {result['latency_ms']['p99']} ms; errors {len(out['errors'])}; cores busy {result['cores_busy']}; "
          f"load {result['loadavg_1min']}", flush=True)
    for sample in result["error_samples"]:
        print("  error:", sample, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--turns", type=int, default=20, help="turns per user")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-fsync", action="store_true",
                        help="PostgreSQL without fsync (to see how much of a turn waits on the disk)")
    parser.add_argument("--turn-threads", type=int, default=None,
                        help="each worker's serve.turn_threads (default: the server's own default)")
    parser.add_argument("--no-choice", action="store_true",
                        help="conversations end without a choice (no session reflects to long-term memory)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="crs-workers-load-"))
    folder.chmod(0o755)  # PostgreSQL runs as another user when we are root: it must reach its folder
    pg = Postgres(folder / "postgres", fast=args.no_fsync).start()
    chroma = Chroma(folder / "chroma").start(detach=True)  # a session of its own, like PostgreSQL's
    assert chroma.proc is not None
    pg_pid = int((pg.data / "postmaster.pid").read_text().split()[0])
    settings = folder / "crs.toml"
    settings.write_text(f'checkpoints_url = "{pg.url}"\nmemory_host = "127.0.0.1"\nmemory_port = {chroma.port}\n'
                        + (f"[serve]\nturn_threads = {args.turn_threads}\n" if args.turn_threads else ""))
    runs = []
    try:
        for workers in args.workers:
            home = folder / f"home-{workers}"
            home.mkdir()
            runs.append(run_one(home, settings, workers, args.users, args.turns,
                                {"postgres": pg_pid, "chroma server": chroma.proc.pid}, not args.no_choice))
    finally:
        chroma.stop()
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)
    ratio = runs[-1]["throughput_turns_per_s"] / runs[0]["throughput_turns_per_s"] if len(runs) > 1 else None
    # What the CPU allows, from the 1-worker run: a worker needs w ms of CPU per turn, the stores and
    # the client o ms. On C cores, N workers can at best do min(N / w, C / (w + o)) turns per ms.
    first = runs[0]
    w = first["cpu_seconds_per_turn"]["crs workers"]
    o = sum(v for k, v in first["cpu_seconds_per_turn"].items() if k != "crs workers")
    cores = os.cpu_count() or 1
    ceilings = {str(n): round(min(n / w, cores / (w + o)) * 1000, 1) for n in sorted({1, *args.workers})} if w else {}
    report = {
        "command": "python benchmarks/workers_load.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "shape": f"crs serve --workers N; checkpoints in PostgreSQL 15 (fsync {'off' if args.no_fsync else 'on'}), "
                 "memories in a Chroma server; "
                 "bundled catalog, memory on, embeddings on; one asyncio aiohttp client process, every user at once",
        "conversation": "five messages" + ("" if args.no_choice else ", then the first item shown is chosen"),
        "users": args.users,
        "turns_per_user": args.turns,
        "runs": runs,
        "throughput_ratio": round(ratio, 2) if ratio is not None else None,
        "floor_ratio": FLOOR_RATIO,
        "meets_floor": bool(ratio is not None and ratio >= FLOOR_RATIO),
        "errors_total": sum(r["errors"] for r in runs),
        "cpu_bound": {
            "worker_cpu_ms_per_turn": w, "stores_and_client_cpu_ms_per_turn": round(o, 2), "cores": cores,
            "best_possible_turns_per_s_by_workers": ceilings,
            "best_possible_ratio": round(ceilings[str(args.workers[-1])] / ceilings[str(args.workers[0])], 2)
            if ceilings else None,
            "note": "ceilings if this machine's cores were all ours; the load average shows how much was not",
        },
    }
    if ratio is not None:
        print(f"ratio {runs[-1]['workers']}/{runs[0]['workers']} workers: {ratio:.2f}x (floor {FLOOR_RATIO}x)")
    write_json(args.out, report)


if __name__ == "__main__":
    main()
