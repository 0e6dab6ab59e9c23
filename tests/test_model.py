from __future__ import annotations

import copy
import os
from dataclasses import asdict

import numpy as np
import pytest
import torch

from qgtools.model import (
    CPU_HPARAMS,
    Ensemble,
    HParams,
    Predictor,
    count_parameters,
    flops_per_jet,
    load_model,
    make_mlp,
    mlp_from_hparams,
    save_model,
)
from qgtools.preprocessing import Preprocessor
from qgtools.train import evaluate, fit


def test_defaults_are_the_reference_configuration():
    hp = HParams()
    assert (hp.n_layers, hp.n_channels, hp.layer_norm, hp.batch_norm) == (6, 1024, True, True)
    assert (hp.hidden_activation, hp.dropout, hp.lr, hp.batch_size, hp.max_epochs) == (
        "Tanh",
        0.2,
        1e-3,
        100,
        50,
    )
    assert (hp.input_channels, hp.patience, hp.factor, hp.pos_weight, hp.preprocessing) == (
        45,
        15,
        0.3,
        1.0,
        "none",
    )


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("input_channels", 46, "1..45"),
        ("n_layers", 0, ">= 1"),
        ("dropout", 1.0, "0 <= dropout < 1"),
        ("hidden_activation", "Softmax", "ReLU, LeakyReLU, SiLU, GELU, ELU, Tanh"),
        ("hidden_activation", "Module", "allowed"),
        ("lr", -1e-3, "> 0"),
        ("lr", float("nan"), "finite"),
        ("factor", 0.0, "0 < factor <= 1"),
        ("batch_size", 1, "BatchNorm"),
        ("preprocessing", "sqrt", "log\\+standardize"),
        ("n_channels", 64.0, "integer"),
        ("layer_norm", "yes", "True or False"),
    ],
)
def test_invalid_values_name_the_field(field, value, allowed):
    with pytest.raises(
        ValueError,
        match=rf"HParams\.{field}={value!r}".replace("(", r"\(").replace(")", r"\)")
        + rf" is invalid: .*{allowed}",
    ):
        HParams(**{field: value})


def test_replace_validates_and_rejects_unknown_fields():
    assert HParams().replace(n_layers=3).n_layers == 3
    with pytest.raises(ValueError, match="no field"):
        HParams().replace(layers=3)


def test_hidden_block_order_and_sizes():
    net = make_mlp(input_channels=10, n_layers=2, n_channels=16)
    kinds = [type(m).__name__ for m in net]
    block = ["Linear", "LayerNorm", "BatchNorm1d", "Dropout", "Tanh"]
    assert kinds == block + block + ["Linear"]
    assert net(torch.zeros(4, 10)).shape == (4, 1)
    assert count_parameters(net) == (10 * 16 + 16) + (16 * 16 + 16) + 4 * 2 * 16 + (16 + 1)


def test_optional_layers_can_be_left_out():
    net = make_mlp(
        input_channels=45,
        n_layers=3,
        n_channels=8,
        layer_norm=False,
        batch_norm=False,
        dropout=0.0,
        hidden_activation="SiLU",
    )
    assert [type(m).__name__ for m in net] == ["Linear", "SiLU"] * 3 + ["Linear"]


def test_reference_model_size():
    assert (
        count_parameters(make_mlp())
        == 45 * 1024 + 1024 + 5 * (1024 * 1024 + 1024) + 6 * 4 * 1024 + 1025
    )


def test_save_and_load_round_trip(tmp_path, jets):
    result = fit(
        HParams(n_layers=1, n_channels=8, max_epochs=1, preprocessing="log+standardize"), jets
    )
    path = save_model(result.predictor, tmp_path / "model.pt")
    loaded = load_model(path)
    assert loaded.hparams == result.predictor.hparams and loaded.split_seed == 0
    assert loaded.source == result.predictor.source == jets.source
    np.testing.assert_array_equal(
        loaded.predict(jets.X[:50]), result.predictor.predict(jets.X[:50])
    )
    assert asdict(loaded.hparams)["preprocessing"] == "log+standardize"


class _NotAModel:
    pass


def test_loading_never_unpickles_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "qgtools-model-1", "payload": _NotAModel()}, path)
    with pytest.raises(ValueError, match="is not a model saved by qgtools"):
        load_model(path)
    with pytest.raises(ValueError, match="No model file"):
        load_model(tmp_path / "missing.pt")


def _untrained_predictor(jets, hparams: HParams) -> Predictor:
    """A Predictor without training: enough for saving, loading and input checks."""
    torch.manual_seed(0)
    return Predictor(
        network=mlp_from_hparams(hparams),
        preprocessor=Preprocessor(hparams.preprocessing).fit(jets.X),
        hparams=hparams,
        source=jets.source,
    )


