"""``hpsearch run --grid FILE``: a grid in the study's own format, each point run once through Optuna's GridSampler.

A grid file is one of the study's hyperparameter-search configurations (its hpsearch_config_template.py,
sequential/audioset/hp_search_audioset.py): a Python file assigning ``grid``, a dict of flag -> list of
values, and ``conditions``, a list of ``({flag: [values]}, {flag: [values]})`` pairs.  The points are
the study's: the product of the grid's lists, then each condition in turn replaces every point whose
values all lie in its first dict by the product of its second dict (the point's other values kept),
then duplicates go.  A condition naming a flag the grid does not is skipped, as in the study.

The file is read, never run: only the assignments to ``grid`` and ``conditions`` are evaluated, as
Python literals (``ast.literal_eval``), plus ``conditions = conditions + <module>._BASE_CONDITIONS``,
the line every Split-AudioSet grid file of the study ends with (the study's base conditions, below).
Imports, functions and other assignments in the file are ignored.  Values are read as the study's
command line reads them: ``'"32"'`` is the text 32, ``True``/``False`` set or leave a switch.
"""
from __future__ import annotations

import argparse
import ast
import functools
import itertools
import shlex
from pathlib import Path
from typing import Any, Collection, Mapping, Sequence

import optuna

import search_spaces
from cl_rnn.config import FIELDS, Config
from cl_rnn.rules import ConfigError
from hpsearch.flags import flag_value
from hpsearch.trial import TrialPlan

POINT = "grid_point"  # the searcher's one parameter: the index of the grid point a trial runs
Point = dict[str, Any]

# The study's base conditions (its sequential/copy/hp_search_copy.py, _BASE_CONDITIONS): with one
# method's switch off, its strengths are zeroed, so switching it off is one point, not one per strength.
BASE_CONDITIONS = [
    ({"train_from_scratch": [True]}, {"multitask": [False], "use_ewc": [False], "use_si": [False],
                                      "checkpoint_context_mod": [False], "reinit_tnet": [False]}),
    ({"multitask": [True]}, {"use_ewc": [False], "use_si": [False], "reinit_tnet": [False]}),
    ({"ewc_lambda": [0.0]}, {"use_ewc": [False]}),
    ({"use_ewc": [False]}, {"ewc_lambda": [0.0], "ewc_gamma": [0.0], "n_fisher": [0], "tbptt_fisher": [-1]}),
    ({"si_lambda": [0.0]}, {"use_si": [False]}),
    ({"use_si": [False]}, {"si_lambda": [0.0], "si_task_loss_only": [False]}),
    ({"use_masks": [True]}, {"use_context_mod": [False]}),
    ({"use_context_mod": [False], "hnet_all": [False]}, {"beta": [0.0]}),
    ({"train_tnet_once": [True]}, {"multitask": [False], "use_ewc": [False], "use_si": [False],
                                   "reinit_tnet": [False]}),
    ({"use_masks": [True]}, {"context_mod_inputs": [False], "no_context_mod_outputs": [True],
                             "dont_softplus_gains": [True]}),
    ({"offset_gains": [True]}, {"dont_softplus_gains": [True]}),
    ({"hnet_all": [True]}, {"use_masks": [False], "train_tnet_once": [False], "reinit_tnet": [False],
                            "use_ewc": [False], "use_si": [False], "checkpoint_context_mod": [False]}),
]


class GridError(ValueError):
    """A grid file that cannot be read or run; one line naming the key."""


# --- reading ------------------------------------------------------------------------------------

def read(path: str, reserved: Collection[str] = ()) -> list[Point]:
    """The typed points of the grid file ``path``, in the study's order, duplicates removed.
    ``reserved``: flags the sweep sets itself, refused in the file."""
    grid, conditions = _assignments(Path(path))
    if not isinstance(grid, dict) or not grid:
        raise GridError(f"grid: expected a non-empty dict of flag -> list of values, got {grid!r}")
    if not isinstance(conditions, list):
        raise GridError(f"conditions: expected a list of ({{flag: [values]}}, {{flag: [values]}}), got {conditions!r}")
    typed = _values("grid", grid, reserved)
    return expand(typed, [_condition(k, condition, reserved) for k, condition in enumerate(conditions)])


def _assignments(path: Path) -> tuple[Any, Any]:
    try:
        tree = ast.parse(path.read_text(), str(path))
    except OSError as err:
        raise GridError(f"cannot read it ({err.strerror or err})") from None
    except SyntaxError as err:
        raise GridError(f"line {err.lineno}: {err.msg}" if err.lineno else err.msg) from None
    except ValueError as err:  # not UTF-8, a null byte
        raise GridError(str(err)) from None
    found: dict[str, Any] = {}
    for node in tree.body:
        assigned = _assigned(node)
        if assigned and assigned[0] in ("grid", "conditions"):
            found[assigned[0]] = _evaluate(assigned[1], found, f"line {node.lineno}: {assigned[0]}")
    if "grid" not in found:
        raise GridError("no `grid = {...}` assignment")
    return found["grid"], found.get("conditions", [])


def _assigned(node: ast.stmt) -> tuple[str, ast.expr] | None:
    """(name, value) of ``name = value``, or of ``name += value`` as ``name = name + value``."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add) and isinstance(node.target, ast.Name):
        return node.target.id, ast.BinOp(ast.Name(node.target.id), ast.Add(), node.value)
    return None


def _evaluate(node: ast.expr, found: Mapping[str, Any], where: str) -> Any:
    """A literal, a name assigned before, ``<module>._BASE_CONDITIONS``, or a sum of those."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        try:
            return _evaluate(node.left, found, where) + _evaluate(node.right, found, where)
        except TypeError as err:
            raise GridError(f"{where}: {err}") from None
    if isinstance(node, ast.Name) and node.id in found:
        return found[node.id]
    if (node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)) == "_BASE_CONDITIONS":
        return list(BASE_CONDITIONS)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise GridError(f"{where}: not a Python literal (the file is read, not run: "
                        "grid and conditions must be literals)") from None


