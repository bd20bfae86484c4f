"""Learners: what the training loop (``cl_rnn.population``) trains, for every member at once.

A learner holds the trained state of the active members and answers the loop's calls::

    fresh_start()                      # --train_from_scratch: new weights (and method) before a task
    begin(task)                        # the hooks before a task (None: multitask), a fresh Adam per member
    gradients(it, iterations) -> [P]   # each member's loss plus penalties; their gradients computed
    update()                           # clipping, the regularisers around each member's Adam step
    end(task, last)                    # the hooks after a task (EWC's Fisher, SI's importances)
    view(k), current_weights(k, task)  # member k's weights as a Method (evaluation), a copy of them
    trained()                          # the trained tensors, member axis first (--use_best_models)
    keep(index), state(), load_state() # members leaving; checkpoints

Two exist.  ``KernelLearner`` trains P members' flat weights as one [P, W] tensor without autograd
(the C kernel member by member on the CPU, batched torch ops on a GPU): fine-tuning, from scratch,
masking and every ``Regulariser`` extra, on one LSTM layer straight to the heads.  ``AutogradLearner``
trains one member through the ``Method`` protocol: everything else (hypernetworks, replay,
multitask, other networks), and a run alone on a GPU.  Both give a member the same numbers.
"""
from __future__ import annotations

import torch

from cl_rnn.config import Config
from cl_rnn.learners.autograd import AutogradLearner
from cl_rnn.learners.kernel import KernelLearner
from cl_rnn.methods import registry
from cl_rnn.nets.population_lstm import supports
from cl_rnn.nets.rnn import NetSpec, RecurrentNet


def kernel_reason(config: Config) -> str | None:
    """Why the kernel learner cannot train ``config`` (None: it can)."""
    reason = registry.not_batched(config)
    if reason:
        return reason
    if not supports(RecurrentNet(NetSpec.from_config(config))):
        return "only one LSTM layer without fc layers is batched"
    return None


def make_learner(members: list, net: RecurrentNet, tasks: list, device: torch.device, torch_ops: bool | None,
                 threads: int = 1):
    """The kernel learner where it can train the members, else the autograd learner (one member).

    ``torch_ops``: the kernel learner's loss gradient in batched torch ops (default: off the CPU); a run
    alone with torch ops is the autograd learner's (the same ops without the member axis).  ``threads``:
    the kernel learner's (the autograd learner's ops stay on one thread: their large reductions would
    change their last bits)."""
    torch_ops = device.type != "cpu" if torch_ops is None else torch_ops
    if kernel_reason(members[0].config) is None and (len(members) > 1 or not torch_ops):
        return KernelLearner(members, net, tasks, device, torch_ops, threads)
    return AutogradLearner(members, net, tasks, device)  # one member: train_population refuses more
