"""Where methods and search spaces come from: cl-rnn's own folders, and those ``CL_RNN_PLUGINS`` names.

``CL_RNN_PLUGINS=DIR[:DIR ...]``: each DIR may hold ``methods/<name>.py`` (modules like those of
``cl_rnn/methods/``, each with a ``SPEC``) and ``search_spaces/<name>.py`` (like ``search_spaces/``).
Set it in the environment of the process that starts a sweep: Ray's workers inherit it.

A method may bring flags of its own: a literal ``FLAGS = {"name": (default, "help")}`` in its module.
``cl_rnn.config`` builds ``Config`` from the study's flags and these before anything heavy is imported,
so FLAGS is read from the module's source (``ast.literal_eval``), not by importing it; the flag's
type is its default's (bool, int, float or str).  From then on a method's flag is a flag like the
study's: on the command line, in search spaces, in exported lines.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

ENV = "CL_RNN_PLUGINS"
OWN_METHODS = Path(__file__).resolve().parent / "methods"
FLAG_TYPES = (bool, int, float, str)


class PluginError(SystemExit):
    """A method or space that cannot load (a malformed FLAGS or SPEC, a module that fails to import):
    whatever started cl-rnn stops with this one line (exit status 1), as it cannot know its flags or methods."""


def plugin_dirs(kind: str) -> list[Path]:
    """The ``kind`` folders (``methods`` or ``search_spaces``) of the directories ``CL_RNN_PLUGINS`` names."""
    roots = [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    return [root / kind for root in roots if (root / kind).is_dir()]


def plugin_files(kind: str) -> dict[str, Path]:
    """Plugin modules of ``kind`` by name (``_*.py`` skipped, as in the packages)."""
    return {path.stem: path for folder in plugin_dirs(kind) for path in sorted(folder.glob("*.py"))
            if not path.stem.startswith("_")}


def import_plugin(kind: str, name: str) -> ModuleType:
    """Import plugin module ``name`` of ``kind`` once (as ``cl_rnn_plugins.<kind>.<name>``)."""
    module_name = f"cl_rnn_plugins.{kind}.{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = plugin_files(kind)[name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # a plugin's own bug: name its file and the error, in one line
        del sys.modules[module_name]
        raise PluginError(f"{ENV}: {path}: {type(err).__name__}: {err}") from None
    return module


def method_flags() -> dict[str, tuple[Any, str, str]]:
    """Every method module's own flags: name -> (default, help, group), in module order."""
    files = [*sorted(OWN_METHODS.glob("*.py")), *plugin_files("methods").values()]
    found: dict[str, tuple[Any, str, str]] = {}
    for path in files:
        for name, (default, help_text) in _declared_flags(path).items():
            found[name] = (default, help_text, path.stem)
    return found


def method_fields(opt: Callable[..., Any], taken: set[str]) -> list[tuple[str, str, Any]]:
    """``method_flags()`` as ``dataclasses.make_dataclass`` fields (``opt`` makes each field); none may be ``taken``."""
    declared = method_flags()
    clash = sorted(set(declared) & taken)
    if clash:
        raise PluginError(f"{ENV}: method FLAGS {clash} are flags of the study already")
    return [(name, type(default).__name__, opt(default, help_text, group=group))
            for name, (default, help_text, group) in declared.items()]


def _declared_flags(path: Path) -> dict[str, tuple[Any, str]]:
    text = path.read_text()
    if "FLAGS" not in text:  # most modules declare none: skip parsing them (this runs at every start)
        return {}
    try:
        tree = ast.parse(text, str(path))
    except SyntaxError as err:
        raise PluginError(f"{ENV}: {path}: line {err.lineno}: {err.msg}") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "FLAGS" for t in node.targets):
            try:
                flags = ast.literal_eval(node.value)
            except ValueError:
                raise PluginError(f"{ENV}: {path}: FLAGS must be a literal dict of name: (default, help)") from None
            for name, value in flags.items():
                if not (isinstance(value, tuple) and len(value) == 2 and type(value[0]) in FLAG_TYPES):
                    raise PluginError(f"{ENV}: {path}: FLAGS[{name!r}] must be (default, help) with a bool, int, "
                                      "float or str default")
            return flags
    return {}