def _values(where: str, lists: Any, reserved: Collection[str]) -> dict[str, list[Any]]:
    """A grid (or a condition's dict): each key a flag, each value a non-empty list, read as the flag's type."""
    if not isinstance(lists, dict):
        raise GridError(f"{where}: expected a dict of flag -> list of values, got {lists!r}")
    typed = {}
    for key, values in lists.items():
        if key not in FIELDS:
            raise GridError(f"{where}[{key!r}]: not a flag of train_split_audioset.py")
        if key in reserved or key == "out_dir":
            raise GridError(f"{where}[{key!r}]: the sweep sets it (use --n-iter, --data, --seed)")
        if not isinstance(values, list) or not values:
            raise GridError(f"{where}[{key!r}]: expected a non-empty list of values, got {values!r}")
        typed[key] = [_typed(f"{where}[{key!r}]", key, value) for value in values]
    return typed


def _typed(where: str, key: str, value: Any) -> Any:
    """``value`` as the study's command line reads it: ``--key=<str(value)>`` after the shell's quoting."""
    if str(FIELDS[key].type) == "bool" and isinstance(value, bool):
        return value
    text = str(value)
    try:
        words = shlex.split(text) if text else [""]
        if len(words) != 1:
            raise ValueError(f"{text!r} is not one command-line value")
        return flag_value(key, words[0])
    except (ValueError, argparse.ArgumentTypeError) as err:
        raise GridError(f"{where}: {value!r}: {err}") from None


def _condition(k: int, condition: Any, reserved: Collection[str]) -> tuple[dict[str, list], dict[str, list]]:
    where = f"conditions[{k}]"
    if not isinstance(condition, (tuple, list)) or len(condition) != 2:
        raise GridError(f"{where}: expected a pair ({{flag: [values]}}, {{flag: [values]}}), got {condition!r}")
    return _values(f"{where}[0]", condition[0], reserved), _values(f"{where}[1]", condition[1], reserved)


# --- the study's expansion ----------------------------------------------------------------------------

def _product(lists: Mapping[str, Sequence[Any]]) -> list[Point]:
    return [dict(zip(lists, values)) for values in itertools.product(*lists.values())]


def expand(grid: Mapping[str, Sequence[Any]], conditions: Sequence[tuple[Mapping, Mapping]]) -> list[Point]:
    """The study's points: the grid's product, each condition applied once in order, duplicates removed."""
    points = _product(grid)
    for when, then in conditions:
        if not set(when) <= set(grid):
            continue  # the study skips a condition on a flag the grid does not name
        kept, replaced = [], []
        for point in points:
            if all(point[name] in values for name, values in when.items()):
                replaced += [{**point, **values} for values in _product(then)]
            else:
                kept.append(point)
        points = kept + replaced
    unique: dict[frozenset, Point] = {}
    for point in points:
        unique.setdefault(frozenset(point.items()), point)
    return list(unique.values())


# --- a grid sweep ---------------------------------------------------------------------------------------

def configs(plan: TrialPlan, space: search_spaces.SearchSpace, points: Sequence[Point]) -> list[Config]:
    """Each point's configuration; GridError for a point that fights the method's
    fixed flags or a --flag, or that the flag rules refuse."""
    built = []
    for k, point in enumerate(points):
        for name, value in point.items():
            if name in plan.base_flags:
                raise GridError(f"--flag {name}: the grid sets {name} too; drop one of them")
            if name in space.fixed and space.fixed[name] != value:
                raise GridError(f"grid point {k} sets {name}={value!r}, but method {space.name} fixes "
                                f"{name}={space.fixed[name]!r}")
        try:
            built.append(plan.config(point, out_dir=""))
        except ConfigError as err:
            raise GridError(f"grid point {k} ({_text(point)}): {err}") from None
    return built


def _text(point: Point) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in point.items())


class _Sampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler over the points' indices: trial k runs point k.  The sweep (Ray's number of
    samples), not the sampler, ends the search: GridSampler's own ``study.stop()`` only works in
    ``study.optimize``."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        pass


def suggest(trial: optuna.trial.BaseTrial, points: Sequence[Point]) -> Point:
    """The grid sweep's define-by-run function: the point the sampler chose (module level, so it pickles)."""
    return dict(points[trial.suggest_categorical(POINT, list(range(len(points))))])


def search_options(points: Sequence[Point], seed: int) -> dict[str, Any]:
    """OptunaSearch's ``space`` and ``sampler`` for a grid sweep."""
    return {"space": functools.partial(suggest, points=list(points)),
            "sampler": _Sampler({POINT: list(range(len(points)))}, seed=seed)}


def replay(points: Sequence[Point], config: Mapping[str, Any]) -> optuna.trial.FixedTrial:
    """A grid trial as the sweep's Optuna journal records it: the point's flags as categorical parameters,
    each over the values the grid gives it (what optuna-dashboard and the importances read)."""
    choices: dict[str, list[Any]] = {}
    for point in points:
        for name, value in point.items():
            choices.setdefault(name, [])
            if value not in choices[name]:
                choices[name].append(value)
    trial = optuna.trial.FixedTrial({name: config[name] for name in choices if name in config})
    for name in choices:
        if name in config:
            trial.suggest_categorical(name, choices[name])
    return trial
