"""The import direction of DESIGN.md, checked on the source so it cannot rot.

`router.core` imports nothing of the project and no I/O, clock or event-loop
module; drivers import downward and never each other, except the composition
root (`simulator/cli.py`, `simulator/live.py`), which wires them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("router", "scenarios", "fakes", "simulator", "reports")

# Which project packages each layer may import (beyond itself).
ALLOWED: dict[str, set[str]] = {
    "router.core": set(),
    "scenarios": {"router.core"},
    "fakes.model": {"router.core", "scenarios"},
    "router.server": {"router.core", "scenarios"},
    "fakes.server": {"router.core", "scenarios", "fakes.model"},
    "simulator": {"router.core", "scenarios", "fakes.model", "reports"},
    "reports": {"router.core.trace", "scenarios"},
    # Package roots only hold docstrings.
    "router": set(),
    "fakes": set(),
}
COMPOSITION_ROOTS = {"simulator.cli", "simulator.live"}
CORE_FORBIDDEN = {
    "asyncio",
    "time",
    "aiohttp",
    "simpy",
    "socket",
    "threading",
    "subprocess",
    "yaml",
    "requests",
    "httpx",
    "os",
    "pathlib",
}
CORE_THIRD_PARTY_ALLOWED = {"pydantic"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> list[Path]:
    return [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _layer(module: str) -> str | None:
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def _project(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_design_direction(path: Path) -> None:
    """A module imports only its own layer and the layers below it."""
    module = _module_name(path)
    if module in COMPOSITION_ROOTS:
        return
    layer = _layer(module)
    assert layer is not None, f"{module} belongs to no layer of DESIGN.md"
    allowed = ALLOWED[layer] | {layer}
    for line, target in _imports(path):
        if not _project(target):
            continue
        ok = any(target == a or target.startswith(a + ".") for a in allowed)
        assert ok, f"{path.relative_to(ROOT)}:{line}: {module} must not import {target}"


CORE = sorted((ROOT / "router" / "core").rglob("*.py"))


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_core_does_no_io(path: Path) -> None:
    """Nothing in router/core reaches for a clock, a socket, an event loop or the disk."""
    for line, target in _imports(path):
        top = target.split(".")[0]
        where = f"{path.relative_to(ROOT)}:{line}"
        assert top not in CORE_FORBIDDEN, f"{where}: router.core must not import {target}"
        if not _project(target) and top not in CORE_THIRD_PARTY_ALLOWED:
            assert top in _stdlib(), f"{where}: router.core may use stdlib and pydantic only"


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_core_never_uses_the_global_random_generator(path: Path) -> None:
    """`random.Random` instances are injected; `random.random()` and friends are banned."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "random":
            names = {alias.name for alias in node.names}
            assert names <= {"Random"}, f"{path.name}:{node.lineno}: imports {names - {'Random'}}"
        if isinstance(node, ast.Import):
            assert all(a.name != "random" for a in node.names), (
                f"{path.name}:{node.lineno}: import the Random class, not the module"
            )


def _stdlib() -> frozenset[str]:
    import sys

    return frozenset(sys.stdlib_module_names) | {"__future__"}


def test_public_surface_is_what_it_says() -> None:
    """`router.core.__all__` names exactly what the package exports."""
    import router.core as core

    assert sorted(core.__all__) == sorted(set(core.__all__))
    for name in core.__all__:
        assert hasattr(core, name), f"router.core.__all__ lists missing name {name!r}"
