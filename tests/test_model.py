from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch

from qgtools.model import HParams, count_parameters, load_model, make_mlp, save_model
from qgtools.train import fit


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
