"""Search spaces: discovery, shape, and the study's own values lying inside each method's space."""
from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import optuna
import pytest

import search_spaces
from cl_rnn.config import FIELDS, Config
from cl_rnn.rules import check, from_argv
from search_spaces._common import GATES
from search_spaces._published import LINES as PUBLISHED

README = Path(__file__).resolve().parents[1] / "../shared/reference/split_audioset_README.rst"
EXPECTED = {"finetune", "from_scratch", "multitask", "ewc", "ewc_task_identity", "si", "hnet", "masking",
            "masking_si", "coresets"}
# README section -> method; the EWC section holds two methods, told apart by --input_task_identity.
SECTIONS = {"Multitask": "multitask", "Main network from scratch": "from_scratch",
            "Main network fine-tuning": "finetune", "Chunked Hypernetwork (HNET)": "hnet",
            "Online Elastic Weight Consolidation (Online EWC)": "ewc", "Synaptic Intelligence (SI)": "si",
            "Masking": "masking", "Masking + Synpatic Intelligence (Masking + SI)": "masking_si",
            "Coresets": "coresets"}
# Flags a sweep sets for every trial, not the space.
SWEEP_SET = ("n_iter", "use_cuda", "during_acc_criterion", "num_tasks", "num_classes_per_task",
             "random_seed", "data", "out_dir")


def readme_lines() -> list[tuple[str, str]]:
    """(method, flags) of every command line of the study's README but --help, in its order."""
    lines, section, previous = [], None, ""
    for raw in README.read_text().splitlines():
        text = raw.strip()
        if text and set(text) == {"^"}:
            section = previous
        elif text.startswith("$ python3 train_split_audioset.py") and "--help" not in text:
            flags = text.removeprefix("$ python3 train_split_audioset.py ")
            method = SECTIONS[section]
            lines.append(("ewc_task_identity" if method == "ewc" and "--input_task_identity" in flags.split()
                          else method, flags))
        previous = text
    return lines


# (method, parsed config) for every published line, from search_spaces/_published.py.
LINES = [(method, from_argv(shlex.split(flags))) for method, texts in PUBLISHED.items() for flags in texts]


def test_all_methods_are_discovered():
    assert set(search_spaces.names()) == EXPECTED


def test_every_method_has_published_lines():
    assert len(LINES) == 18
    assert set(PUBLISHED) == EXPECTED


@pytest.mark.skipif(not README.is_file(), reason="the study's README (../shared/reference) is not here")
def test_published_lines_are_the_readme_text():
    assert readme_lines() == [(method, flags) for method, texts in PUBLISHED.items() for flags in texts]


@pytest.mark.parametrize("method,line", LINES, ids=[f"{i}-{method}" for i, (method, _) in enumerate(LINES)])
def test_study_line_lies_in_its_space(method, line):
    assert search_spaces.match(line) == method
    space = search_spaces.load(method)
    trial = search_spaces.replay(space, dataclasses.asdict(line))
    rebuilt = space.config(trial, base=Config(**{name: getattr(line, name) for name in SWEEP_SET}))
    assert rebuilt.changed() == line.changed()


def test_value_outside_a_space_is_refused():
    finetune = search_spaces.load("finetune")
    flags = dataclasses.asdict(LINES[2][1])
    with pytest.raises(search_spaces.SpaceError, match="lr"):
        search_spaces.replay(finetune, {**flags, "lr": 0.5})
    with pytest.raises(search_spaces.SpaceError, match="batch_size"):
        search_spaces.replay(finetune, {**flags, "batch_size": 65})


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_sampled_trials_are_valid_configs(method):
    """Random draws give configs the rules accept; trial parameters are flags or gates."""
    space = search_spaces.load(method)
    assert space.summary and set(space.fixed) <= set(FIELDS)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        flags = space.suggest(trial)
        config = space.config(trial)
        check(config)
        assert set(trial.params) <= set(FIELDS) | set(GATES)
        for name, value in trial.params.items():
            if name in FIELDS:
                assert flags[name] == value
        assert search_spaces.replay(space, dataclasses.asdict(config)).params == trial.params
        study.tell(trial, 0.0)


def test_pinned_flags_are_not_sampled_and_conditions_follow_them():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    pinned = {"rnn_arch": "32", "lr": 0.5, "use_orthogonal_hh_reg": True, "num_tasks": 2}
    for _ in range(10):
        trial = study.ask()
        flags = search_spaces.suggest_flags(trial, "finetune", pinned)
        assert flags["rnn_arch"] == "32" and flags["lr"] == 0.5  # outside the space: allowed when pinned
        assert not {"rnn_arch", "lr", "use_orthogonal_hh_reg"} & set(trial.params)
        assert flags["orthogonal_hh_reg"] == trial.params["orthogonal_hh_reg"]  # the gate's branch, sampled
        replayed = search_spaces.replay(search_spaces.load("finetune"), flags, pinned)
        assert replayed.params == trial.params
        study.tell(trial, 0.0)


def test_unknown_method_names_the_known_ones():
    with pytest.raises(search_spaces.SpaceError, match="unknown method 'nope'.*finetune"):
        search_spaces.load("nope")


def test_a_new_file_is_a_new_method(tmp_path, monkeypatch):
    (tmp_path / "my_method.py").write_text(
        '"""Mine."""\nFIXED = {"use_si": True}\n\ndef suggest(trial):\n'
        '    return {"si_lambda": trial.suggest_float("si_lambda", 1.0, 2.0)}\n')
    monkeypatch.setattr(search_spaces, "__path__", [*search_spaces.__path__, str(tmp_path)])
    assert "my_method" in search_spaces.names()
    assert search_spaces.load("my_method").fixed == {"use_si": True}