SMALL = HParams(n_layers=1, n_channels=8, preprocessing="log+standardize")


def test_a_failed_save_keeps_the_previous_model(tmp_path, jets, monkeypatch):
    good = _untrained_predictor(jets, SMALL)
    path = save_model(good, tmp_path / "model.pt")
    expected = good.predict(jets.X[:20])

    def half_save(obj, f, *args, **kwargs):  # a full disk: some bytes, then an error
        if isinstance(f, (str, os.PathLike)):
            with open(f, "wb") as out:
                out.write(b"PK\x03\x04 half a zip")
        else:
            f.write(b"PK\x03\x04 half a zip")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", half_save)
    with pytest.raises(OSError, match="No space left"):
        save_model(_untrained_predictor(jets, SMALL.replace(n_channels=4)), path)
    monkeypatch.undo()
    np.testing.assert_array_equal(load_model(path).predict(jets.X[:20]), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # no temporary file left
    assert load_model(save_model(good, path)).hparams == SMALL  # a later save still works


def test_weights_that_do_not_fit_the_hparams_are_refused(tmp_path, jets):
    path = save_model(_untrained_predictor(jets, SMALL), tmp_path / "edited.pt")
    saved = torch.load(path, weights_only=True)
    saved["hparams"]["n_channels"] = 16  # edited by hand: the weights are still 8 wide
    torch.save(saved, path)
    with pytest.raises(
        ValueError, match=r"edited\.pt.*weights do not fit.*hyperparameters"
    ) as info:
        load_model(path)
    assert "'0.weight' is (8, 45) in the file but must be (16, 45)" in str(info.value)
    assert "n_channels=16" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)  # torch's own message is kept


def test_numpy_scalars_become_python_values():
    hp = HParams(
        n_channels=np.int64(16), lr=np.float32(1e-3), seed=np.int64(1), layer_norm=np.bool_(True)
    )
    assert (type(hp.n_channels), type(hp.lr), type(hp.seed), type(hp.layer_norm)) == (
        int,
        float,
        int,
        bool,
    )
    assert (hp.n_channels, hp.lr, hp.seed, hp.layer_norm) == (16, float(np.float32(1e-3)), 1, True)
    assert HParams(dropout=np.float64(0.1)).dropout.__class__ is float
    with pytest.raises(
        ValueError, match=r"HParams\.n_channels=16\.0 is invalid: must be an integer"
    ):
        HParams(n_channels=np.float64(16.0))
    with pytest.raises(ValueError, match=r"HParams\.lr=nan is invalid: must be a finite number"):
        HParams(lr=np.float32("nan"))
    with pytest.raises(ValueError, match=r"HParams\.n_layers=0 is invalid"):
        HParams(n_layers=np.int64(0))


def test_numpy_hparams_survive_save_and_load(tmp_path, jets):
    hp = SMALL.replace(n_channels=np.int64(8), n_layers=np.int32(1), dropout=np.float64(0.25))
    predictor = _untrained_predictor(jets, hp)
    loaded = load_model(save_model(predictor, tmp_path / "numpy.pt"))
    assert loaded.hparams == hp and type(loaded.hparams.n_channels) is int
    np.testing.assert_array_equal(loaded.predict(jets.X[:20]), predictor.predict(jets.X[:20]))


def test_predict_refuses_rows_with_non_finite_features(jets):
    predictor = _untrained_predictor(jets, SMALL)
    X = jets.X[:100].copy()
    X[[3, 7], 5] = np.nan
    X[50, 0] = np.inf
    with pytest.raises(ValueError, match=r"3 row\(s\) .*not finite.*\[3, 7, 50\]"):
        predictor.predict(X)
    assert np.isfinite(predictor.predict(X[np.isfinite(X).all(axis=1)])).all()


def test_printed_hparams_break_between_fields():
    hp = HParams(hidden_activation="SiLU", preprocessing="log+standardize")
    lines = str(hp).splitlines()
    assert len(lines) > 1 and max(map(len, lines)) <= 88
    assert " ".join(line.strip() for line in lines) == repr(hp)  # whole name=value pairs


def test_for_epochs_scales_the_learning_rate_schedule():
    short = HParams(max_epochs=5, patience=2, factor=0.343)
    long = short.for_epochs(20)
    assert (long.max_epochs, long.patience, long.factor) == (20, 8, 0.343)
    # the learning rate falls by the same factor over both runs: factor ** (epochs // patience)
    assert long.max_epochs // long.patience == short.max_epochs // short.patience
    assert HParams().for_epochs(10).patience == 3
    assert HParams(max_epochs=50, patience=1).for_epochs(2).patience == 1  # never below one epoch


# --------------------------------------------------------------------------- ensembles


