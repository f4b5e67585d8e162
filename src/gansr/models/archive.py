"""Saving a generator as a ``.keras`` archive whose bytes depend on the model alone, and reading what it needs.

Keras stamps the time of saving into the archive (``metadata.json``'s
``date_saved`` and the zip entries' dates) and marks objects shared between
layers with their memory address (``shared_object_id`` in ``config.json``), so
saving the same weights twice gives two different files, and DVC would see a
changed output after every reproduced run. :func:`save_generator` takes the
stamps out and numbers the shared objects in the order they appear.
"""

from __future__ import annotations

import importlib
import json
import os
import zipfile
from pathlib import Path

import keras

# The zip format's earliest date: the entries record no clock.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def save_generator(model: keras.Model, path: Path) -> None:
    """``model.save(path)``, then rewrite the archive without the time it was saved or memory addresses."""
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    rewritten = path.with_name(f".{path.name}.rewrite")
    with zipfile.ZipFile(rewritten, "w") as archive:
        for info, data in entries:
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                metadata.pop("date_saved", None)
                data = json.dumps(metadata).encode()
            elif info.filename == "config.json":
                data = json.dumps(_numbered_shared_objects(json.loads(data))).encode()
            entry = zipfile.ZipInfo(info.filename, FIXED_DATE)
            entry.compress_type, entry.external_attr = info.compress_type, info.external_attr
            archive.writestr(entry, data)
    os.replace(rewritten, path)


def import_layer_modules(path: Path) -> None:
    """Import the gansr modules whose layers the archive at ``path`` names, so Keras knows their classes.

    A saved layer records the module of its class; Keras itself imports only
    its own. Importing gansr's named modules here (and no other package's)
    lets one loader read any generator without importing every kind of layer
    in advance: a plain generator never pulls in the style branch's code.
    """
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    modules: set[str] = set()

    def collect(node: object) -> None:
        if isinstance(node, dict):
            module = node.get("module")
            if isinstance(module, str) and module.startswith("gansr."):
                modules.add(module)
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(config)
    for module in sorted(modules):
        importlib.import_module(module)


def _numbered_shared_objects(config: object) -> object:
    """``config`` with each distinct ``shared_object_id`` replaced by its rank of first appearance.

    Keras only matches equal ids on loading, so any one-to-one renumbering
    keeps the same objects shared.
    """
    numbers: dict[object, int] = {}

    def renumber(node: object) -> object:
        if isinstance(node, dict):
            return {key: numbers.setdefault(value, len(numbers)) if key == "shared_object_id" else renumber(value)
                    for key, value in node.items()}
        if isinstance(node, list):
            return [renumber(item) for item in node]
        return node

    return renumber(config)
