"""`RunConfig`, the settings of a training run defined once: `keras-vae
train`'s flags are made from it, and a checkpoint records, compares and
resumes every run setting."""

import argparse
import dataclasses
import json
import types
import typing

import pytest

from keras_vae.cli import build_parser
from keras_vae.cli.flags import run_config
from keras_vae.training.config import INVOCATION, RUN, RunConfig

FIELDS = dataclasses.fields(RunConfig)
RUN_FIELDS = [f.name for f in RunConfig.fields_of(RUN)]
FRESH = {f.name: f.metadata["fresh"] for f in RunConfig.fields_of(RUN)}

# Two different values of each type a run setting may have: the first as
# recorded with a checkpoint, the second as asked for now.
VALUES = {int: (7, 9), float: (0.5, 0.25), str: ("recorded", "asked"), bool: (False, True)}


def _values(field):
    """The recorded value and a different one, for `field`'s type."""
    kind = field.type
    if isinstance(kind, types.UnionType):  # int | None: int
        kind = next(t for t in typing.get_args(kind) if t is not type(None))
    assert kind in VALUES, f"{field.name}: add two values of {kind} to VALUES"
    return VALUES[kind]


RECORDED = {f.name: _values(f)[0] for f in RunConfig.fields_of(RUN)}
ASKED = {f.name: _values(f)[1] for f in RunConfig.fields_of(RUN)}


def _train_flags():
    """{dest: [its actions]} of `keras-vae train`'s flags (--help aside)."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    flags = {}
    for action in commands.choices["train"]._actions:
        if not isinstance(action, argparse._HelpAction):
            flags.setdefault(action.dest, []).append(action)
    return flags


def test_every_setting_with_a_flag_has_one_with_help_and_no_flag_is_outside_the_config():
    flags = _train_flags()
    names = {f.name for f in FIELDS}
    assert set(flags) <= names, f"train flags outside RunConfig: {sorted(set(flags) - names)}"
    for field in FIELDS:
        if not field.metadata["flag"]:
            assert field.name not in flags, f"{field.name} is derived, but has a flag"
            continue
        assert field.name in flags, f"RunConfig.{field.name} has no train flag"
        for action in flags[field.name]:
            assert action.help and action.help.strip() and action.help != argparse.SUPPRESS, (
                f"{action.option_strings} has no help")
        options = {o for action in flags[field.name] for o in action.option_strings}
        assert "--" + field.name.replace("_", "-") in options, (field.name, options)
    assert {o for a in flags["dataset"] for o in a.option_strings} == {"--dataset", "--data"}


def test_a_derived_run_setting_is_still_recorded_and_compared():
    data_sha256 = next(f for f in FIELDS if f.name == "data_sha256")
    assert data_sha256.metadata["kind"] == RUN and data_sha256.metadata["flag"] is False
    assert "data_sha256" in RUN_FIELDS  # so the tests below cover it


def test_the_record_holds_every_run_setting_and_nothing_else():
    assert RunConfig(**ASKED).record() == ASKED
    assert list(RunConfig().record()) == RUN_FIELDS
    json.dumps(RunConfig(**ASKED).fresh().record())  # kept as JSON with each checkpoint
    invocation = {f.name for f in RunConfig.fields_of(INVOCATION)}
    assert invocation and not invocation & set(RunConfig().record())
    assert {f.name for f in FIELDS} == set(RUN_FIELDS) | invocation


@pytest.mark.parametrize("name", RUN_FIELDS)
def test_a_run_setting_set_otherwise_than_recorded_is_a_conflict(name):
    assert RunConfig(**{name: ASKED[name]}).conflict(RECORDED) == (
        name, RECORDED[name], ASKED[name])
    assert RunConfig(**{name: RECORDED[name]}).conflict(RECORDED) is None
    assert RunConfig().conflict(RECORDED) is None  # unset: the resumed run's own


@pytest.mark.parametrize("name", RUN_FIELDS)
def test_a_record_without_a_setting_compares_with_its_fresh_default(name):
    old = {key: value for key, value in RECORDED.items() if key != name}
    if FRESH[name] is not None:
        assert RunConfig(**{name: FRESH[name]}).conflict(old) is None
    assert RunConfig(**{name: ASKED[name]}).conflict(old) == (name, FRESH[name], ASKED[name])


def test_resuming_takes_every_unset_run_setting_from_the_record():
    resumed = RunConfig(iters=5).resumed(RECORDED)
    assert resumed.record() == RECORDED
    assert resumed.iters == 5
    for name in RUN_FIELDS:  # one set here is kept (conflict() says if it differs)
        assert getattr(RunConfig(**{name: ASKED[name]}).resumed(RECORDED), name) == ASKED[name]


@pytest.mark.parametrize("name", RUN_FIELDS)
def test_an_old_checkpoint_lacking_a_setting_resumes_with_its_fresh_default(name):
    old = {key: value for key, value in RECORDED.items() if key != name}
    assert RunConfig().resumed(old).record() == {**RECORDED, name: FRESH[name]}


def test_train_flags_give_a_run_config_with_the_rest_unset():
    args = build_parser().parse_args(
        ["train", "--batch-size", "32", "--binarize", "--data", "x.npz", "--iters", "5"])
    config = run_config(args)
    given = {"batch_size": 32, "binarize": True, "dataset": "x.npz", "iters": 5}
    assert isinstance(config, RunConfig)
    for field in FIELDS:
        unset = None if field.metadata["kind"] == RUN else field.default
        assert getattr(config, field.name) == given.get(field.name, unset), field.name
    assert type(config.batch_size) is int and config.binarize is True
