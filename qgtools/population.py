"""Many small networks trained at once: a population of the benchmark MLP in one vectorized pass.

A search's trials are small networks, and one optimizer step of a small network is mostly
per-step overhead. :func:`fit_population` trains K configurations that share a shape (layers,
width, norms, activation, batch size, preprocessing, epochs) as one stacked network: K small
matrix products become one batched product (``torch.baddbmm``), BatchNorm runs over the K x
width channels at once, and AdamW (amsgrad) and StepLR run on stacked tensors with a learning
rate, step, factor, dropout and ``pos_weight`` per member.

Each member is the model :func:`qgtools.train.fit` trains for its hyperparameters: it starts
from the same initial weights (the network is built after ``torch.manual_seed(seed)``), sees
its own seed's batch order, and makes the same updates; only dropout draws other random numbers.
Each member gets its validation loss, AUC and rejection on the whole validation split every
epoch, its best epoch and weights, and a :class:`~qgtools.train.TrainResult` whose predictor
:func:`qgtools.model.save_model` can save. A member whose loss goes NaN or infinite is marked
diverged and dropped; one that ``on_epoch`` stops (pruning) is dropped too; the others go on
unchanged, and the stacked tensors shrink, so stopped members cost nothing more. New members of
the same shape can take the freed places (``refill``), each at its own epoch and optimizer step.
Dropout draws other random numbers than ``fit`` and depends on who else is in the stack, so with
dropout a member is a model ``fit`` could have trained, not the same one.

``compile=True`` runs each batch's loss, its backward pass and the update through
``torch.compile`` (the member count marked dynamic, so pruning and refilling do not compile
again). It needs a C++ compiler at run time and costs some seconds per shape, so it pays only
in long runs of one shape; without a compiler it trains eagerly and says so in one warning.
``accelerator`` puts every stacked tensor and the validation on a GPU.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from qgtools import metrics
from qgtools.batches import batch_order
from qgtools.data import DEFAULT_SPLIT, JetData
from qgtools.data import split as split_data
from qgtools.model import ACTIVATIONS, HParams, Predictor, count_parameters, mlp_from_hparams
from qgtools.preprocessing import Preprocessor
from qgtools.train import TrainResult, torch_threads

SHARED_FIELDS = (
    "input_channels",
    "n_layers",
    "n_channels",
    "layer_norm",
    "batch_norm",
    "hidden_activation",
    "batch_size",
    "preprocessing",
    "max_epochs",
)
"""What the members of one population share: the stacked network's shape and its batches."""
MEMBER_FIELDS = ("lr", "patience", "factor", "dropout", "pos_weight", "seed")
"""What each member has for itself."""

ADAMW = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2}  # torch.optim.AdamW's defaults
EVAL_ROWS = 10_000  # validation jets per forward pass
UPDATE_BLOCK = 2**18  # numbers per block of the optimizer's update (1 MB of float32)
ACCELERATORS = ("auto", "cpu", "gpu", "cuda")
"""What ``accelerator`` may be, as for :func:`qgtools.train.fit` (``gpu`` and ``cuda`` alike)."""


def device_of(accelerator: str) -> torch.device:
    """The torch device a population trains on: ``"auto"`` takes a GPU when torch sees one.

    Raises:
        ValueError: an unknown name, or a GPU asked for where torch sees none.
    """
    if accelerator not in ACCELERATORS:
        raise ValueError(f"accelerator={accelerator!r}: use one of {', '.join(ACCELERATORS)}.")
    if accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(
            f"accelerator={accelerator!r}, but torch sees no GPU (torch.cuda.is_available() is "
            "False): use accelerator='cpu' or 'auto', or install a CUDA build of torch."
        )
    return torch.device("cuda")


class Layout(NamedTuple):
    """What the stacked forward pass of one shape needs to know besides its tensors."""

    n_layers: int
    layer_norm: bool
    batch_norm: bool
    activation: str


