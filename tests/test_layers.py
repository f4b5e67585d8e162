"""gansr's modules import one way only, from the edges down to the foundations, with no circle.

A module may import its own layer and the layers below it, never one above
(docs/architecture.md draws the same picture). Function-local imports count:
hiding an upward import inside a function still ties the layers together.
"""

from __future__ import annotations

import pytest
from source_imports import SRC, imported_modules, module_name

ROOT = "gansr"
# Bottom to top; a module belongs to the layer of the longest package or module name it starts with.
LAYERS = (
    ("foundations", (ROOT, "gansr.config", "gansr.errors", "gansr.atomic", "gansr.layout", "gansr.quiet",
                     "gansr.allocator")),
    ("building blocks", ("gansr.imageio", "gansr.data", "gansr.models", "gansr.losses", "gansr.metrics",
                         "gansr.niqe", "gansr.input_quality", "gansr.style", "gansr.tiling")),
    ("work", ("gansr.training", "gansr.evaluation", "gansr.degraded", "gansr.inference", "gansr.lite",
              "gansr.export", "gansr.video", "gansr.validation", "gansr.reporting", "gansr.style.training",
              "gansr.style.evaluation")),
    ("serving", ("gansr.serving",)),
    ("tracking", ("gansr.tracking",)),
    ("edges", ("gansr.stages", "gansr.upscale", "gansr.cli")),
)
Graph = dict[str, set[str]]


def layer_of(module: str) -> int:
    """The index in LAYERS of ``module``'s layer."""
    owners = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
              if module == prefix or (prefix != ROOT and module.startswith(prefix + "."))]
    if not owners:
        raise LookupError(f"{module} is in no layer: add it to LAYERS")
    return max(owners)[1]


def upward_imports(graph: Graph) -> list[str]:
    """Each import of a module in a higher layer than the importer's, as 'a (layer) imports b (layer)'."""
    def named(module: str) -> str:
        return f"{module} ({LAYERS[layer_of(module)][0]})"

    return [f"{named(module)} imports {named(name)}" for module, names in sorted(graph.items())
            for name in sorted(names) if layer_of(name) > layer_of(module)]


def import_circle(graph: Graph) -> list[str]:
    """One chain of imports that comes back to where it started, or [] if there is none."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str]:
        if module in path:
            return [*path[path.index(module):], module]
        if module in done:
            return []
        for name in sorted(graph.get(module, ())):
            if found := visit(name, [*path, module]):
                return found
        done.add(module)
        return []

    return next((found for module in sorted(graph) if (found := visit(module, []))), [])


GANSR: Graph = {
    module_name(path): imported_modules(path) - {module_name(path)} for path in (SRC / "gansr").rglob("*.py")
}


def test_every_module_has_a_layer() -> None:
    for module in GANSR:
        layer_of(module)
    with pytest.raises(LookupError, match="gansr_extras is in no layer"):
        layer_of("gansr_extras")


def test_every_import_goes_to_the_same_layer_or_below() -> None:
    assert upward_imports(GANSR) == []


def test_there_is_no_import_circle() -> None:
    assert import_circle(GANSR) == []


def test_the_checks_catch_an_upward_import_and_a_circle() -> None:
    # The circle this layering removed: inference loaded registry URIs through tracking, which packs serving.
    knotted = {**GANSR, "gansr.inference": GANSR["gansr.inference"] | {"gansr.tracking.registry"}}
    assert upward_imports(knotted) == ["gansr.inference (work) imports gansr.tracking.registry (tracking)"]
    assert import_circle(knotted)[0] == import_circle(knotted)[-1]
    assert "gansr.inference" in import_circle(knotted)