def _members(jets, n: int = 3) -> list[Predictor]:
    """Untrained members of different widths and seeds: their scores differ."""
    members = []
    for i in range(n):
        torch.manual_seed(i)
        hp = SMALL.replace(n_channels=4 + 4 * i, seed=i)
        members.append(
            Predictor(
                network=mlp_from_hparams(hp),
                preprocessor=Preprocessor(hp.preprocessing).fit(jets.X),
                hparams=hp,
                source=jets.source,
            )
        )
    return members


def test_an_ensemble_averages_its_members_probabilities_or_logits(jets):
    members = _members(jets)
    X = jets.X[:100]
    probabilities = np.array([m.predict(X) for m in members])
    assert np.allclose(Ensemble(members).predict(X), probabilities.mean(axis=0))
    logits = np.array([m.logits(X) for m in members])
    assert np.allclose(1 / (1 + np.exp(-logits)), probabilities, atol=1e-6)
    by_logit = Ensemble(members, combine="logit").predict(X)
    assert np.allclose(by_logit, 1 / (1 + np.exp(-logits.mean(axis=0))))
    assert not np.allclose(by_logit, probabilities.mean(axis=0))  # the two rules differ
    np.testing.assert_array_equal(Ensemble(members[:1]).predict(X), members[0].predict(X))
    scores, labels = evaluate(Ensemble(members), jets, split="val")  # the members' own parts
    member_scores, member_labels = evaluate(members[0], jets, split="val")
    np.testing.assert_array_equal(labels, member_labels)
    assert scores.shape == member_scores.shape


def test_an_ensemble_costs_the_sum_of_its_members(jets):
    members = _members(jets)
    ensemble = Ensemble(members)
    assert ensemble.n_parameters == sum(count_parameters(m.network) for m in members)
    assert flops_per_jet(ensemble) == sum(flops_per_jet(m.hparams) for m in members)
    assert flops_per_jet(members[0]) == flops_per_jet(members[0].hparams) == 2 * (45 * 4 + 4)
    assert flops_per_jet(CPU_HPARAMS) == 22_272  # notebook 02's 3 x 64 network


@pytest.mark.parametrize(
    "change, message",
    [
        ({"source": "other jets"}, "member 1 was trained on 'other jets'"),
        ({"split_seed": 1}, "split with seed 1"),
        ({"split_sizes": (0.7, 0.2, 0.1)}, r"into \[0.7, 0.2, 0.1\]"),
    ],
)
def test_members_of_other_data_or_splits_are_refused(jets, change, message):
    first, second = _members(jets, 2)
    for name, value in change.items():
        setattr(second, name, value)
    with pytest.raises(ValueError, match=message) as info:
        Ensemble([first, second])
    assert "test jets could be another's training jets" in str(info.value)


def test_an_ensemble_refuses_what_it_cannot_average(jets):
    members = _members(jets, 2)
    with pytest.raises(ValueError, match="at least one member"):
        Ensemble([])
    with pytest.raises(ValueError, match="member 1 is a Ensemble.*pass its members"):
        Ensemble([members[0], Ensemble(members)])
    with pytest.raises(ValueError, match="combine='median'"):
        Ensemble(members, combine="median")


def test_an_ensemble_saves_and_loads_as_one_file(tmp_path, jets):
    ensemble = Ensemble(_members(jets), combine="logit")
    path = save_model(ensemble, tmp_path / "ensemble.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ensemble.pt"]
    loaded = load_model(path)
    assert isinstance(loaded, Ensemble) and loaded.combine == "logit"
    assert [m.hparams for m in loaded.members] == [m.hparams for m in ensemble.members]
    np.testing.assert_array_equal(loaded.predict(jets.X[:50]), ensemble.predict(jets.X[:50]))
    assert isinstance(load_model(save_model(ensemble.members[0], tmp_path / "one.pt")), Predictor)


def test_a_damaged_or_mismatched_ensemble_file_is_a_clear_error(tmp_path, jets):
    path = save_model(Ensemble(_members(jets, 2)), tmp_path / "ensemble.pt")
    saved = torch.load(path, weights_only=True)

    def load_edited(edit) -> str:
        edited = copy.deepcopy(saved)
        edit(edited)
        torch.save(edited, path)
        with pytest.raises(ValueError) as info:
            load_model(path)
        return str(info.value)

    assert "without members" in load_edited(lambda f: f.update(members=[]))
    message = load_edited(lambda f: f["members"][1].pop("state_dict"))
    assert "ensemble.pt (member 1): a model's part is missing or damaged" in message
    message = load_edited(lambda f: f["members"][0]["hparams"].update(n_channels=16))
    assert "(member 0): the stored weights do not fit" in message
    message = load_edited(lambda f: f["members"][1].update(split_seed=7))
    assert "member 1 was trained on" in message and "split with seed 7" in message
