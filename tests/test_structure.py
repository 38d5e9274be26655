"""The package's shape: no import circle between its modules (deferred imports inside functions count
too), no module importing another's private name, and the config schema shipped inside the package."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "ilrepro"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PKG.rglob("*.py")}


def _imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import statement of the module, at any depth."""
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.startswith("ilrepro")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("ilrepro"):
                target = node.module
            else:
                continue
            out.append((target, [a.name for a in node.names]))
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        for target, names in _imports(name, path):
            for n in names:  # `from . import bp` imports the submodule bp
                if f"{target}.{n}" in MODULES:
                    graph[name].add(f"{target}.{n}")
            if target in MODULES and not all(f"{target}.{n}" in MODULES for n in names or ["?"]):
                graph[name].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_between_the_packages_modules():
    graph = _graph()
    assert "ilrepro.config" in graph["ilrepro.experiments"]  # the graph sees relative imports
    assert _cycle(graph) is None, f"import circle: {' -> '.join(_cycle(graph) or [])}"


def test_no_module_imports_another_modules_private_name():
    private = [
        f"{name} imports {n} from {target}"
        for name, path in MODULES.items()
        for target, names in _imports(name, path)
        for n in names
        if n.startswith("_") and not n.startswith("__")
    ]
    assert not private, private


def test_the_schema_ships_inside_the_package():
    from ilrepro.config import SCHEMA_PATH

    assert SCHEMA_PATH.is_file() and PKG in SCHEMA_PATH.parents
    assert "ilrepro" in (PKG.parents[1] / "pyproject.toml").read_text().split("[tool.setuptools.package-data]")[1]
