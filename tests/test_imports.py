"""The packages' shape: no import cycles (imports inside functions count too) and short modules."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("cl_rnn", "hpsearch", "search_spaces")
MAX_LINES = 300


def module_files(root: Path = REPO) -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imported(module: str, path: Path, known: set[str]) -> set[str]:
    """The known modules ``module`` imports anywhere in its file (``from pkg import mod`` counts as pkg.mod)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {name for name in names if name in known and name != module}
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def import_graph(root: Path = REPO) -> dict[str, set[str]]:
    files = module_files(root)
    return {module: imported(module, path, set(files)) for module, path in files.items()}


def test_no_module_imports_itself_back():
    assert cycles(import_graph()) == []


def test_a_cycle_is_found(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "cl_rnn" / "a.py").write_text("from cl_rnn import b\n")
    (tmp_path / "cl_rnn" / "b.py").write_text("def f():\n    from . import c\n")
    (tmp_path / "cl_rnn" / "c.py").write_text("from cl_rnn.a import thing\n")
    (tmp_path / "hpsearch" / "d.py").write_text("import cl_rnn.a\n")
    assert cycles(import_graph(tmp_path)) == [["cl_rnn.a", "cl_rnn.b", "cl_rnn.c"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_are_short(package):
    lengths = {str(path.relative_to(REPO)): len(path.read_text().splitlines())
               for path in module_files().values() if path.is_relative_to(REPO / package)}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}
