"""The method registry: what the rules, the builder, the population and the search spaces derive from it."""
from __future__ import annotations

import pytest

import search_spaces
from cl_rnn.config import Config
from cl_rnn.methods import registry
from cl_rnn.methods.base import Composite
from cl_rnn.methods.build import build_method
from cl_rnn.methods.regularisers import Regularisers
from cl_rnn.nets.rnn import NetSpec, RecurrentNet
from cl_rnn.population import fallback_reason
from cl_rnn.rules import ConfigError, check

# The study's mutually exclusive method flags (its train_args / sanity checks), as cl-rnn enforced them
# before the registry: the registry's declarations must give exactly these pairs.
STUDY_EXCLUSIVE = {
    ("train_from_scratch", "multitask"), ("train_from_scratch", "use_ewc"), ("train_from_scratch", "use_si"),
    ("multitask", "use_ewc"), ("multitask", "use_si"), ("use_ewc", "use_si"),
    ("hnet_all", "use_masks"), ("hnet_all", "use_ewc"), ("hnet_all", "use_si"), ("hnet_all", "multitask"),
    ("use_replay", "use_si"), ("use_replay", "use_ewc"), ("use_replay", "use_masks"), ("use_replay", "multitask"),
    ("use_replay", "train_from_scratch"), ("use_masks", "multitask"), ("hnet_all", "use_replay"),
}


def runnable(spec: registry.MethodSpec) -> dict:
    """Flags that select ``spec`` and pass its own rule."""
    flags = spec.selecting_flags() if spec.flag != "orthogonal_hh_reg" else {"orthogonal_hh_reg": 0.5}
    flags["multi_head"] = True
    return {**flags, "coreset_size": 10} if spec.name == "replay" else flags


def test_the_declared_exclusions_are_the_studys():
    derived = {frozenset((a.flag, b.flag)) for a, b in registry.exclusions()}
    assert derived == {frozenset(pair) for pair in STUDY_EXCLUSIVE}


@pytest.mark.parametrize("a, b", sorted(STUDY_EXCLUSIVE))
def test_each_excluded_pair_is_refused_naming_both_flags(a, b):
    first, second = _by_flag(a), _by_flag(b)
    config = Config().replace(**{**runnable(first), **runnable(second)})
    with pytest.raises(ConfigError) as refused:
        check(config)
    assert f"--{a}" in str(refused.value) and f"--{b}" in str(refused.value)


def _by_flag(flag: str) -> registry.MethodSpec:
    return next(spec for spec in registry.methods().values() if spec.flag == flag)


def test_every_method_alone_passes_the_rules():
    for spec in registry.methods().values():
        check(Config().replace(**runnable(spec)))


def test_a_methods_own_rule_is_its_one_line_refusal():
    with pytest.raises(ConfigError, match="--use_replay: cl-rnn implements coreset replay only"):
        check(Config(use_replay=True))
    with pytest.raises(ConfigError, match="--hnet_all: cl-rnn implements --use_new_hnet"):
        check(Config(hnet_all=True))


def test_the_method_is_built_from_the_selected_specs_extras_in_order():
    net = RecurrentNet(NetSpec.from_config(Config(), input_size=128))
    config = Config(use_masks=True, use_si=True, orthogonal_hh_reg=0.5)
    method = build_method(config, net, "cpu")
    assert method.name == "masks"  # the regularisers are not Methods
    assert [type(r).__name__ for r in Regularisers(config, net, method).all] == ["SynapticIntelligence",
                                                                                 "OrthogonalPenalty"]
    assert registry.run_name(config) == "masks+si+ortho_reg"
    replay = Config(use_replay=True, coreset_size=10, orthogonal_hh_reg=0.5)
    composite = build_method(replay, net, "cpu")
    assert isinstance(composite, Composite) and [m.name for m in composite.members] == ["finetune", "replay"]
    assert registry.run_name(replay) == "ortho_reg+replay"
    assert build_method(Config(), net, "cpu").name == "finetune" == registry.run_name(Config())


def test_population_fallback_reasons_come_from_the_specs():
    for spec in registry.methods().values():
        reason = fallback_reason(Config().replace(**runnable(spec)))
        assert reason == spec.not_batched, spec.name


def test_every_search_space_selects_the_methods_its_fixed_flags_name():
    expected = {"coresets": {"replay"}, "ewc": {"ewc"}, "ewc_task_identity": {"ewc", "task_identity"},
                "finetune": set(), "from_scratch": {"from_scratch"}, "hnet": {"hnet"}, "masking": {"masks"},
                "masking_si": {"masks", "si"}, "multitask": {"multitask"}, "si": {"si"}}
    for name, space in search_spaces.all_spaces().items():
        assert {s.name for s in registry.selected(Config().replace(**space.fixed))} == expected[name], name


@pytest.mark.parametrize("change, message", [
    ({"flag": "use_no_such_thing"}, "names unknown flags"),
    ({"role": "source", "build": None}, "a source needs a build function"),
    ({"name": "ewc"}, "registered twice"),
    ({"build": lambda *_: None}, "not both"),
    ({"batched": None}, "an extra needs a batched function"),
    ({"batched": None, "build": lambda *_: None, "not_batched": None}, "needs a not_batched reason"),
])
def test_a_malformed_spec_is_refused_in_one_line(change, message):
    spec = registry.MethodSpec(**{"name": "mine", "flag": "use_ewc", "role": "extra", "summary": "",
                                  "batched": lambda *_: None, "not_batched": "not batched", **change})
    with pytest.raises(registry.RegistryError, match=message):
        registry._check_spec("mine.py", spec, registry.methods())
    with pytest.raises(registry.RegistryError, match="unknown method 'nope'"):
        registry.get("nope")
