"""``hpsearch run --sampler tpe|random --sampler-seed S``: the searcher's Optuna sampler and its seed."""
from __future__ import annotations

import optuna
import pytest

from hpsearch import settings
from hpsearch.cli import build_parser
from hpsearch.trial import TrialPlan


def settings_of(tmp_path, *argv: str) -> settings.SweepSettings:
    args = build_parser().parse_args(["run", "--method", "finetune", "--results", str(tmp_path), *argv])
    return settings.settings_of(args)


def test_the_sampler_seed_defaults_to_the_seed_and_never_changes_the_trials_seed(tmp_path):
    plain = settings_of(tmp_path, "--seed", "3")
    assert plain.sampler == "tpe" and plain.search_seed == 3
    chosen = settings_of(tmp_path, "--seed", "3", "--sampler", "random", "--sampler-seed", "7")
    assert chosen.sampler == "random" and chosen.search_seed == 7
    assert settings.plan_of(chosen).base_flags["random_seed"] == 3


def test_asha_prunes_by_default_unless_two_objectives_or_a_grid_need_every_trial_whole(tmp_path):
    assert settings_of(tmp_path).scheduler == "asha"  # bench/bench_search.py measured TPE + ASHA best
    assert settings_of(tmp_path, "--scheduler", "none").scheduler == "none"
    assert settings_of(tmp_path, "--metric", "during,final").scheduler == "none"
    grid = tmp_path / "grid.py"
    grid.write_text("grid = {'lr': [1e-4, 1e-3]}\nconditions = []\n")
    assert settings_of(tmp_path, "--grid", str(grid)).scheduler == "none"


def searcher(sampler: str, seed: int):
    from hpsearch import ray_env  # noqa: F401 - Ray's quiet environment before Ray loads
    from hpsearch.ray_search import searcher

    return searcher(TrialPlan("finetune", {"num_tasks": 2, "rnn_arch": "32"}), seed, None, sampler=sampler)


@pytest.mark.parametrize("sampler,kind", [("tpe", optuna.samplers.TPESampler),
                                          ("random", optuna.samplers.RandomSampler)])
def test_the_searcher_uses_the_chosen_sampler_with_its_seed(sampler, kind):
    def draws(seed: int) -> list[dict]:
        search = searcher(sampler, seed)
        assert isinstance(search._ot_study.sampler, kind)
        return [search.suggest(f"t{k}") for k in range(3)]

    assert draws(5) == draws(5) != draws(6)
    assert all(draw["rnn_arch"] == "32" for draw in draws(5))  # a pinned flag stays pinned


def test_a_grid_sweep_refuses_another_sampler(tmp_path):
    grid = settings.SweepSettings(method="finetune", num_samples=1, name="g", results=str(tmp_path),
                                  grid=[{"lr": 1e-3}], sampler="random")
    with pytest.raises(settings.SweepError, match="--sampler random: a --grid sweep runs its points"):
        settings.check(grid)
    with pytest.raises(settings.SweepError, match="--sampler one of"):
        settings.check(settings.SweepSettings(method="finetune", sampler="grid"))
