"""Which messages an NLU change reads differently: the natural-language MCR benchmark's messages,
each read by the understander of this working tree and by the one of a git revision.

    python benchmarks/nlu_changes.py --base REV --dataset lastfm_star --data-dir ../shared/data \
        --model fm_lastfm_star.npz [--episodes 4000] [--out benchmarks/out/nlu_changes_lastfm_star.json]

The benchmark runs as ``crs eval mcr --nl`` does (policy ``best``, strict, seed 0), driven by this
tree's understander; every message is also read by ``crs/language/nlu.py`` and ``lexicon.py`` as
they were at ``--base``. Prints and writes each message read differently, with both readings, and
the benchmark's SR@15 and AT through natural language with each understander driving it: what a
grammar or lexicon change costs or gains on the messages the evaluation sends.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_json

import crs.evals.nl_mcr as nl_mcr
from crs.evals import cli
from crs.language import nlu as current

ROOT = Path(__file__).resolve().parent.parent


def load_base_nlu(rev: str, folder: Path) -> Any:
    """``crs.language.nlu`` as it was at ``rev``, with its own lexicon (importing nothing of this tree's)."""
    for name in ("lexicon", "nlu"):
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:crs/language/{name}.py"],
                                capture_output=True, text=True, check=True).stdout
        source = source.replace("from crs.language.lexicon import", "from base_lexicon import")
        (folder / f"base_{name}.py").write_text(source, encoding="utf-8")
    sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location("base_nlu", folder / "base_nlu.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["base_nlu"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision whose NLU is compared")
    parser.add_argument("--dataset", default="lastfm_star")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--episodes", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    command = "python benchmarks/nlu_changes.py " + " ".join(sys.argv[1:])
    changed: list[dict[str, Any]] = []
    read = [0]

    with tempfile.TemporaryDirectory(prefix="crs-nlu-base-") as tmp:
        base = load_base_nlu(args.base, Path(tmp))

        class BothReadings(current.OfflineNLU):
            def __init__(self, *a: Any, **kw: Any) -> None:
                super().__init__(*a, **kw)
                self.base = base.OfflineNLU(*a, **kw)

            def understand(self, text: str, context: current.NLUContext) -> Any:
                now = super().understand(text, context)
                before = self.base.understand(text, base.NLUContext(**{
                    f: getattr(context, f) for f in context.__dataclass_fields__}))
                read[0] += 1
                if now.to_dict() != before.to_dict():
                    changed.append({"message": text, "question": context.question,
                                    "shown": len(context.recommended),
                                    "base": {k: v for k, v in before.to_dict().items() if v},
                                    "now": {k: v for k, v in now.to_dict().items() if v}})
                return now

        def run(understander: Any, out: Path) -> dict[str, Any]:
            """The benchmark driven by one understander; its natural-language row."""
            nl_mcr.OfflineNLU = understander
            sys.argv = ["crs", "eval", "mcr", "--dataset", args.dataset, "--data-dir", args.data_dir, "--model",
                        args.model, "--policy", "best", "--episodes", str(args.episodes), "--seed", "0",
                        "--no-rule", "strict", "--nl", "--json", str(out)]
            try:
                cli.app()
            except SystemExit as exc:
                if exc.code:
                    raise
            row = next(r for r in json.loads(out.read_text())["rows"] if r["mode"] == "nl")
            return {k: row[k] for k in ("SR@15", "AT", "misread_rate")}

        now = run(BothReadings, Path(tmp) / "now.json")
        before = run(base.OfflineNLU, Path(tmp) / "base.json")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    report = {"command": command,
              "base": args.base, "head": head.strip(), "dataset": args.dataset, "episodes": args.episodes,
              "natural_language_base": before, "natural_language_now": now,
              "messages_read": read[0], "read_differently": len(changed), "messages": changed}
    print(json.dumps({k: v for k, v in report.items() if k != "messages"}, indent=2))
    for c in changed[:50]:
        print(f"{c['message']!r}: {c['base']} -> {c['now']}")
    write_json(args.out, report)


if __name__ == "__main__":
    main()
