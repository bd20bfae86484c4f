"""From flags to a method: one weight source plus the regularisers the flags ask for."""
from __future__ import annotations

import torch

from cl_rnn.config import Config
from cl_rnn.methods.base import Composite, Method
from cl_rnn.methods.ewc import OnlineEWC
from cl_rnn.methods.finetune import FineTune
from cl_rnn.methods.hnet import Hypernetwork
from cl_rnn.methods.masking import Masking
from cl_rnn.methods.ortho import OrthogonalPenalty
from cl_rnn.methods.replay import CoresetReplay
from cl_rnn.methods.si import SynapticIntelligence
from cl_rnn.nets.rnn import RecurrentNet
from cl_rnn.rules import ConfigError


def build_source(config: Config, net: RecurrentNet, device: torch.device) -> Method:
    """What supplies the main net's weights (fine-tuning's own; masks and hypernetworks add theirs here)."""
    if config.hnet_all:
        if config.use_replay:
            raise ConfigError("--use_replay: coreset replay with --hnet_all is not supported")
        return Hypernetwork.from_config(config, net, device)
    if config.use_masks:
        return Masking.fresh_masked(net, config.orthogonal_hh_init, config.mask_fraction, config.random_seed, device)
    return FineTune.fresh(net, config.orthogonal_hh_init, device)


def build_extras(config: Config, net: RecurrentNet, source: Method) -> list[Method]:
    """The regularisers that watch the source."""
    extras: list[Method] = []
    if config.use_ewc:
        extras.append(OnlineEWC(net, source, config))
    if config.use_si:
        extras.append(SynapticIntelligence(source, config.si_lambda, config.si_task_loss_only,
                                           config.num_tasks, net.num_params))
    if config.orthogonal_hh_reg > 0:
        extras.append(OrthogonalPenalty(net, source, config.orthogonal_hh_reg))
    if config.use_replay:
        extras.append(CoresetReplay(net, source, config.coreset_size, config.replay_distill_reg, config.batch_size))
    return extras


def build_method(config: Config, net: RecurrentNet, device: torch.device) -> Method:
    """A fresh method for a run (and, with --train_from_scratch, for every task)."""
    source = build_source(config, net, device)
    extras = build_extras(config, net, source)
    return Composite(source, extras) if extras else source
