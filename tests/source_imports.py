"""gansr's own imports, read from the source: module-level and function-local ones alike."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_file(name: str) -> Path | None:
    """The source file of module ``name`` (``gansr.data`` -> src/gansr/data/__init__.py), if it is one."""
    path = SRC.joinpath(*name.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    """The dotted name of the module in ``path`` (src/gansr/data/__init__.py -> ``gansr.data``)."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def gansr_imports(path: Path) -> set[str]:
    """Every ``gansr`` module or name ``path`` imports (``from m import n`` gives m and m.n)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return {name for name in names if name.split(".")[0] == "gansr"}


def imported_modules(path: Path) -> set[str]:
    """The gansr modules ``path`` imports by name (``from m import n`` gives m, and m.n if n is a module)."""
    return {name for name in gansr_imports(path) if module_file(name)}
