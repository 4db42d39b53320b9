"""The layering written down in ARCHITECTURE.md, checked: no import runs from a lower layer to a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Folder on disk -> installed package name (pyproject's package-dir).
FOLDERS = {"kb": "crs.kb", "memory": "crs.memory", "graphs": "crs.graphs", "ui": "crs.ui", "evals": "crs.evals",
           "crs": "crs"}

# Lowest first. A module may import its own layer and any lower one, never a higher one.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("kb", ("crs.kb",)),
    ("memory", ("crs.memory",)),
    ("reasoning", ("crs.reasoning",)),
    ("language", ("crs.language",)),
    ("graphs", ("crs.graphs",)),
    ("facade", ("crs.api", "crs.settings", "crs.actions", "crs")),
    ("front doors", ("crs.ui", "crs.evals")),
    ("command line", ("crs.cli",)),
]
# Same-layer pairs that must stay apart all the same.
FORBIDDEN = [("crs.ui", "crs.evals"), ("crs.evals", "crs.ui"),
             ("crs.reasoning", "crs.memory"), ("crs.memory", "crs.reasoning")]


def layer_of(module: str) -> int:
    best, rank = "", -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, rank = prefix, index
    return rank


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO)
    parts = [FOLDERS[rel.parts[0]], *rel.parts[1:]]
    parts[-1] = parts[-1].removesuffix(".py")
    name = ".".join(parts)
    return name.removesuffix(".__init__")


def crs_imports(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, name) for line, name in found if name == "crs" or name.startswith("crs.")]


def check(me: str, source: str) -> list[str]:
    """The imports of module ``me`` (its source text) that break the layering."""
    problems = []
    for line, target in crs_imports(source):
        if target == "crs" and layer_of(me) < layer_of("crs.api"):
            problems.append(f"{me}:{line} imports the facade 'crs'")
        elif layer_of(target) > layer_of(me):
            problems.append(f"{me}:{line} ({LAYERS[layer_of(me)][0]}) imports {target} "
                            f"({LAYERS[layer_of(target)][0]})")
        problems += [f"{me}:{line} imports {target}" for low, high in FORBIDDEN
                     if me.startswith(low) and target.startswith(high)]
    return problems


def sources() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (REPO / folder).rglob("*.py"))


def test_every_module_belongs_to_a_layer() -> None:
    assert [module_name(p) for p in sources() if layer_of(module_name(p)) < 0] == []


def test_no_import_runs_from_a_lower_layer_to_a_higher_one() -> None:
    assert [problem for path in sources() for problem in check(module_name(path), path.read_text())] == []


def test_the_check_catches_upward_and_sideways_imports() -> None:
    assert check("crs.kb.graph", "from crs.graphs import build_conversation_graph") != []
    assert check("crs.reasoning.engine", "import crs.language.nlg") != []
    assert check("crs.language.nlu", "from crs import Recommender") != []
    assert check("crs.ui.web", "from crs.evals.cli import main") != []
    assert check("crs.reasoning.engine", "from crs.memory import Profile") != []
    assert check("crs.graphs.steps", "from crs.reasoning.engine import Engine\nfrom crs.kb import Catalog") == []
    assert check("crs.ui.web", "from crs import Recommender") == []