def member_bytes(hp: HParams) -> int:
    """About the memory one member of a population takes while it trains: its weights, their
    gradients and AdamW's three amsgrad moments (five float32 copies), and a batch's activations
    kept for the backward pass (the linear output, the activation, each norm and the dropout
    mask of every hidden layer).

    Args:
        hp: the member's configuration.

    Returns:
        Bytes, an estimate (torch's own buffers and the shared data come on top).
    """
    widths = [hp.input_channels] + [hp.n_channels] * hp.n_layers + [1]
    weights = sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))
    weights += 2 * hp.n_channels * hp.n_layers * (hp.layer_norm + hp.batch_norm)
    per_layer = 2 + hp.layer_norm + hp.batch_norm + (hp.dropout > 0)
    return 4 * (5 * weights + hp.batch_size * hp.n_channels * hp.n_layers * per_layer)


def check_population(members: Sequence[HParams]) -> None:
    """Refuse an empty population or members that do not share ``SHARED_FIELDS``."""
    if not members:
        raise ValueError("A population needs at least one member.")
    first = members[0]
    for k, hp in enumerate(members[1:], 1):
        differ = [f for f in SHARED_FIELDS if getattr(hp, f) != getattr(first, f)]
        if differ:
            raise ValueError(
                f"Member {k} differs from member 0 in {differ}: a population shares "
                f"{', '.join(SHARED_FIELDS)}; train other shapes as another population."
            )


class StackedMLP:
    """K benchmark MLPs of one shape as stacked tensors (member first), trained together.

    Built from the members' own ``mlp_from_hparams`` networks, each made after
    ``torch.manual_seed(hp.seed)``, so member k starts where ``fit`` would. Every weight is a
    view into one (K, P) tensor ``flat`` (P weights per member), and every gradient into one
    ``flat_grad``, so the optimizer updates all layers with a few operations on whole tensors.
    """

    def __init__(self, members: Sequence[HParams], device: torch.device | None = None) -> None:
        check_population(members)
        self.shape = members[0]
        self.members = list(members)
        self.device = device or torch.device("cpu")
        self.n_params = count_parameters(mlp_from_hparams(members[0]))
        hp = members[0]
        self.layout = Layout(hp.n_layers, hp.layer_norm, hp.batch_norm, hp.hidden_activation)
        # trained by the optimizer, in layer order; then the BatchNorm running means and variances
        params, buffers = _stacked(members)
        self.buffers = [b.to(self.device) for b in buffers]
        self.shapes = [p.shape[1:] for p in params]
        self.flat = _flattened(params).to(self.device)
        self._view()
        self.dropout = torch.tensor([hp.dropout for hp in members], device=self.device)

    def _view(self) -> None:
        """``params``: each weight as a view into ``flat``, its gradient a view into
        ``flat_grad`` (autograd adds into it in place)."""
        self.flat_grad = torch.zeros_like(self.flat)
        self.params = []
        start, k = 0, len(self.flat)
        for shape in self.shapes:
            size = shape.numel()
            param = self.flat[:, start : start + size].view(k, *shape).requires_grad_(True)
            param.grad = self.flat_grad[:, start : start + size].view(k, *shape)
            self.params.append(param)
            start += size

    def add(self, members: Sequence[HParams]) -> None:
        """New members (of the same shape) join, starting from their own initial weights."""
        check_population([self.shape, *members])
        params, buffers = _stacked(members)
        self.members += list(members)
        self.flat = torch.cat([self.flat, _flattened(params).to(self.device)])
        self._view()
        self.buffers = [
            torch.cat([b, c.to(self.device)]) for b, c in zip(self.buffers, buffers, strict=True)
        ]
        new_dropout = torch.tensor([hp.dropout for hp in members], device=self.device)
        self.dropout = torch.cat([self.dropout, new_dropout])

    def __len__(self) -> int:
        return len(self.members)

    def forward(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        """Logits (K, B) of inputs (K, B, features)."""
        return stacked_forward(
            self.params, self.buffers, x, self.keep_probability(training), self.layout, training
        )

    def keep_probability(self, training: bool) -> torch.Tensor | None:
        """Each member's dropout keep probability (K, 1, 1) while training with dropout, else
        ``None``."""
        if not training or all(hp.dropout == 0 for hp in self.members):
            return None
        return (1 - self.dropout).view(-1, 1, 1)

    def zero_grad(self) -> None:
        self.flat_grad.zero_()

    def keep(self, index: torch.Tensor) -> None:
        """Only the members at ``index`` go on (the stacked tensors shrink)."""
        self.members = [self.members[i] for i in index.tolist()]
        self.flat = self.flat[index]
        self._view()
        self.buffers = [b[index] for b in self.buffers]
        self.dropout = self.dropout[index]

    def state(self, k: int) -> list[torch.Tensor]:
        """Member k's weights and buffers (copies, on the CPU)."""
        return [t.detach()[k].to("cpu", copy=True) for t in self.params + self.buffers]


def stacked_forward(
    params: Sequence[torch.Tensor],
    buffers: Sequence[torch.Tensor],
    x: torch.Tensor,
    keep: torch.Tensor | None,
    layout: Layout,
    training: bool,
) -> torch.Tensor:
    """Logits (K, B) of inputs (K, B, features) through stacked weights (``StackedMLP.params``
    and ``.buffers``): per hidden layer a batched product, LayerNorm, BatchNorm (training updates
    the running statistics), dropout with keep probabilities ``keep`` (K, 1, 1) or none, the
    activation; then the output layer. A function of its tensors, so that ``torch.compile`` can
    trace it."""
    params, buffers = iter(params), iter(buffers)
    activation = _activation(layout.activation)
    h = x
    for _ in range(layout.n_layers):
        weight, bias = next(params), next(params)
        h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
        if layout.layer_norm:
            w, b = next(params), next(params)
            h = nn.functional.layer_norm(h, h.shape[-1:]) * w.unsqueeze(1) + b.unsqueeze(1)
        if layout.batch_norm:  # K x C channels over the batch: per member, as BatchNorm1d
            w, b = next(params), next(params)
            mean, var = next(buffers), next(buffers)
            k, batch, c = h.shape
            flat = h.transpose(0, 1).reshape(batch, k * c)
            flat = nn.functional.batch_norm(
                flat, mean.view(-1), var.view(-1), w.reshape(-1), b.reshape(-1), training
            )
            h = flat.reshape(batch, k, c).transpose(0, 1)
        if keep is not None:
            h = h * (torch.rand_like(h) < keep) / keep
        h = activation(h)
    weight, bias = next(params), next(params)
    return torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2)).squeeze(-1)


