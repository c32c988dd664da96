"""The package's layers (DESIGN.md): imports point down, and packages on one layer do not import in a circle."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "lowdata"
LAYERS = [  # bottom first
    {"errors", "registry", "io", "files", "ledger", "settings_file", "sections", "flat_settings", "config", "streams", "rundir", "device", "cores", "stopping", "console"},
    {"data"},
    {"augment", "models", "metrics", "objectives", "training"},
    {"runs", "selection"},
    {"study"},
    {"api", "cli", "__main__", "__init__"},
]


def unit(module: str) -> str:
    """lowdata.models.vit -> models; lowdata.api -> api; lowdata -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer(name: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if name in names)


def imports() -> dict[str, set[str]]:
    """Every lowdata module -> the lowdata modules it imports (at the top or inside functions)."""
    found = {}
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts)
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "lowdata":  # from lowdata import api, rundir, ...
                    targets |= {f"lowdata.{alias.name}" for alias in node.names}
                elif node.module.startswith("lowdata."):
                    targets.add(node.module)
                    # from lowdata.data import cache: the module lowdata.data.cache, not only the package
                    targets |= {f"{node.module}.{alias.name}" for alias in node.names
                                if is_module(f"{node.module}.{alias.name}")}
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name.startswith("lowdata.")}
        found[module] = targets
    return found


def is_module(name: str) -> bool:
    path = SRC.parent / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_every_unit_has_a_layer():
    assert {unit(module) for module in imports()} <= set().union(*LAYERS)


def test_imports_point_down_the_layers():
    upward = [f"{module} imports {target}" for module, targets in imports().items() for target in targets
              if layer(unit(target)) > layer(unit(module))]
    assert upward == []


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for module, targets in imports().items():
        graph.setdefault(unit(module), set()).update(unit(t) for t in targets if unit(t) != unit(module))

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    assert [name for name in graph if reaches(name, name, {name})] == []


@pytest.mark.slow
def test_every_module_imports_on_its_own():
    modules = sorted(module for module in imports() if module != "lowdata.__main__")  # that one runs the CLI
    for module in modules:  # a fresh interpreter each: an import that works only after another one fails here
        done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
        assert done.returncode == 0, f"{module}: {done.stderr[-500:]}"


def test_no_cycle_between_files_inside_a_package():
    """Files import each other one way, as packages do: a circle (a imports b, b imports a, perhaps inside a
    function) means one of them holds something the other should own."""
    found = imports()
    packages = {module for module in found if (SRC.parent / module.replace(".", "/") / "__init__.py").exists()}
    # a package's __init__ re-exports its files: edges to and from it are the package's face, not a circle
    graph = {module: {t for t in targets if t in found and t != module and t not in packages}
             for module, targets in found.items() if module not in packages}

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    return path + [start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return None

    cycles = {" -> ".join(c) for module in graph if (c := cycle_from(module)) and len({unit(m) for m in c}) == 1}
    assert sorted(cycles) == []
