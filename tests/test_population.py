"""A population's members are the models fit trains, trained together and kept apart."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import curves, require

from qgtools import model, population, train
from qgtools.model import HParams
from qgtools.population import fit_population

BASE = HParams(
    n_layers=2,
    n_channels=16,
    dropout=0.0,
    batch_size=64,
    max_epochs=3,
    preprocessing="log+standardize",
    patience=2,
    factor=0.5,
)


@pytest.mark.parametrize(
    "hp",
    [BASE, BASE.replace(layer_norm=False, hidden_activation="ReLU", pos_weight=1.5, seed=4)],
    ids=["ln+bn", "bn-only"],
)
def test_a_population_of_one_is_fit(data, hp):
    alone = fit(hp, data)
    (member,) = fit_population([hp], data, num_threads=1)
    for key in ("val_loss", "val_auc", "train_loss"):
        assert np.allclose(curves(member, key), curves(alone, key), atol=1e-3), key
    assert np.allclose(curves(member, "lr"), curves(alone, "lr"))
    assert member.best_epoch == alone.best_epoch and member.status == "ok"


def fit(hp: HParams, data) -> train.TrainResult:
    return train.fit(hp, data, num_threads=1, progress=False)


def test_a_member_of_eight_is_the_same_member_alone(data):
    members = [
        BASE.replace(lr=lr, seed=seed, pos_weight=w, factor=f, patience=p)
        for lr, seed, w, f, p in zip(
            [1e-3, 3e-3, 1e-2, 3e-4, 1e-3, 2e-3, 5e-3, 7e-4],
            range(8),
            [1, 1.2, 0.8, 1, 1, 1.5, 1, 1],
            [0.5, 0.3, 0.5, 0.9, 0.5, 0.5, 0.1, 0.5],
            [2, 1, 2, 3, 1, 2, 1, 2],
            strict=True,
        )
    ]
    together = fit_population(members, data, num_threads=1)
    for k in (0, 3, 6):
        (alone,) = fit_population([members[k]], data, num_threads=1)
        assert np.allclose(curves(together[k], "val_loss"), curves(alone, "val_loss"), atol=1e-3)
        assert np.allclose(curves(together[k], "val_auc"), curves(alone, "val_auc"), atol=1e-3)


def test_a_diverging_member_is_dropped_and_the_others_go_on_unchanged(data):
    plain = BASE.replace(layer_norm=False, batch_norm=False)
    healthy = [plain.replace(seed=1), plain.replace(seed=2, lr=3e-3)]
    blown = plain.replace(lr=1e30)  # the recipe that diverges
    with_it = fit_population([healthy[0], blown, healthy[1]], data, num_threads=1)
    without = fit_population(healthy, data, num_threads=1)
    assert [r.status for r in with_it] == ["ok", "diverged", "ok"]
    assert math.isnan(with_it[1].history[-1]["val_loss"])
    for a, b in zip([with_it[0], with_it[2]], without, strict=True):
        assert np.allclose(curves(a, "val_loss"), curves(b, "val_loss"), atol=1e-3)


def test_pruned_members_stop_and_keep_what_they_reached(data):
    members = [BASE.replace(seed=s) for s in range(4)]
    seen = []

    def prune_member_two_after_the_first_epoch(alive, entries):
        seen.append(list(alive))
        return [2] if entries[0]["epoch"] == 0 else []

    results = fit_population(
        members, data, num_threads=1, on_epoch=prune_member_two_after_the_first_epoch
    )
    assert seen == [[0, 1, 2, 3], [0, 1, 3], [0, 1, 3]]
    assert [r.status for r in results] == ["ok", "ok", "pruned", "ok"]
    assert len(results[2].history) == 1 and len(results[0].history) == 3


def test_members_that_join_later_are_the_same_members_alone(data):
    first = [BASE.replace(seed=s, lr=lr) for s, lr in [(0, 1e-3), (1, 3e-3)]]
    later = [BASE.replace(seed=7, lr=2e-3, factor=0.3, patience=1), BASE.replace(seed=8)]
    rounds = []

    def stop_member_one_at_once(alive, entries):
        rounds.append([(i, e["epoch"]) for i, e in zip(alive, entries, strict=True)])
        return [1] if len(rounds) == 1 else []

    waiting = list(later)

    def one_at_a_time(free):
        return [waiting.pop(0)] if waiting and free else []

    results = fit_population(
        first, data, num_threads=1, on_epoch=stop_member_one_at_once, refill=one_at_a_time
    )
    # member 1 leaves after round 1 and member 2 takes its place; 3 waits for member 0 to end
    assert rounds[:4] == [[(0, 0), (1, 0)], [(0, 1), (2, 0)], [(0, 2), (2, 1)], [(2, 2), (3, 0)]]
    assert [r.status for r in results] == ["ok", "pruned", "ok", "ok"]
    for k, hp in [(2, later[0]), (3, later[1])]:
        (alone,) = fit_population([hp], data, num_threads=1)
        for key in ("val_loss", "val_auc", "lr"):
            assert np.allclose(curves(results[k], key), curves(alone, key), atol=1e-3), key
        assert results[k].best_epoch == alone.best_epoch


def test_a_member_is_a_predictor_that_saves_and_loads(data, tmp_path):
    result = fit_population([BASE.replace(seed=5), BASE.replace(seed=6)], data, num_threads=1)[1]
    scores, labels = train.evaluate(result.predictor, data, split="val")
    from qgtools import metrics

    assert math.isclose(
        metrics.background_rejection(labels, scores), result.best_val_rejection, rel_tol=1e-5
    )
    path = model.save_model(result.predictor, tmp_path / "member.pt")
    again = model.load_model(path)
    assert np.allclose(again.predict(data.X[:50]), result.predictor.predict(data.X[:50]))


def test_members_must_share_a_shape(data):
    with pytest.raises(ValueError, match=r"Member 1 differs from member 0 in \['n_channels'\]"):
        fit_population([BASE, BASE.replace(n_channels=32)], data)
    with pytest.raises(ValueError, match="at least one member"):
        fit_population([], data)


def test_a_members_memory_counts_five_copies_of_its_weights_and_a_batchs_activations():
    from qgtools.model import count_parameters, mlp_from_hparams
    from qgtools.population import member_bytes

    hp = HParams(n_layers=2, n_channels=32, batch_size=64, dropout=0.1)
    weights = count_parameters(mlp_from_hparams(hp))
    activations = 64 * 32 * 2 * 5  # linear, LayerNorm, BatchNorm, dropout mask, activation
    assert member_bytes(hp) == 4 * (5 * weights + activations)
    assert member_bytes(hp.replace(batch_size=128)) - member_bytes(hp) == 4 * activations


def test_the_update_in_column_blocks_is_the_update_in_one(data, monkeypatch):
    members = [BASE.replace(seed=s, lr=lr) for s, lr in [(0, 1e-3), (1, 3e-3), (2, 1e-2)]]
    whole = fit_population(members, data, num_threads=1, max_epochs=2)
    monkeypatch.setattr(population, "UPDATE_BLOCK", 96)  # 32 columns a block: dozens of blocks
    blocks = fit_population(members, data, num_threads=1, max_epochs=2)
    for a, b in zip(whole, blocks, strict=True):
        assert np.allclose(curves(a, "val_loss"), curves(b, "val_loss"), atol=1e-6)


def test_a_compiled_population_trains_the_eager_members_through_pruning(data):
    """The compiled step (forced on) against the eager one: three members, one pruned after
    the first epoch, so the compiled code also runs with fewer members than it first saw."""
    require(population.compiler_missing(), "g++, from the machine's build tools")
    shape = BASE.replace(n_layers=1)  # LayerNorm and BatchNorm still; compiles in half the time
    members = [
        shape.replace(seed=0),
        shape.replace(seed=1, lr=3e-3, pos_weight=1.3),
        shape.replace(seed=2, lr=5e-3, factor=0.3, patience=1),
    ]

    def prune_member_one(alive, entries):
        return [1] if entries[0]["epoch"] == 0 else []

    kwargs = dict(num_threads=1, on_epoch=prune_member_one)
    eager = fit_population(members, data, **kwargs)
    compiled = fit_population(members, data, compile=True, **kwargs)
    assert [r.status for r in compiled] == ["ok", "pruned", "ok"]
    for a, b in zip(eager, compiled, strict=True):
        for key in ("val_loss", "val_auc", "train_loss", "lr"):
            assert np.allclose(curves(a, key), curves(b, key), atol=1e-3), key
        assert a.best_epoch == b.best_epoch


def test_without_a_compiler_a_compiled_population_trains_eagerly_and_says_so(data, monkeypatch):
    from torch._inductor import config

    monkeypatch.setattr(config.cpp, "cxx", (None, "/nonexistent/g++"))
    monkeypatch.setattr(population, "_COMPILED", [])
    members = [BASE.replace(seed=s) for s in range(2)]
    with pytest.warns(
        RuntimeWarning, match="no C[+][+] compiler .*training this population eagerly"
    ):
        hidden = fit_population(members, data, num_threads=1, max_epochs=2, compile=True)
    eager = fit_population(members, data, num_threads=1, max_epochs=2)
    for a, b in zip(hidden, eager, strict=True):
        assert np.array_equal(curves(a, "val_loss"), curves(b, "val_loss"))


def test_a_population_runs_on_the_accelerator_asked_for_or_says_why_not(data):
    import torch

    assert population.device_of("cpu") == torch.device("cpu")
    assert population.device_of("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="accelerator='tpu': use one of auto, cpu, gpu, cuda"):
        fit_population([BASE], data, accelerator="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no GPU"):
            fit_population([BASE], data, accelerator="gpu")
    (member,) = fit_population([BASE], data, num_threads=1, max_epochs=1, accelerator="cpu")
    assert member.status == "ok"
    assert next(member.predictor.network.parameters()).device.type == "cpu"