def batch_losses(
    params: Sequence[torch.Tensor],
    buffers: Sequence[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    pos_weight: torch.Tensor,
    keep: torch.Tensor | None,
    layout: Layout,
) -> torch.Tensor:
    """Each member's training loss (K,) on its batch: BCE with logits and its ``pos_weight``."""
    logits = stacked_forward(params, buffers, x, keep, layout, training=True)
    return nn.functional.binary_cross_entropy_with_logits(
        logits, y, pos_weight=pos_weight, reduction="none"
    ).mean(dim=1)


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "ReLU": nn.functional.relu,
    "LeakyReLU": nn.functional.leaky_relu,
    "SiLU": nn.functional.silu,
    "GELU": nn.functional.gelu,
    "ELU": nn.functional.elu,
    "Tanh": torch.tanh,
}
"""``model.ACTIVATIONS`` as functions, with the defaults of their ``torch.nn`` modules."""


def _activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if name not in _ACTIVATIONS:
        raise ValueError(f"hidden_activation={name!r}: allowed: {', '.join(ACTIVATIONS)}.")
    return _ACTIVATIONS[name]


def network_of(hp: HParams, state: list[torch.Tensor] | None) -> nn.Sequential:
    """The plain ``mlp_from_hparams`` network of ``hp`` with a member's ``state`` (weights in
    layer order, then BatchNorm buffers), in eval mode; without a state, its initial weights."""
    torch.manual_seed(hp.seed)
    net = mlp_from_hparams(hp)
    if state is not None:
        stateful = [m for m in net if _has_state(m)]
        n_params = 2 * len(stateful)
        params, buffers = iter(state[:n_params]), iter(state[n_params:])
        with torch.no_grad():
            for module in stateful:
                module.weight.copy_(next(params))
                module.bias.copy_(next(params))
                if isinstance(module, nn.BatchNorm1d):
                    module.running_mean.copy_(next(buffers))
                    module.running_var.copy_(next(buffers))
    return net.eval()


