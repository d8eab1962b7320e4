"""The package stays in layers: a module imports only from its own layer or lower ones, and no
import loops, lazy imports (inside functions) included.

The imports are read from the source with `ast`, as written, so a loop cannot hide behind an
import that only runs on some path.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import PROJECT

SOURCE = PROJECT / "app"
PACKAGE = "starpunk_migrations"
# Bottom to top. A top-level module not named here is an interface.
LAYERS = ("foundation", "schema", "evolution", "adoption", "commands", "interfaces")
SCHEMA_MODULES = {"models"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    first = module.split(".")[0]
    if first in LAYERS:
        return LAYERS.index(first)
    return LAYERS.index("schema") if first in SCHEMA_MODULES else LAYERS.index("interfaces")


def package_imports() -> dict[str, set[str]]:
    """Each module of the package (relative to it) and the package modules it imports."""
    modules = {module_name(path): path for path in SOURCE.rglob("*.py")}
    imports: dict[str, set[str]] = {}
    for module, path in modules.items():
        here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - (node.level - 1)] + (node.module.split(".") if node.module else [])
                elif node.module and node.module.split(".")[0] == PACKAGE:
                    base = node.module.split(".")[1:]
                else:
                    continue
                for alias in node.names:
                    candidate = ".".join([*base, alias.name])
                    found.add(candidate if candidate in modules else ".".join(base))
            elif isinstance(node, ast.Import):
                found |= {alias.name.removeprefix(PACKAGE + ".") for alias in node.names if alias.name.startswith(PACKAGE + ".")}
        imports[module] = {target for target in found if target in modules and target != module}
    return imports


def test_every_import_goes_to_the_same_layer_or_a_lower_one():
    upward = [
        f"{module} ({LAYERS[layer_of(module)]}) imports {target} ({LAYERS[layer_of(target)]})"
        for module, targets in package_imports().items()
        for target in targets
        if module and target and layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_no_module_is_part_of_an_import_cycle():
    imports = package_imports()
    cycles = []
    # A module is in a cycle when it can reach itself through its imports.
    for start in imports:
        seen, frontier = set(), list(imports[start])
        while frontier:
            module = frontier.pop()
            if module == start:
                cycles.append(start)
                break
            if module not in seen:
                seen.add(module)
                frontier.extend(imports.get(module, ()))
    assert cycles == []


def test_the_reader_of_imports_sees_relative_and_lazy_imports():
    imports = package_imports()
    assert "foundation.errors" in imports["foundation.refusals"]  # from .errors import ...
    assert "commands.upgrade" in imports["start_up"]  # imported inside ensure_schema
    assert "foundation.interrupts" in imports["foundation.backup"]  # from . import interrupts
