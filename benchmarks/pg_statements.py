"""How many statements a turn sends to PostgreSQL, and which: the server's own log of them.

    python benchmarks/pg_statements.py [--users 5] [--out benchmarks/out/pg_statements.json]

Starts a PostgreSQL cluster in a temp folder, then holds the conversations of
``benchmarks/api_load.py`` (five messages, then the first item shown is chosen) through a
``Recommender`` with its conversations in that database (memory off: only the conversation store
is counted), one warm-up conversation first. ``log_statement = all`` is switched on for the counted
conversations; every statement the server logs is counted, grouped by its first words.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from benchmarks._conversation import lines  # noqa: E402
from benchmarks._report import write_json  # noqa: E402
from crs import Recommender, Settings  # noqa: E402
from tests.services import Postgres  # noqa: E402

#: one logged statement: its text runs to the next log line's timestamp
_STATEMENT = re.compile(r"LOG:  (?:statement|execute [^:]*): (.*?)(?=\n\d{4}-\d\d-\d\d |\Z)", re.S)


def conversation(rec: Recommender, user: str, n: int) -> int:
    """One conversation; the number of turns it took."""
    reply = None
    for text in lines(n):
        reply = rec.chat(user, "s", text)
    if reply is not None and reply.recommendations:
        rec.act(user, "s", {"type": "accept_item", "item_id": reply.recommendations[0].id})
        return len(lines(n)) + 1
    return len(lines(n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5, help="conversations counted (one user each)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="crs-pg-statements-"))
    folder.chmod(0o755)  # PostgreSQL runs as another user when we are root: it must reach its folder
    pg = Postgres(folder / "postgres").start()
    try:
        rec = Recommender.from_settings(Settings(state_dir=folder / "state", checkpoints_url=pg.url,
                                                 memory=False, embeddings=False))
        conversation(rec, "warm-up", 0)
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET log_statement = 'all'")
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)
        log = folder / "postgres" / "postgres.log"
        start = log.stat().st_size
        turns = sum(conversation(rec, f"user{u}", u) for u in range(args.users))
        time.sleep(0.5)  # the server writes its log asynchronously
        text = log.read_bytes()[start:].decode("utf-8", errors="replace")
    finally:
        pg.stop()
    statements = [" ".join(s.split()) for s in _STATEMENT.findall(text)]
    kinds = collections.Counter(s[:60] if s else "(empty: a connection check)" for s in statements)
    report: dict[str, Any] = {
        "command": "python benchmarks/pg_statements.py " + " ".join(sys.argv[1:]),
        "turns": turns, "statements": len(statements),
        "statements_per_turn": round(len(statements) / turns, 2),
        "by_kind": dict(kinds.most_common()),
    }
    print(json.dumps(report, indent=2))
    write_json(args.out, report)


if __name__ == "__main__":
    main()