def _stacked(members: Sequence[HParams]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The members' initial weights and BatchNorm buffers, stacked member first: each network
    is ``mlp_from_hparams(hp)`` made after ``torch.manual_seed(hp.seed)``, as in ``fit``."""
    nets = []
    for hp in members:
        torch.manual_seed(hp.seed)
        nets.append(mlp_from_hparams(hp))
    # per member, in the order of the layers: Linear, LayerNorm, BatchNorm (what has state)
    layers = [[m for m in net if _has_state(m)] for net in nets]
    params, buffers = [], []
    for position in range(len(layers[0])):
        same = [member[position] for member in layers]
        params += [
            torch.stack([m.weight.detach() for m in same]),
            torch.stack([m.bias.detach() for m in same]),
        ]
        if isinstance(same[0], nn.BatchNorm1d):
            buffers += [
                torch.stack([m.running_mean for m in same]),
                torch.stack([m.running_var for m in same]),
            ]
    return params, buffers


def _flattened(params: list[torch.Tensor]) -> torch.Tensor:
    """Stacked weights (K, ...) side by side as one (K, P) tensor, in their order."""
    return torch.cat([p.reshape(len(p), -1) for p in params], dim=1)


def _has_state(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear | nn.LayerNorm | nn.BatchNorm1d)


class StackedAdamW:
    """AdamW with amsgrad on a population's (K, P) weights: torch's update, with a learning rate
    and a step count per member (members that join later start their own count), as a few
    operations on whole tensors whatever the depth."""

    def __init__(self, flat: torch.Tensor) -> None:
        self.steps = torch.zeros(len(flat), device=flat.device)
        self.exp_avg, self.exp_avg_sq, self.max_sq = (torch.zeros_like(flat) for _ in range(3))

    def keep(self, index: torch.Tensor) -> None:
        self.steps = self.steps[index]
        self.exp_avg, self.exp_avg_sq, self.max_sq = (
            t[index] for t in (self.exp_avg, self.exp_avg_sq, self.max_sq)
        )

    def add(self, n: int) -> None:
        """``n`` new members at the end: fresh moments."""
        self.steps = torch.cat([self.steps, self.steps.new_zeros(n)])
        self.exp_avg, self.exp_avg_sq, self.max_sq = (
            torch.cat([t, t.new_zeros(n, t.shape[1])])
            for t in (self.exp_avg, self.exp_avg_sq, self.max_sq)
        )

    @torch.no_grad()
    def step(
        self,
        flat: torch.Tensor,
        grad: torch.Tensor,
        lr: torch.Tensor,
        update: Callable[..., None] | None = None,
    ) -> None:
        """One update of ``flat`` from ``grad`` (both (K, P)); ``lr`` has one value per member.
        Eagerly it goes in column blocks of about ``UPDATE_BLOCK`` numbers, so that each block's
        weights, gradient and moments stay in the cache across the update's operations; a
        compiled ``update`` (:func:`whole_adamw_update` through ``torch.compile``) takes the
        whole tensors in one fused loop."""
        self.steps += 1
        moments = (self.exp_avg, self.exp_avg_sq, self.max_sq)
        if update is not None:
            update(flat, grad, *moments, self.steps, lr)
            return
        scale, correction2_sqrt, decay = _adamw_factors(self.steps, lr)
        width = max(1, UPDATE_BLOCK // len(flat))
        for start in range(0, flat.shape[1], width):
            block = slice(start, start + width)
            adamw_update(
                flat[:, block],
                grad[:, block],
                *(t[:, block] for t in moments),
                scale,
                correction2_sqrt,
                decay,
            )


def _adamw_factors(
    steps: torch.Tensor, lr: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per member (K, 1): the rate over the first moment's bias correction, the root of the
    second's, and 1 - rate x weight decay."""
    beta1, beta2 = ADAMW["betas"]
    scale = (lr / (1 - beta1**steps)).view(-1, 1)
    correction2_sqrt = (1 - beta2**steps).sqrt().view(-1, 1)
    return scale, correction2_sqrt, 1 - lr.view(-1, 1) * ADAMW["weight_decay"]


def whole_adamw_update(
    p: torch.Tensor,
    g: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    max_sq: torch.Tensor,
    steps: torch.Tensor,
    lr: torch.Tensor,
) -> None:
    """:func:`adamw_update` of whole (K, P) tensors, from each member's step count and rate
    (what the compiled update runs)."""
    adamw_update(p, g, exp_avg, exp_avg_sq, max_sq, *_adamw_factors(steps, lr))


def adamw_update(
    p: torch.Tensor,
    g: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    max_sq: torch.Tensor,
    scale: torch.Tensor,
    correction2_sqrt: torch.Tensor,
    decay: torch.Tensor,
) -> None:
    """torch's AdamW amsgrad step, in place, on (K, columns) weights ``p`` and their moments;
    ``scale``, ``correction2_sqrt`` and ``decay`` are (K, 1): the rate over the first moment's
    bias correction, the root of the second's, and 1 - rate x weight decay."""
    beta1, beta2 = ADAMW["betas"]
    p.mul_(decay)
    exp_avg.lerp_(g, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    torch.maximum(max_sq, exp_avg_sq, out=max_sq)
    denom = max_sq.sqrt().div_(correction2_sqrt).add_(ADAMW["eps"])
    p.sub_(exp_avg.div(denom).mul_(scale))


class Compiled(NamedTuple):
    """A population's compiled steps: :func:`batch_losses` and :func:`whole_adamw_update`."""

    losses: Callable[..., torch.Tensor]
    update: Callable[..., None]


_COMPILED: list[Compiled] = []


def compiled_steps() -> Compiled | None:
    """:func:`batch_losses` and :func:`whole_adamw_update` through ``torch.compile`` (once per
    process, so populations of one layout share their compiled code), or ``None`` with a warning
    where torch's compiler cannot run here (no C++ compiler: the population trains eagerly)."""
    if _COMPILED:
        return _COMPILED[0]
    missing = compiler_missing()
    if missing:
        warnings.warn(
            f"compile=True, but {missing}: training this population eagerly (the same models, "
            "slower); install g++ or pass compile=False to silence this.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    # static shapes but for the member count, which _mark_members_dynamic marks: with automatic
    # dynamic shapes, a second width would make every size symbolic, and the code slow
    _COMPILED.append(
        Compiled(
            torch.compile(batch_losses, dynamic=False),
            torch.compile(whole_adamw_update, dynamic=False),
        )
    )
    return _COMPILED[0]


def compiler_missing() -> str | None:
    """Why ``torch.compile`` cannot build CPU code here (a sentence), or ``None`` if it can:
    Inductor needs the C++ compiler it finds from ``$CXX`` or ``g++``."""
    from torch._inductor import exc
    from torch._inductor.cpp_builder import get_cpp_compiler

    try:
        get_cpp_compiler()
    except exc.InvalidCxxCompiler:
        return "torch.compile found no C++ compiler ($CXX or g++)"
    return None


def _mark_members_dynamic(tensors: Sequence[torch.Tensor]) -> None:
    """The member count (dim 0) of each may change between calls (pruning, refilling):
    compiled code takes any count instead of compiling for each."""
    for t in tensors:
        torch._dynamo.maybe_mark_dynamic(t, 0)


@dataclass
class _Tracker:
    """One member's record while it trains."""

    hparams: HParams
    history: list
    best_epoch: int = -1
    best_state: list | None = None
    status: str = "ok"
    last_state: list | None = None
    wall_time_s: float = 0.0  # its share of the rounds it trained in


OnEpoch = Callable[[list[int], list[dict]], Sequence[int]]
Refill = Callable[[int], Sequence[HParams]]


def fit_population(
    members: Sequence[HParams],
    data: JetData,
    *,
    split_seed: int = 0,
    max_epochs: int | None = None,
    split_sizes: Sequence[float] | Sequence[int] = DEFAULT_SPLIT,
    num_threads: int | None = None,
    on_epoch: OnEpoch | None = None,
    refill: Refill | None = None,
    on_leave: Callable[[int, TrainResult], object] | None = None,
    accelerator: str = "auto",
    compile: bool = False,
) -> list[TrainResult]:
    """Train ``members`` (one shape, see ``SHARED_FIELDS``) together on ``data``.

    Training goes in rounds: in each, every member still training runs its next epoch and
    is validated. Members leave when they have run their epochs, diverge or are stopped by
    ``on_epoch``; ``refill`` may then bring new members of the same shape into the free places,
    each starting at its own epoch 0, so the stacked network stays full.

    Args:
        members: the configurations; each ``seed`` seeds its initial weights and batch order.
        data: all the jets, split with ``split_seed`` as :func:`qgtools.train.fit` splits them.
        max_epochs: overrides the members' ``max_epochs`` when given (new members' too).
        num_threads: torch threads while training; ``None`` leaves it.
        on_epoch: called after each round's validation with the indices (into the members so
            far) of the members that trained in it and their newest history entries (each
            with its own ``"epoch"``); returns the indices to stop (pruning). Stopped members
            keep what they reached.
        refill: called after each round with the number of free places (the first population's
            size less the members still training); returns new members (maybe none). Their
            results follow the first members' in the order they joined.
        on_leave: called with a member's index and result as soon as it has left (after the
            round it finished, was stopped or diverged in, before ``refill``), so a search can
            end its trial at once.
        accelerator: where the stacked tensors live, as for :func:`qgtools.train.fit`:
            ``"auto"`` (a GPU if torch sees one), ``"cpu"``, ``"gpu"`` or ``"cuda"``.
        compile: run each batch's loss, backward pass and update through ``torch.compile``;
            it pays only in long runs of one shape (``bench/training_speed.py`` measures when),
            and falls back to eager training, with a warning, where there is no C++ compiler.

    Returns:
        One :class:`~qgtools.train.TrainResult` per member, in order; ``status`` is ``"ok"``,
        ``"diverged"`` (its loss went NaN or infinite; dropped there) or ``"pruned"``.
    """

    def prepared(new: Sequence[HParams]) -> list[HParams]:
        return [hp.replace(max_epochs=max_epochs) for hp in new] if max_epochs else list(new)

    members = prepared(members)
    check_population(members)
    device = device_of(accelerator)
    shape, places = members[0], len(members)
    preprocessor, (X, y), (X_val, y_val) = _splits(shape, data, split_seed, split_sizes, device)

    def result(tracker: _Tracker) -> TrainResult:
        return _result(tracker, preprocessor, split_seed, split_sizes, data)

    with torch_threads(num_threads), _gradient_views():
        run = _Rounds(members, result, on_leave, device, compiled_steps() if compile else None)
        while run.alive:
            round_start = time.perf_counter()
            epochs, pos_weight, losses = run.train_epoch(X, y, shape.batch_size)
            if not run.alive:
                break
            train_s = time.perf_counter() - round_start
            # as fit's history: the rate after this epoch's StepLR step
            after = [_rate(run.net.members[j], e + 1) for j, e in enumerate(epochs)]
            entries = _validate(run.net, X_val, y_val, pos_weight, epochs, after, losses, train_s)
            run.record(entries)
            stop = set(on_epoch(list(run.alive), entries)) if on_epoch else set()
            run.end_round(entries, stop, shape.max_epochs, round_start)
            free = places - len(run.alive)
            new = prepared(refill(free)) if refill and len(run.alive) < places else []
            if new:  # net.add checks that they share the shape
                run.add(new)
        run.settle()
    return [run.results[i] for i in range(len(run.trackers))]


def _splits(
    shape: HParams,
    data: JetData,
    split_seed: int,
    split_sizes: Sequence[float] | Sequence[int],
    device: torch.device,
) -> tuple[Preprocessor, tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The preprocessor fitted on the training split (as ``fit`` fits it), and the training
    and validation features and labels as float32 tensors on ``device``."""
    train, val, _ = split_data(data, split_sizes, split_seed)
    preprocessor = Preprocessor(shape.preprocessing).fit(train.X)

    def tensors(part: JetData) -> tuple[torch.Tensor, torch.Tensor]:
        X = preprocessor.transform(part.X)[:, : shape.input_channels]
        return tuple(torch.as_tensor(a, dtype=torch.float32, device=device) for a in (X, part.y))

    return preprocessor, tensors(train), tensors(val)


class _Rounds:
    """The state of one :func:`fit_population`: the stacked network, its optimiser, each
    member's tracker, the members still training (``alive``) and the results of those gone."""

    def __init__(
        self,
        members: list[HParams],
        result: Callable[[_Tracker], TrainResult],
        on_leave: Callable[[int, TrainResult], object] | None,
        device: torch.device,
        compiled: Compiled | None = None,
    ) -> None:
        self.trackers = [_Tracker(hp, []) for hp in members]
        self.alive = list(range(len(members)))
        self.results: dict[int, TrainResult] = {}
        self.result, self.on_leave = result, on_leave
        self.device, self.compiled = device, compiled
        self.net = StackedMLP(members, device)
        self.optimizer = StackedAdamW(self.net.flat)

    def drop(self, keep: torch.Tensor) -> None:
        """Keep only the alive members at the positions ``keep``."""
        self.alive = [self.alive[j] for j in keep.tolist()]
        self.net.keep(keep)
        self.optimizer.keep(keep)

    def settle(self) -> None:
        """The result of each member that has left, once, to ``on_leave`` too."""
        for i in sorted(set(range(len(self.trackers))) - set(self.alive) - set(self.results)):
            self.results[i] = self.result(self.trackers[i])
            if self.on_leave is not None:
                self.on_leave(i, self.results[i])

    def train_epoch(
        self, X: torch.Tensor, y: torch.Tensor, batch_size: int
    ) -> tuple[list[int], torch.Tensor, list[torch.Tensor]]:
        """One epoch of every alive member, dropping those whose loss goes NaN or infinite;
        the alive members' epochs, their ``pos_weight`` and the batches' losses."""
        net, trackers, device = self.net, self.trackers, self.device
        epochs = [len(trackers[i].history) for i in self.alive]
        lr = torch.tensor([_rate(net.members[j], e) for j, e in enumerate(epochs)], device=device)
        pos_weight = torch.tensor([[hp.pos_weight] for hp in net.members], device=device)
        orders = torch.stack(
            [batch_order(hp.seed, e, len(y)) for hp, e in zip(net.members, epochs, strict=True)]
        ).to(device)
        losses: list[torch.Tensor] = []
        for first in range(0, len(y), batch_size):
            if orders[:, first : first + batch_size].shape[1] < 2:
                continue  # BatchNorm cannot train on one jet (as in fit)
            while self.alive:  # again without the members that diverged on this batch
                rows = orders[:, first : first + batch_size]
                loss = self.batch_losses(X[rows], y[rows], pos_weight)
                finite = torch.isfinite(loss)
                if bool(finite.all()):
                    break
                for j in (~finite).nonzero().flatten().tolist():
                    tracker = trackers[self.alive[j]]
                    tracker.status = "diverged"
                    tracker.history.append(_nan_entry(epochs[j], float(lr[j])))
                keep = finite.nonzero().flatten()
                self.drop(keep)
                epochs = [epochs[j] for j in keep.tolist()]
                orders, lr, pos_weight = orders[keep], lr[keep], pos_weight[keep]
                losses = [past[keep] for past in losses]
            if not self.alive:
                break
            net.zero_grad()
            loss.sum().backward()
            update = None
            if self.compiled is not None:
                update = self.compiled.update
                moments = [self.optimizer.exp_avg, self.optimizer.exp_avg_sq, self.optimizer.max_sq]
                _mark_members_dynamic([net.flat, net.flat_grad, lr, self.optimizer.steps, *moments])
            self.optimizer.step(net.flat, net.flat_grad, lr, update)
            losses.append(loss.detach())
        return epochs, pos_weight, losses

    def batch_losses(
        self, x: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor
    ) -> torch.Tensor:
        """Each alive member's loss on its batch (the compiled step where there is one)."""
        net = self.net
        keep = net.keep_probability(training=True)
        if self.compiled is None:
            return batch_losses(net.params, net.buffers, x, y, pos_weight, keep, net.layout)
        inputs = [*net.params, *net.buffers, x, y, pos_weight]
        _mark_members_dynamic(inputs if keep is None else [*inputs, keep])
        return self.compiled.losses(net.params, net.buffers, x, y, pos_weight, keep, net.layout)

    def record(self, entries: list[dict]) -> None:
        """Append each alive member's validation entry; keep its best and last weights."""
        for j, (i, entry) in enumerate(zip(self.alive, entries, strict=True)):
            tracker = self.trackers[i]
            earlier = [h["val_rejection"] for h in tracker.history if math.isfinite(h["val_auc"])]
            tracker.history.append(entry)
            if math.isfinite(entry["val_auc"]) and entry["val_rejection"] > max(
                earlier, default=-1.0
            ):
                tracker.best_epoch, tracker.best_state = entry["epoch"], self.net.state(j)
            tracker.last_state = self.net.state(j)

    def end_round(
        self, entries: list[dict], stop: set[int], max_epochs: int, round_start: float
    ) -> None:
        """Mark the stopped and diverged members, share the round's time, let the finished
        ones leave and settle them."""
        trackers = self.trackers
        for i, entry in zip(self.alive, entries, strict=True):
            if not math.isfinite(entry["val_auc"]):
                stop.add(i)
                trackers[i].status = "diverged"
            elif i in stop:
                trackers[i].status = "pruned"
        done = stop | {i for i in self.alive if len(trackers[i].history) >= max_epochs}
        share = (time.perf_counter() - round_start) / len(self.alive)
        for i in self.alive:
            trackers[i].wall_time_s += share
        if done:
            self.drop(
                torch.tensor(
                    [j for j, i in enumerate(self.alive) if i not in done], dtype=torch.long
                )
            )
        self.settle()

    def add(self, new: list[HParams]) -> None:
        """Bring ``new`` members (of the same shape) into the free places."""
        self.net.add(new)
        self.optimizer.add(len(new))
        self.alive += range(len(self.trackers), len(self.trackers) + len(new))
        self.trackers += [_Tracker(hp, []) for hp in new]


@contextmanager
def _gradient_views() -> Iterator[None]:
    """Training with gradients that are views into ``StackedMLP.flat_grad``, strided as their
    weights are, which autograd adds into in place: its warning that such a gradient does not
    follow its layout contract (a dense one) is expected, and silenced inside the block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*gradient layout contract")
        yield


def _rate(hp: HParams, epoch: int) -> float:
    """The StepLR rate of ``hp`` in ``epoch``."""
    return hp.lr * hp.factor ** (epoch // hp.patience)


def _nan_entry(epoch: int, lr: float) -> dict:
    nan = math.nan
    return {
        "epoch": epoch,
        "train_loss": nan,
        "val_loss": nan,
        "val_auc": nan,
        "val_rejection": nan,
        "lr": lr,
        "train_s": nan,
    }


@torch.no_grad()
def _validate(net, X_val, y_val, pos_weight, epochs, lr, losses, train_s) -> list[dict]:
    """Each member's history entry for this epoch, on the whole validation split."""
    logits = torch.cat(
        [
            net.forward(X_val[i : i + EVAL_ROWS].expand(len(net), -1, -1), training=False)
            for i in range(0, len(y_val), EVAL_ROWS)
        ],
        dim=1,
    )
    val_loss = nn.functional.binary_cross_entropy_with_logits(
        logits, y_val.expand_as(logits), pos_weight=pos_weight, reduction="none"
    ).mean(dim=1)
    train_loss = torch.stack(losses).mean(dim=0) if losses else torch.full((len(net),), math.nan)
    logits, val_loss, train_loss = logits.cpu(), val_loss.cpu(), train_loss.cpu()
    labels = y_val.cpu().numpy().astype(np.int64)
    entries = []
    for j in range(len(net)):
        finite = bool(torch.isfinite(logits[j]).all()) and math.isfinite(float(train_loss[j]))
        scores = torch.sigmoid(logits[j]).numpy()
        entries.append(
            {
                "epoch": epochs[j],
                "train_loss": float(train_loss[j]),
                "val_loss": float(val_loss[j]) if finite else math.nan,
                "val_auc": metrics.roc_auc(labels, scores) if finite else math.nan,
                "val_rejection": metrics.background_rejection(labels, scores)
                if finite
                else math.nan,
                "lr": float(lr[j]),
                "train_s": train_s / len(net),
            }
        )
    return entries


def _result(tracker, preprocessor, split_seed, split_sizes, data) -> TrainResult:
    hp, history = tracker.hparams, tracker.history
    nan = {"val_rejection": math.nan, "val_auc": math.nan}
    best = history[tracker.best_epoch] if tracker.best_epoch >= 0 else nan
    finite = [h for h in history if math.isfinite(h["val_auc"])]
    last = finite[-1] if finite else nan

    def predictor_of(state: list | None) -> Predictor:
        network = network_of(hp, state)
        return Predictor(network, preprocessor, hp, split_seed, tuple(split_sizes), data.source)

    return TrainResult(
        best_val_rejection=best["val_rejection"],
        best_val_auc=best["val_auc"],
        best_epoch=tracker.best_epoch,
        last_val_rejection=last["val_rejection"],
        last_val_auc=last["val_auc"],
        history=history,
        n_params=count_parameters(mlp_from_hparams(hp)),
        wall_time_s=tracker.wall_time_s,
        status=tracker.status,
        predictor=predictor_of(tracker.best_state),
        last_predictor=predictor_of(tracker.last_state),
    )
