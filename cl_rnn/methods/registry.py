"""The method registry: every continual-learning method declares itself once, as ``SPEC`` in its module.

A module of ``cl_rnn.methods`` (or of a ``CL_RNN_PLUGINS`` folder's ``methods/``, ``cl_rnn.plugins``)
that defines ``SPEC = MethodSpec(...)`` is a method; its own flags, if any, are its ``FLAGS``.  A spec says which flag
selects the method, which methods it cannot be combined with (the study's exclusions, declared on
either side), what else it requires, whether a population can batch it, and how to build it.  What
asks "which method is this?" reads the registry: the flag rules (``cl_rnn.rules``),
``build_method``, the population's fallback reasons and regularisers, the search spaces' fixed
flags and ``hpsearch spaces``.

Roles: a *source* supplies the main net's weights (one per run; fine-tuning's own when none is
selected), an *extra* is a regulariser watching the source (its ``order`` fixes where its penalty
adds up, which the numbers depend on), a *schedule* changes how the trainer walks the tasks, an
*input* changes what the network sees.
"""
from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

from cl_rnn import plugins
from cl_rnn.config import FIELDS, Config

Role = Literal["source", "extra", "schedule", "input"]


@dataclass(frozen=True)
class MethodSpec:
    name: str  # as search spaces, results and ``hpsearch spaces`` name it
    flag: str | None  # the Config field that selects it: a switch, or a strength that selects it when > 0
    #                   (None: fine-tuning, the source when no other is selected)
    role: Role
    summary: str
    excludes: tuple[str, ...] = ()  # names of methods it cannot be combined with (either side may declare)
    implies: Mapping[str, Any] = field(default_factory=dict)  # other flags it needs (the search spaces set them)
    check: Callable[[Config], str | None] | None = None  # a further rule: the refusal's one line, or None
    not_batched: str | None = None  # why a population cannot train it; None: it batches
    order: int = 0  # extras: penalties add in increasing order
    build: Callable[..., Any] | None = None  # source: (config, net, device); extra: (config, net, source) -> Method
    batched: Callable[..., Any] | None = None  # extra: (methods.base.Members) -> its Regulariser, in every run

    def selected(self, config: Config) -> bool:
        if self.flag is None:
            return False
        value = getattr(config, self.flag)
        return value if isinstance(value, bool) else value > 0

    def selecting_flags(self) -> dict[str, Any]:
        """The flags that make a run this method: its switch and what it implies."""
        if self.flag is None:
            return dict(self.implies)
        if FIELDS[self.flag].type not in ("bool", bool):
            raise ValueError(f"method {self.name}: selected by the strength --{self.flag}, not by a switch")
        return {self.flag: True, **self.implies}


class RegistryError(plugins.PluginError):
    """A malformed SPEC, or a search space naming an unknown method: one line, and the program stops."""


@functools.cache
def methods() -> dict[str, MethodSpec]:
    """Every registered method by name, in discovery order (module name)."""
    import cl_rnn.methods as package

    modules = [importlib.import_module(f"{package.__name__}.{info.name}")
               for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name)]
    modules += [plugins.import_plugin("methods", name) for name in plugins.plugin_files("methods")]
    found: dict[str, MethodSpec] = {}
    for module in modules:
        spec = getattr(module, "SPEC", None)
        if spec is None:
            continue
        _check_spec(module.__file__, spec, found)
        found[spec.name] = spec
    for spec in found.values():
        unknown = sorted(set(spec.excludes) - set(found))
        if unknown:
            raise RegistryError(f"method {spec.name}: excludes unknown methods {unknown}")
    return found


def _check_spec(where: str, spec: Any, found: Mapping[str, MethodSpec]) -> None:
    if not isinstance(spec, MethodSpec):
        raise RegistryError(f"{where}: SPEC must be a MethodSpec")
    if spec.name in found:
        raise RegistryError(f"{where}: a method named {spec.name!r} is registered twice")
    unknown = sorted({spec.flag, *spec.implies} - {None, *FIELDS})
    if unknown:
        raise RegistryError(f"{where}: names unknown flags {unknown}")
    if spec.role == "source" and spec.build is None:
        raise RegistryError(f"{where}: a source needs a build function")
    if spec.role == "extra" and (spec.build is None) == (spec.batched is None):
        raise RegistryError(f"{where}: an extra needs a batched function (a Regulariser) or a build function "
                            "(a Method, with a not_batched reason), not both")
    if spec.role == "extra" and spec.build is not None and spec.not_batched is None:
        raise RegistryError(f"{where}: an extra built as a Method needs a not_batched reason")


def get(name: str) -> MethodSpec:
    known = methods()
    if name not in known:
        raise RegistryError(f"unknown method {name!r}; known: {', '.join(known)}")
    return known[name]


def selected(*configs: Config) -> list[MethodSpec]:
    """The methods any of ``configs`` selects (a population's members may differ in strengths), extras in
    their order."""
    return sorted((s for s in methods().values() if any(s.selected(c) for c in configs)), key=lambda s: s.order)


def composition(config: Config) -> list[MethodSpec]:
    """The methods a run of ``config`` combines: its weight source first (fine-tuning when it selects
    none), then the others in their order."""
    chosen = selected(config)
    sources = [spec for spec in chosen if spec.role == "source"] or [get("finetune")]
    return [sources[0], *(spec for spec in chosen if spec.role != "source")]


def run_name(config: Config) -> str:
    """What a run of ``config`` is called in its results: its source and extras joined by "+" (schedules
    name themselves: ``multitask``, ``from_scratch``); fine-tuning alone is "finetune"."""
    if config.multitask:
        return "multitask"
    if config.train_from_scratch:
        return "from_scratch"
    names = [spec.name for spec in composition(config) if spec.role in ("source", "extra") and spec.name != "finetune"]
    return "+".join(names) or "finetune"


def exclusions() -> list[tuple[MethodSpec, MethodSpec]]:
    """Each pair of methods that cannot be combined, once, in registry order."""
    specs = list(methods().values())
    return [(a, b) for i, a in enumerate(specs) for b in specs[i + 1:]
            if b.name in a.excludes or a.name in b.excludes]


def refusal(config: Config) -> str | None:
    """The one-line reason the selected methods cannot run together (or one of them cannot run), or None."""
    chosen = selected(config)
    names = {s.name for s in chosen}
    for spec in chosen:
        reason = spec.check(config) if spec.check else None
        if reason:
            return reason
    for a, b in exclusions():
        if a.name in names and b.name in names:
            return f"--{a.flag}: cannot be combined with --{b.flag}"
    return None


def not_batched(config: Config) -> str | None:
    """Why a population cannot train ``config``'s methods, or None."""
    for spec in selected(config):
        if spec.not_batched:
            return spec.not_batched
    return None
