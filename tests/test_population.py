"""Population training: each member matches its single run, leaves when stopped, writes its own folder."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cl_rnn.config import Config
from cl_rnn.nets.masks import make_masks
from cl_rnn.nets.population_lstm import PopulationLSTM
from cl_rnn.nets.rnn import NetSpec, RecurrentNet
from cl_rnn.population import _Population, fallback_reason, population_key, train_population
from cl_rnn.train import TrainingDiverged, train
from train_helpers import small_config, synthetic_tasks

MEMBERS = [dict(lr=0.005, random_seed=1), dict(lr=0.002, random_seed=2, weight_decay=1e-4),
           dict(lr=0.01, random_seed=3, clip_grad_norm=0.5)]
METHODS = {
    "finetune": {},
    "ewc": dict(use_ewc=True, ewc_lambda=50.0, n_fisher=40),
    "si": dict(use_si=True, si_lambda=0.5),
    "si_task_loss_only": dict(use_si=True, si_lambda=0.5, si_task_loss_only=True),
    "ewc+all_step_loss": dict(use_ewc=True, ewc_lambda=50.0, ts_weighting="discount"),
    "masks+ortho": dict(use_masks=True, mask_fraction=0.25, orthogonal_hh_reg=0.01, input_task_identity=True),
    "best_models+from_scratch": dict(use_best_models=True, train_from_scratch=True),
}
RUN_FILES = {"config.json", "command.txt", "performance_overview.txt", "accuracy_matrix.csv", "tasks.csv",
             "result.json"}


@pytest.fixture(scope="module")
def tasks():
    return synthetic_tasks(num_tasks=2)


@pytest.fixture(scope="module")
def three_tasks():
    return synthetic_tasks(num_tasks=3)


def member_configs(tmp_path, prefix: str, **flags) -> list[Config]:
    return [small_config(tmp_path, n_iter=40, out_dir=str(tmp_path / f"{prefix}{k}"), **member, **flags)
            for k, member in enumerate(MEMBERS)]


@pytest.mark.filterwarnings("ignore:--use_masks implies")
@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_member_matches_its_single_run(tmp_path, tasks, method):
    """Members differ in seed, lr, weight decay and clipping; each is bit for bit its single run."""
    population = train_population(member_configs(tmp_path, "pop", **METHODS[method]), tasks=tasks)
    singles = [train(config, tasks=tasks) for config in member_configs(tmp_path, "single", **METHODS[method])]
    for member, single in zip(population, singles):
        assert member.method == single.method and member.finished
        np.testing.assert_array_equal(member.accuracy_matrix, single.accuracy_matrix)
        assert member.summary == single.summary


def test_a_stopped_member_leaves_and_the_others_go_on(tmp_path, tasks):
    configs = member_configs(tmp_path, "pop", num_tasks=2)
    configs[1] = configs[1].replace(during_acc_criterion="100", lr=1e-6)  # learns nothing: stopped
    reports: list[tuple[int, int]] = []
    results = train_population(configs, report=lambda member, task, metrics: reports.append((member, task)),
                               tasks=tasks)
    stopped = results[1]
    assert not stopped.finished and stopped.stop_reason.startswith("during_acc_criterion: task 0")
    assert np.isnan(stopped.accuracy_matrix[1]).all() and not np.isnan(stopped.accuracy_matrix[0]).any()
    assert json.loads((stopped.out_dir / "result.json").read_text())["finished"] is False
    assert all(results[k].finished for k in (0, 2))
    assert sorted(reports) == [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1)]


@pytest.mark.parametrize("method", ["finetune", "si_task_loss_only"])
def test_a_diverging_member_fails_alone_and_the_others_stay_their_single_runs(tmp_path, three_tasks, method):
    """The others take the step in which it diverged, and their rows move in the buffer bit for bit."""
    configs = member_configs(tmp_path, "pop", num_tasks=3, **METHODS[method])
    configs[0] = configs[0].replace(lr=1e30)
    results = train_population(configs, tasks=three_tasks)
    assert isinstance(results[0], TrainingDiverged)
    for config, result in zip(configs[1:], results[1:]):
        single = train(config.replace(out_dir=config.out_dir + "_single"), tasks=three_tasks)
        assert result.finished
        np.testing.assert_array_equal(result.accuracy_matrix, single.accuracy_matrix)


@pytest.mark.parametrize("method", ["ewc", "si"])
def test_a_population_whose_members_all_diverge_fails_each_member(tmp_path, tasks, method):
    configs = [config.replace(lr=1e30) for config in member_configs(tmp_path, "pop", **METHODS[method])]
    results = train_population(configs, tasks=tasks)
    assert all(isinstance(result, TrainingDiverged) for result in results)


def test_every_member_writes_its_own_run_folder(tmp_path, tasks):
    configs = member_configs(tmp_path, "pop")
    results = train_population(configs, tasks=tasks)
    for config, result in zip(configs, results):
        assert str(result.out_dir) == config.out_dir
        assert RUN_FILES <= {p.name for p in result.out_dir.iterdir()}
        saved = json.loads((result.out_dir / "config.json").read_text())
        assert saved["lr"] == config.lr and saved["random_seed"] == config.random_seed
        assert "--lr=" in (result.out_dir / "command.txt").read_text()


def test_configurations_that_fall_back_to_single_runs():
    assert fallback_reason(Config()) is None
    assert fallback_reason(Config(use_ewc=True, use_si=True)) is None
    for changes in (dict(multitask=True), dict(hnet_all=True), dict(use_replay=True, coreset_size=10),
                    dict(rnn_arch="32,32"), dict(use_vanilla_rnn=True)):
        assert fallback_reason(Config(**changes)) is not None, changes


def test_members_must_share_everything_but_member_flags(tmp_path, tasks):
    assert population_key(Config(lr=0.1, random_seed=3)) == population_key(Config())
    assert population_key(Config(batch_size=32)) != population_key(Config())
    with pytest.raises(ValueError, match="may differ only in"):
        train_population([small_config(tmp_path), small_config(tmp_path, batch_size=8)], tasks=tasks)


class _Crash(Exception):
    pass


def _crash_at(task: int):
    def report(member: int, t: int, metrics: dict) -> None:
        if t == task:
            raise _Crash(f"killed in task {task}")
    return report


@pytest.mark.filterwarnings("ignore:--use_masks implies")
@pytest.mark.parametrize("method", ["ewc", "si_task_loss_only", "masks+ortho", "best_models+from_scratch"])
@pytest.mark.parametrize("crash_task", [0, 1])  # the crash in its reports: after the task's checkpoint
def test_a_population_continues_from_its_checkpoint_as_if_never_stopped(tmp_path, three_tasks, method, crash_task):
    flags = dict(num_tasks=3, **METHODS[method])
    whole = train_population(member_configs(tmp_path, "whole", **flags), tasks=three_tasks)
    configs = member_configs(tmp_path, "pop", **flags)
    configs[1] = configs[1].replace(lr=1e30)  # diverges in task 0 and stays failed after the restart
    saved = tmp_path / "population.pt"
    with pytest.raises(_Crash):
        train_population(configs, report=_crash_at(crash_task), tasks=three_tasks, checkpoint=saved)
    assert saved.is_file()
    resumed = train_population(configs, tasks=three_tasks, checkpoint=saved)
    assert not saved.is_file()  # removed once the population ended
    assert isinstance(resumed[1], TrainingDiverged) and str(resumed[1]).startswith("training diverged: the loss became")
    for k in (0, 2):
        np.testing.assert_array_equal(resumed[k].accuracy_matrix, whole[k].accuracy_matrix)
        assert resumed[k].summary == whole[k].summary and resumed[k].resumed_at == [crash_task + 1]
        written = json.loads((resumed[k].out_dir / "result.json").read_text())
        assert written["finished"] and written["final"] == whole[k].final
        assert str(resumed[k].out_dir) == configs[k].out_dir  # the same folder, not a numbered new one


def test_a_population_checkpoint_of_other_flags_is_refused(tmp_path, three_tasks):
    from cl_rnn.checkpoint import CheckpointMismatch

    configs = member_configs(tmp_path, "pop", num_tasks=3)
    saved = tmp_path / "population.pt"
    with pytest.raises(_Crash):
        train_population(configs, report=_crash_at(1), tasks=three_tasks, checkpoint=saved)
    configs[2] = configs[2].replace(lr=0.003)
    with pytest.raises(CheckpointMismatch, match=r"member 2: --lr=0.01 \(now 0.003\)"):
        train_population(configs, tasks=three_tasks, checkpoint=saved)


@pytest.mark.parametrize("ts_weighting, masked", [("last", False), ("discount", True)])
def test_the_batched_torch_ops_gradient_is_the_kernels_to_rounding(ts_weighting, masked):
    """The GPU path (vmap over the member axis) against the C kernel path, member by member."""
    config = Config(multi_head=True, input_task_identity=masked, ts_weighting=ts_weighting)
    net = RecurrentNet(NetSpec.from_config(config, input_size=128))
    members, steps, batch = 3, 10, 16
    theta = torch.stack([net.init_weights(generator=torch.Generator().manual_seed(k)) for k in range(members)])
    x = net.with_task_identity(torch.randn(steps, batch, 128), 1)
    xs = [x[:, torch.randperm(batch)] for _ in range(members)]
    y = torch.randint(0, 10, (members, batch))
    gains = [make_masks(3, net.spec.rnn, 0.5, k)[1][0] if masked else None for k in range(members)]
    by_kernel, by_ops = torch.empty_like(theta), torch.empty_like(theta)
    losses = PopulationLSTM(net, ts_weighting, steps).loss_and_grad(theta, xs, y, 1, gains, by_kernel)
    batched = PopulationLSTM(net, ts_weighting, steps, torch_ops=True).loss_and_grad(theta, xs, y, 1, gains, by_ops)
    torch.testing.assert_close(batched, losses, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(by_ops, by_kernel, rtol=1e-4, atol=1e-6)
    assert by_ops.abs().max() > 1e-3  # a real gradient, not zeros on both sides


@pytest.mark.filterwarnings("ignore:--use_masks implies")
@pytest.mark.parametrize("method", ["finetune", "ewc", "masks+ortho", "si_task_loss_only"])
def test_a_population_on_torch_ops_trains_as_on_the_kernel(tmp_path, tasks, method):
    """The whole GPU-path population, run on the CPU: the same training up to float rounding, which Adam
    amplifies where gradients are near zero.  Measured: the weights end within 5% of the distance they
    travelled (a 1% larger learning rate alone moves them 20-55%)."""
    ends = {}
    for torch_ops in (False, True):
        population = _Population(member_configs(tmp_path, f"ops{torch_ops}", **METHODS[method]), None, None,
                                 torch_ops=torch_ops)
        population.prepare(tasks)
        start = population.learner.theta.clone()
        results = population.run()
        assert all(result.finished for result in results)
        ends[torch_ops] = population.learner.theta
    travelled = (ends[False] - start).norm(dim=1)
    assert ((ends[True] - ends[False]).norm(dim=1) / travelled).max() < 0.1


@pytest.mark.parametrize("hidden, batch, masked", [("32", 64, False), ("8", 17, True), ("64", 128, False)])
def test_the_gradient_on_two_threads_is_one_threads_bit_for_bit(hidden, batch, masked):
    """A run alone splits its products and the kernel's rows between the cores: the same numbers, so the
    same flags and seed train alike from the command line and in a sweep (one thread per trial)."""
    config = Config(multi_head=True, rnn_arch=hidden)
    net = RecurrentNet(NetSpec.from_config(config, input_size=128))
    theta = net.init_weights(generator=torch.Generator().manual_seed(0))[None]
    x = torch.randint(0, 256, (10, batch, 128)).float()  # the study's raw bytes: saturated gates
    y = torch.randint(0, 10, (1, batch))
    gains = [make_masks(3, net.spec.rnn, 0.5, 0)[1][0] if masked else None]
    grads = {threads: torch.empty_like(theta) for threads in (1, 2)}
    losses = {threads: PopulationLSTM(net, "last", 10, threads=threads).loss_and_grad(theta, [x], y, 1, gains,
                                                                                       grads[threads])
              for threads in (1, 2)}
    assert torch.equal(losses[1], losses[2]) and torch.equal(grads[1], grads[2])
    assert grads[1].abs().max() > 1e-3
