"""The package's import graph has no cycles (imports inside functions count too), its own modules are imported at
module level (an import inside a function says why with a ``# lazy:`` comment), and no module outside
tensorprop/tasks tells the model families apart by their ``targets``/``head`` strings."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tensorprop"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the tensorprop modules it imports (at module level or inside functions)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                    if node.level else (node.module or "")
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("tensorprop"):
                    graph[name].add(target)
                    break
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v):
        state[v] = 1
        stack.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state:
                found = visit(w)
                if found:
                    return found
        stack.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state:
            found = visit(v)
            if found:
                return found
    return None


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 50 and "tensorprop.tasks.base" in graph["tensorprop.api"] | graph["tensorprop.tasks"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def function_level_imports(source: str) -> list[tuple[int, str]]:
    """(line, statement) of every import of a tensorprop module inside a function of ``source`` that does not
    carry a ``# lazy:`` comment on one of its lines."""
    lines = source.splitlines()
    found = {}
    for fn in ast.walk(ast.parse(source)):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                own = isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("tensorprop"))
                own = own or isinstance(node, ast.Import) and any(a.name.startswith("tensorprop") for a in node.names)
                if own and not any("# lazy:" in line for line in lines[node.lineno - 1:node.end_lineno]):
                    found[node.lineno] = ast.unparse(node)
    return sorted(found.items())


def test_own_modules_are_imported_at_module_level():
    found = [f"{path.relative_to(PACKAGE.parent)}:{i}: {text}"
             for path in _modules().values() for i, text in function_level_imports(path.read_text())]
    assert not found, "\n".join(found)


def test_the_function_level_import_finder_finds_one():
    source = ("import os\nfrom .a import b\n\ndef f():\n    from .c import d\n    from ..e import g  # lazy: heavy\n"
              "    import tensorprop.h\n    import json\n    return d\n")
    assert function_level_imports(source) == [(5, "from .c import d"), (7, "import tensorprop.h")]


#: how code would tell the families apart by strings (model.task, read through tasks.task_of, replaces these)
FAMILY_TESTS = re.compile(r"targets\s*==|\"charges\"\s+in\s+.*targets|head\s*[!=]=\s*\"field\"|\.foundation\s+is\s+(not\s+)?None"
                          r"|charges_config\s+is|model_kind\"?\)?\s*==\s*\"")


def test_no_family_dispatch_outside_the_tasks():
    found = []
    for name, path in _modules().items():
        if name.startswith(("tensorprop.tasks", "tensorprop.config")):  # the tasks; config migrates old configs
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if FAMILY_TESTS.search(line.split("#")[0]):
                found.append(f"{path.name}:{i}: {line.strip()}")
    assert not found, "\n".join(found)
