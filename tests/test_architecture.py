"""The house keeps its shape (docs/architecture.md, "The layer rule"): the faces import only public
names, no room reaches into another room's private modules, and the import graph of the aipolicy
namespace has no cycle.

The graph is read from the source by installed module name (tests/layout.py), every import
statement counted: at module level, inside functions and under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from tests.layout import FACES, ROOT, installed_tree, lint_imports, source_modules


class Import(NamedTuple):
    importer: str
    imported: str  # the module imported (for the graph)
    reference: str  # the full dotted name, `from a.b import c` -> a.b.c (for privacy)
    where: str  # path:line


def imports_in(module: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, alias.name, where)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: package.count(".") + 2 - node.level]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                reference = f"{base}.{alias.name}"
                yield Import(module, reference if reference in modules else base, reference, where)


def all_imports(modules: dict[str, Path]) -> list[Import]:
    return [found for module, path in modules.items() for found in imports_in(module, path, modules)]


def private_owner(reference: str) -> str | None:
    """The package whose private part a dotted name reaches into (`aipolicy.policy._policy.Rule` ->
    `aipolicy.policy`), or None when no part of it is private (dunders like __version__ are not)."""
    parts = reference.split(".")
    for index, part in enumerate(parts):
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            return ".".join(parts[:index])
    return None


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def face_of(module: str) -> str | None:
    return next((face for face in FACES if within(module, face)), None)


def private_reaches(imports: list[Import]) -> list[str]:
    """Imports of a private module or name from outside the package that owns it. A face counts as
    outside the core: it may reach its own privates only."""
    offences = []
    for found in imports:
        owner = private_owner(found.reference)
        if owner is None or not within(found.reference, "aipolicy"):
            continue
        face = face_of(found.importer)
        allowed = within(owner, face) if face else within(found.importer, owner)
        if not allowed:
            offences.append(f"{found.where}: {found.importer} imports {found.reference}")
    return offences


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, str]]:
    """importer -> {imported module: where the first such import is}, within the namespace."""
    graph: dict[str, dict[str, str]] = {module: {} for module in modules}
    for found in all_imports(modules):
        if found.imported in modules and found.imported != found.importer:
            graph[found.importer].setdefault(found.imported, found.where)
    return graph


def strongly_connected(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that reach each other, larger than one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph[module]):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(groups)


def cycles_within(group: list[str], graph: dict[str, dict[str, str]], limit: int = 20) -> list[list[str]]:
    """The simple cycles inside one strongly connected group, each starting at its smallest module."""
    members = set(group)
    cycles: list[list[str]] = []

    def walk(path: list[str]) -> None:
        for imported in sorted(graph[path[-1]].keys() & members):
            if imported == path[0]:
                cycles.append([*path, imported])
            elif imported > path[0] and imported not in path and len(cycles) < limit:
                walk([*path, imported])

    for start in group:
        walk([start])
    return cycles[:limit]


def describe_cycles(graph: dict[str, dict[str, str]]) -> list[str]:
    """Each cycle as `a -> b -> a`, with where each of its imports is."""
    return [
        " -> ".join(cycle) + " (" + ", ".join(graph[a][b] for a, b in zip(cycle, cycle[1:], strict=False)) + ")"
        for group in strongly_connected(graph)
        for cycle in cycles_within(group, graph)
    ]


def test_faces_import_no_private_core_module() -> None:
    imports = [found for found in all_imports(source_modules()) if face_of(found.importer)]
    assert private_reaches(imports) == []


def test_no_core_module_imports_another_rooms_private_module() -> None:
    imports = [found for found in all_imports(source_modules()) if not face_of(found.importer)]
    assert private_reaches(imports) == []


def test_the_import_graph_has_no_cycle() -> None:
    cycles = describe_cycles(import_graph(source_modules()))
    print("\n".join(cycles))
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


# The checks above, shown to catch what they are for, on a small package written here.


def write_package(root: Path, files: dict[str, str]) -> dict[str, Path]:
    modules = {}
    for name, text in files.items():
        path = root / f"{name.replace('.', '/')}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        modules[name.removesuffix(".__init__")] = path
    return modules


def test_the_walker_sees_imports_in_functions_and_under_type_checking(tmp_path: Path) -> None:
    modules = write_package(tmp_path, {
        "aipolicy.__init__": "",
        "aipolicy.room.__init__": "from ._inner import thing\n",
        "aipolicy.room._inner": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..other import _private, later\n",
        "aipolicy.other.__init__": "def later():\n    from aipolicy.room import thing\n",
        "aipolicy.other._private": "",
        "aipolicy.cli.__init__": "from aipolicy.room._inner import thing\nfrom ._own import helper\n",
        "aipolicy.cli._own": "from aipolicy import __version__\n",
    })  # fmt: skip
    imports = all_imports(modules)
    assert private_reaches([found for found in imports if face_of(found.importer)]) == [
        f"{tmp_path}/aipolicy/cli/__init__.py:1: aipolicy.cli imports aipolicy.room._inner.thing"
    ]
    assert private_reaches([found for found in imports if not face_of(found.importer)]) == [
        f"{tmp_path}/aipolicy/room/_inner.py:3: aipolicy.room._inner imports aipolicy.other._private"
    ]
    assert [cycle.split(" (")[0] for cycle in describe_cycles(import_graph(modules))] == [
        "aipolicy.other -> aipolicy.room -> aipolicy.room._inner -> aipolicy.other"
    ]


def test_the_import_contracts_catch_an_upward_import_and_click_in_the_core(tmp_path: Path) -> None:
    # The contracts in pyproject.toml are run by tests/test_lint.py; here they are shown to break.
    tree = installed_tree(tmp_path)
    with (tree / "aipolicy" / "matching" / "_hosts.py").open("a", encoding="utf-8") as source:
        source.write("\n\ndef upward() -> None:\n    import click\n    from aipolicy.decision import decide\n")
    result = lint_imports(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "aipolicy.matching._hosts -> aipolicy.decision" in result.stdout
    assert "aipolicy.matching._hosts -> click" in result.stdout
