"""The per-job cost model: what a job asks a cluster for (run time, memory, GPUs, CPUs) from its spec.

One home for these numbers: the Snakemake rules' ``resources:`` (workflow/rules/common.smk) call
:func:`train_resources` and :func:`analysis_resources`, and ``ilrepro plan`` (:mod:`ilrepro.plan`) sums them.

The run-time model counts work, not wall-clock guesses: a training is ``updates`` weight updates, each
``passes`` forward-equivalent passes through the model (BP: forward + backward = 3; an algorithm with an
inference loop of T steps: a forward and a vector-Jacobian product per step plus the weight update,
2 (T + 1) + 2), and ``updates / eval_every`` evaluations, each a forward pass over the whole test set.
A pass costs a per-layer overhead (Python and kernel launches, which dominate at batch size 1) plus its
FLOPs (counted once per model with torch's FlopCounterMode) at a sustained rate. On a CPU the work is
counted rather than assumed (:func:`algorithm_work`): the job's algorithm runs one update, one
prediction and one reference gradient on a batch of two random examples, and the counts are its ATen
calls (each at the calibrated per-call overhead), its FLOPs per example and the weight-sized tensors it
streams; so an RNN's 29 unrolled layers, an energy-based network's free phase and Fa-Z-IL's gradient
bookkeeping cost what they do (``workflow/scripts/plan_check.py`` compares it with measurement). A job trains every
learning rate x seed of an algorithm entry (its members): one by one, each member pays the whole cost;
stacked (:func:`ilrepro.train.stack_members` decides, on the planned device), the members share one
step's overhead, ``Costs.stack_overhead`` times a plain step's, and each adds its FLOPs; on CUDA the
evaluation is batched across members too. The constants were
measured on one CPU core and on an H100 (:data:`COSTS`; ``ilrepro plan --calibrate cpu|cuda`` measures
them on yours); the request is the estimate times :data:`SAFETY`, at least :data:`MIN_RUNTIME_MIN`,
doubled on each retry.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from . import first_layer, native
from .algorithms import ALGORITHMS, make_algorithm
from .algorithms.base import Algorithm
from .data import SIZES, DataSize
from .models import Net, build_model
from .runtime import seeds_of, targets
from .train import eval_chunk, stack_members

__all__ = [
    "Costs",
    "COSTS",
    "Resources",
    "ModelCost",
    "model_cost",
    "passes_per_update",
    "estimate_seconds",
    "members_of",
    "train_resources",
    "analysis_resources",
    "calibrate",
    "using",
    "Work",
    "AlgorithmWork",
    "algorithm_work",
]


@dataclass(frozen=True)
class Costs:
    """Speed of one device, for the run-time model."""

    pass_overhead_s: float  # per layer and forward-equivalent pass, whatever the size (pure-torch path)
    flops_per_s: float  # sustained rate of the training passes where they are compute-bound (large batches)
    eval_flops_per_s: float  # sustained rate of the (large-batch) evaluation
    startup_s: float  # interpreter, torch, data set
    # a stacked step's per-layer overhead over a plain one's. CPU: fitted to the measurements in
    # ilrepro.train (digits MLP, B=1: step(M) = a + b M with a = 3.5x a plain BP-SGD step, 2.3x a plain
    # IL-SGD step). CUDA: not measured (no GPU was lent); `ilrepro sweep-bench` fits it on one.
    stack_overhead: float = 3.0
    # the per-update overhead where the native fast path (ilrepro.native) takes the update, one model at
    # a time (one call an update, whatever the depth); None: the device has no native path
    native_update_overhead_s: float | None = None
    # the roofline: at batch B a training pass runs at min(flops_per_s, B x batch1_flops_per_s) (batch 1
    # reads every weight for two FLOPs: bound by the weights' traffic, not the arithmetic); None: at
    # flops_per_s whatever the batch
    batch1_flops_per_s: float | None = None
    # streaming rate of the weight-sized tensors the optimiser step reads and writes (at batch 1 it costs
    # as much as the passes on large layers); None: not counted
    mem_bytes_per_s: float | None = None
    # weights up to this size stay in the core's cache between steps: their streams cost nothing extra
    cache_bytes: float = 0.0


COSTS: dict[str, Costs] = {
    # 1 torch thread. CPU: `ilrepro plan --calibrate cpu` on an AMD EPYC (Zen 5, AVX-512), 2026-12-02,
    # MKL on its AVX-512 kernels (ilrepro.mkl_vendor), two runs: per-layer overhead 1.7-2.3e-5 s (pure
    # torch), native 2.1-2.6e-5 s an update, batch-1 rate 3.4-3.7e10 FLOP/s, 64x1024x1024 GEMM
    # 1.1-1.4e11, SGD step streams 3.8-4.4e10 B/s, evaluation 1.2-1.5e11; taken at the slower end.
    # Checked against the paper plan's CPU jobs, short runs of each on random data of the data set's
    # shape (workflow/scripts/plan_check.py; reference/plan_check.csv). Before (2026-12-01, one rate
    # for every batch): 6e-5, 2e10, 8e10, native 3.5e-6 a layer-pass; it overestimated batch-64 jobs 8-33x.
    "cpu": Costs(pass_overhead_s=2e-5, flops_per_s=1.3e11, eval_flops_per_s=1.2e11, startup_s=60.0, native_update_overhead_s=3e-5,
                 batch1_flops_per_s=3.5e10, mem_bytes_per_s=3.5e10, cache_bytes=2**21),
    # CUDA: `--calibrate cuda` on an H100, 2026-11-23 (launch-bound at these batches); not re-measured
    # for stacked jobs or the CUDA graph (no GPU lent to issue 17's session): `ilrepro sweep-bench` on a
    # GPU measures them and prints the plan calibrated with them
    "cuda": Costs(pass_overhead_s=1e-4, flops_per_s=1.6e12, eval_flops_per_s=3e13, startup_s=120.0),
}
SAFETY = 2.0  # requested run time = SAFETY x estimate (a slower node, a busy file system)
MIN_RUNTIME_MIN = 5
MEM_BASE_MB = 1024  # the interpreter, torch and the libraries
ANALYSIS_RUNTIME_MIN = 60  # analyses have no common cost model: a flat request, doubled on retry
ANALYSIS_MEM_MB = 4096


_LARGEST = SIZES["cifar10"]  # for a data set this table does not know yet: plan for the largest


@dataclass(frozen=True)
class Resources:
    """What one job asks for: minutes of run time, MB of memory, GPUs, CPUs (torch threads)."""

    runtime_min: int
    mem_mb: int
    gpu: int
    cpus: int
    estimate_s: float  # the model's estimate, before SAFETY


@dataclass(frozen=True)
class ModelCost:
    flops: float  # forward FLOPs for one example
    activations: int  # numbers held per example in a forward pass (all layers)
    n_params: int
    n_layers: int
    inner_flops: float = 0.0  # forward FLOPs above the input layer (what an inference step recomputes)


# for a model that cannot be sized: about a 3072-1024-1024-1024-10 MLP, with room to spare
_UNKNOWN_MODEL = ModelCost(flops=2e7, activations=100_000, n_params=10_000_000, n_layers=6)


@dataclass(frozen=True)
class Work:
    """What one call of an algorithm does on its model, counted by running it once on a batch of
    :data:`WORK_BATCH` random examples (pure-torch path): ATen calls (each pays a per-call overhead, which
    dominates at small batches) and FLOPs per example (torch's FlopCounterMode: products and convolutions)."""

    calls: int
    flops: float
    # bytes streamed by the calls other than products whose output is at least STREAM_MIN_BYTES (at
    # WORK_BATCH: weight-sized tensors, gradients zeroed, summed, divided, the optimiser's step), float32:
    # the output written once and read once per input of its size (``W.add_(g)``: three streams)
    stream_bytes: float = 0.0


@dataclass(frozen=True)
class AlgorithmWork:
    step: Work  # one update: the gradient estimate and the optimiser's step
    predict: Work  # the prediction an evaluation makes (``Algorithm.logits``: the feedforward pass, or a free phase)
    reference: Work  # the reference gradient ``track_bp_cosine`` compares with (``Algorithm.reference_gradient``)
    # (d_out, d_in) of the first layer where an evaluation can keep it up to date (ilrepro.first_layer: a
    # linear first layer, the feedforward prediction, and an update of W1 measured in the span of its batch)
    first_layer: tuple[int, int] | None = None


WORK_BATCH = 2


STREAM_MIN_BYTES = 2**18
_PRODUCTS = {"mm", "addmm", "bmm", "baddbmm", "convolution", "convolution_backward", "_convolution"}
_WRITE_ONLY = {"fill_", "zero_", "zeros", "zeros_like", "empty", "empty_like", "empty_strided", "full", "full_like"}
_COPIES = {"copy_", "clone", "_to_copy"}


class _CallCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.stream_bytes = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.calls += 1
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name not in _PRODUCTS:
            for t in out if isinstance(out, (tuple, list)) else (out,):
                size = t.numel() * t.element_size() if isinstance(t, torch.Tensor) else 0
                if size >= STREAM_MIN_BYTES:  # written once, and read once per input of its size
                    inputs = (a for a in (*args, *(kwargs or {}).values()) if isinstance(a, torch.Tensor))
                    reads = 0 if name in _WRITE_ONLY else 1 if name in _COPIES else sum(a.numel() == t.numel() for a in inputs)
                    self.stream_bytes += size * (1 + reads)
        return out


_WORK_LR = 0.01  # the calls and FLOPs of an update do not depend on its size


@functools.lru_cache(maxsize=256)
def _algorithm_work(model_json: str, dataset: str, algorithm: str, hparams_json: str) -> AlgorithmWork | None:
    ds = _data_size(dataset)
    # the pure-torch path (nothing built), and quiet: a training's "fast path not taken" line belongs to its own log
    with native.quiet(), native.disabled():
        return _count_work(ds, model_json, algorithm, hparams_json)


def _count_work(ds: DataSize, model_json: str, algorithm: str, hparams_json: str) -> AlgorithmWork | None:
    try:
        net = build_model(json.loads(model_json), ds.image_shape, ds.n_classes, ALGORITHMS[algorithm].parameterisation, seed=0)
        algo = make_algorithm(algorithm, net, _WORK_LR, json.loads(hparams_json))
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(WORK_BATCH, *ds.image_shape, generator=gen)
        target = targets(net, x, torch.randint(0, ds.n_classes, (WORK_BATCH,), generator=gen), ds.n_classes)

        def count(fn: Any) -> Work:
            fn()  # first: lazily made state (an optimiser's moments) is not the per-update work
            with _CallCounter() as calls, FlopCounterMode(display=False) as flops:
                fn()
            return Work(calls.calls, float(flops.get_total_flops()) / WORK_BATCH, float(calls.stream_bytes))

        counted = (count(lambda: algo.step(net, x, target)), count(lambda: algo.logits(net, x)),
                   count(lambda: algo.reference_gradient(net, x, target)))
        return AlgorithmWork(*counted, first_layer=_first_layer_kept(net, algo, ds, gen))
    except Exception as exc:  # plan with the pass model instead; never stop the workflow
        warnings.warn(f"ilrepro.plan: cannot count the work of {algorithm} on {model_json} ({exc}); planning by passes", stacklevel=2)
        return None


def _first_layer_kept(net: Net, algo: Any, ds: DataSize, gen: torch.Generator) -> tuple[int, int] | None:
    """(d_out, d_in) where an evaluation can keep the first layer up to date: measured, as the training
    does, by one more update on a new batch (after the counted ones: an optimiser's state is not empty)
    whose change of W1 must lie in the span of that batch's inputs."""
    if not first_layer.applies(net, type(algo)):
        return None
    x = torch.rand(WORK_BATCH, *ds.image_shape, generator=gen)
    target = targets(net, x, torch.randint(0, ds.n_classes, (WORK_BATCH,), generator=gen), ds.n_classes)
    w = net.params[0]
    before = w.detach().clone()
    algo.step(net, x, target)
    if not first_layer.in_span(w - before, net.presynaptic(0, x), w)[2]:
        return None
    d_out, d_in = w.shape
    return int(d_out), int(d_in)


def _kept_fraction(spec: dict[str, Any], work: AlgorithmWork | None, n_test: int, batched: bool, n_evals: int | None = None) -> float | None:
    """The first layer's average share of the full product over the job's ``n_evals`` evaluations where it
    keeps it up to date (as :func:`ilrepro.train.keeps_first_layer` decides), else None."""
    if work is None or work.first_layer is None or batched:
        return None
    d_out, d_in = work.first_layer
    rows = int(spec["eval_every"]) * int(spec["batch_size"])
    return first_layer.kept_fraction(spec.get("keep_first_layer", "auto"), d_in, d_out, rows, n_test, n_evals)


def algorithm_work(spec: dict[str, Any]) -> AlgorithmWork | None:
    """:class:`AlgorithmWork` of the spec's algorithm on its model (cached per model, algorithm and
    hyper-parameters); None where it cannot be run here."""
    if spec["algorithm"] not in ALGORITHMS:
        return None
    return _algorithm_work(json.dumps(spec["model"], sort_keys=True), spec["dataset"], spec["algorithm"],
                           json.dumps(spec.get("hparams") or {}, sort_keys=True))


_CALIBRATION_MODEL = {"type": "mlp", "hidden": [16, 16]}  # calibrate's per-layer overhead is this MLP's BP-SGD update


def _call_overhead_s(c: Costs) -> float:
    """The per-ATen-call overhead implied by ``c.pass_overhead_s``, which :func:`calibrate` measures as a
    BP-SGD update of a tiny MLP over its 3 x n_layers layer passes: that update's time over its calls."""
    w = _algorithm_work(json.dumps(_CALIBRATION_MODEL, sort_keys=True), "mnist", "bp_sgd", "{}")
    layers = model_cost(_CALIBRATION_MODEL, "mnist").n_layers
    return c.pass_overhead_s * 3 * layers / w.step.calls if w is not None and w.step.calls else c.pass_overhead_s



def _data_size(dataset: str) -> DataSize:
    return SIZES.get(dataset, _LARGEST)


def _device_kind(device: str) -> str:
    """``auto`` is planned as a CPU job: it asks the scheduler for no GPU (set ``cuda`` to get one)."""
    return "cuda" if device == "cuda" else "cpu"


@functools.lru_cache(maxsize=256)
def _model_cost(model_json: str, dataset: str, algorithm: str) -> ModelCost:
    ds = _data_size(dataset)
    param = ALGORITHMS[algorithm].parameterisation if algorithm in ALGORITHMS else "post"
    try:
        net = build_model(json.loads(model_json), ds.image_shape, ds.n_classes, param, seed=0)
        x = torch.zeros(1, *ds.image_shape)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            hs = net.forward(x)
    except Exception as exc:  # a model this table cannot build: plan generously, never stop the workflow
        warnings.warn(f"ilrepro.plan: cannot size model {model_json} on '{dataset}' ({exc}); "
                      "planning with a generous default", stacklevel=2)
        return _UNKNOWN_MODEL
    flops = float(counter.get_total_flops())
    first = net.params[0]  # a linear input layer's weight: 2 FLOPs per entry per example
    return ModelCost(
        flops=flops,
        activations=sum(h.numel() for h in hs),
        n_params=sum(p.numel() for p in net.params),
        n_layers=net.n_layers,
        inner_flops=max(0.0, flops - 2.0 * first.numel()) if first.dim() == 2 else flops,
    )


def model_cost(model: dict[str, Any], dataset: str, algorithm: str = "bp_sgd") -> ModelCost:
    """FLOPs, activations and parameters of the spec's model on the data set (cached per model)."""
    return _model_cost(json.dumps(model, sort_keys=True), dataset, algorithm)


def _hparams(algorithm: str, hparams: dict[str, Any] | None) -> dict[str, Any]:
    """The algorithm's defaults, overridden by the spec's hyper-parameters."""
    cls = ALGORITHMS.get(algorithm)
    return {**(cls.defaults if cls is not None else {}), **(hparams or {})}


def _steps(algorithm: str, hparams: dict[str, Any] | None, depth: int) -> int | None:
    """Inference steps T of one update, None without an inference loop (T = None in the hyper-parameters
    means as many steps as the model is deep, e.g. Fa-Z-IL)."""
    hp = _hparams(algorithm, hparams)
    if "T" not in hp:
        return None
    return depth if hp["T"] is None else int(hp["T"])


def _nbytes(spec: dict[str, Any]) -> int:
    return 8 if spec.get("dtype") == "float64" else 4


def passes_per_update(algorithm: str, hparams: dict[str, Any] | None = None, depth: int = 1) -> int:
    """Forward-equivalent passes of one update: 3 for BP, 2 (T + 1) + 2 with an inference loop of T."""
    T = _steps(algorithm, hparams, depth)
    return 3 if T is None else 2 * (T + 1) + 2


def members_of(spec: dict[str, Any]) -> int:
    """The models a training job trains: learning rates (``lrs``, else one) x seeds."""
    return len(spec.get("lrs", [None])) * len(seeds_of(spec))


def _native_alone(spec: dict[str, Any]) -> bool:
    """Whether the native fast path takes this job's updates, one model at a time: an algorithm with a
    native step on a chain of linear layers, on a CPU (planned without building the extension; on a
    machine without a compiler the pure-torch path runs, and stacks where that pays)."""
    cls = ALGORITHMS.get(spec["algorithm"])
    return (cls is not None and cls.has_native(spec.get("hparams"))
            and spec["model"].get("type", "mlp") in ("mlp", "autoencoder") and _device_kind(spec.get("device", "cpu")) == "cpu")


def _stacked(spec: dict[str, Any], m: ModelCost) -> bool:
    cls = ALGORITHMS.get(spec["algorithm"])
    if cls is None or not cls.vectorisable or members_of(spec) < 2:
        return False
    how = spec.get("stack", spec.get("vectorise", "auto"))
    device = torch.device(_device_kind(spec.get("device", "cpu")))
    return stack_members(how, members_of(spec), int(spec["batch_size"]), m.n_params, device, _native_alone(spec))


def _rate(c: Costs, batch: int) -> float:
    """FLOP/s of a training pass at this batch size (the roofline, see :class:`Costs`)."""
    return c.flops_per_s if c.batch1_flops_per_s is None else min(c.flops_per_s, batch * c.batch1_flops_per_s)


def _native_flops(spec: dict[str, Any], m: ModelCost) -> float:
    """FLOPs per example of one native update: BP 3 passes (forward, backward, weight gradient); an
    inference loop of T steps: the feedforward initialisation and the weight directions (2 passes)
    plus a prediction and a feedback product above the clamped input per step (2 T inner passes)."""
    T = _steps(spec["algorithm"], spec.get("hparams"), m.n_layers)
    return 3 * m.flops if T is None else 2 * m.flops + 2 * T * m.inner_flops


def _step_streams(spec: dict[str, Any], stacked: bool, native: bool) -> tuple[int, int]:
    """Weight-sized tensors the optimiser step streams, and its torch calls per layer. SGD: writes the
    gradient, reads it and the weight, writes the weight (4 streams; the native path fuses it into its
    one call, the reference's ``add_`` per tensor: 2 calls); the native path at batch 1, where the
    training does not read the gradient (no ``track_bp_cosine``), only reads and writes the weight (2
    streams: the gradient is never written out). Adam (ilrepro.optim.Adam): a model alone takes torch's
    fused kernel, one pass over weight, gradient and moments (8 streams, one call; measured 3.9 ms a
    step on the CIFAR MLP's 5.3M weights at batch 1); stacked members with rates of their own the
    readable step, as measured 20 ms there, 40 streams at 3.5e10 B/s (a fresh allocation for the square
    root and the division every step), 8 calls per tensor, 16 per layer."""
    if "adam" not in spec["algorithm"]:
        if native and int(spec["batch_size"]) == 1 and not spec.get("track_bp_cosine"):
            return 2, 0
        return 4, 0 if native else 2
    return (40, 16) if stacked and len(spec.get("lrs", [None])) > 1 else (8, 1)


def _eval_passes(spec: dict[str, Any]) -> int:
    """Forward-equivalent passes of one evaluation: 1, or for an algorithm whose prediction is an
    energy-based network's free equilibrium (its own ``logits``: EqProp, CHL) a prediction and a
    feedback product per free-phase step, 2 T + 1."""
    cls = ALGORITHMS.get(spec["algorithm"])
    if cls is None or cls.logits is Algorithm.logits:
        return 1
    return 2 * int(_hparams(spec["algorithm"], spec.get("hparams")).get("T", 1)) + 1


def estimate_seconds(spec: dict[str, Any]) -> float:
    """Expected wall time of the training ``spec`` (a :func:`ilrepro.experiments.job_spec` or
    :func:`~ilrepro.experiments.run_spec`): every member one by one, or stacked (see the module)."""
    n = members_of(spec)
    kind = _device_kind(spec.get("device", "cpu"))
    c = COSTS[kind]
    m = model_cost(spec["model"], spec["dataset"], spec["algorithm"])
    ds = _data_size(spec["dataset"])
    updates, batch = int(spec["updates"]), int(spec["batch_size"])
    nbytes = _nbytes(spec)
    stacked = _stacked(spec, m)
    native = not stacked and c.native_update_overhead_s is not None and _native_alone(spec)
    wide = nbytes // 4  # float64: half the lanes of a vector, half the FLOP rate
    rate = _rate(c, batch) / wide
    overhead = m.n_layers * c.pass_overhead_s
    flops = m.flops * batch / rate
    # a CPU job's work counted by running its algorithm once (calls and FLOPs); else by passes
    work = algorithm_work(spec) if kind == "cpu" else None
    call_s = _call_overhead_s(c) if work is not None else 0.0
    plain = work is not None and not stacked and not native  # one model at a time on the pure-torch path
    if native:
        prelude = ALGORITHMS[spec["algorithm"]].native_prelude_passes  # in Python, before the C++ call
        per_update = c.native_update_overhead_s + _native_flops(spec, m) * batch / rate + prelude * (overhead + flops)
    elif plain:
        per_update = work.step.calls * call_s + work.step.flops * batch / rate  # the optimiser's calls included
    elif stacked and work is not None:  # one step's overhead for all members, and every member's FLOPs
        per_update = c.stack_overhead * work.step.calls * call_s + n * work.step.flops * batch / rate
    else:
        per_pass = c.stack_overhead * overhead + n * flops if stacked else overhead + flops  # stacked: all members
        per_update = passes_per_update(spec["algorithm"], spec.get("hparams"), m.n_layers) * per_pass
    k = n if stacked else 1  # models a step moves
    weight_bytes = m.n_params * nbytes
    streamed = weight_bytes > c.cache_bytes and c.mem_bytes_per_s is not None  # else cache-resident
    streams, calls = _step_streams(spec, stacked, native)
    if plain:  # the weight-sized tensors the update writes, as counted (the optimiser's among them)
        per_update += work.step.stream_bytes * wide / c.mem_bytes_per_s if streamed else 0.0
    else:
        per_update += k * (streams * weight_bytes / c.mem_bytes_per_s if streamed else 0.0) + calls * m.n_layers * c.pass_overhead_s
    if spec.get("track_bp_cosine"):  # every update, member by member: the batch's prediction and the reference gradient
        if work is not None:
            extra = (work.predict, work.reference)
            per_update += k * sum(w.calls * call_s + w.flops * batch / rate for w in extra)
        else:
            per_update += 4 * k * (overhead + flops)
    if spec.get("track_path_length"):  # every update: a copy of the weights, and the norm of the step
        per_update += k * (2 * overhead + (4 * weight_bytes / c.mem_bytes_per_s if streamed else 0.0))
    every = int(spec["eval_every"])
    n_evals = 1 + updates // every + (1 if updates % every else 0)  # before the first update, every ``every``, after the last
    if work is not None:  # the prediction as counted, in the evaluation's chunks
        predict_flops = work.predict.flops
        kept = _kept_fraction(spec, work, ds.n_test, stacked and kind == "cuda", n_evals)
        if kept is not None and work.first_layer is not None:  # the first layer kept up to date: its average share
            predict_flops -= (1 - kept) * 2 * work.first_layer[0] * work.first_layer[1]
        eval_flops = wide * ds.n_test * predict_flops / c.eval_flops_per_s
        eval_overhead = math.ceil(ds.n_test / eval_chunk(torch.device(kind))) * work.predict.calls * call_s
    else:
        eval_flops = wide * _eval_passes(spec) * ds.n_test * m.flops / c.eval_flops_per_s
        eval_overhead = overhead
    if stacked and kind == "cuda":  # batched across members
        per_eval = n * eval_flops + c.stack_overhead * overhead
    else:
        per_eval = n * (eval_flops + eval_overhead)
    return c.startup_s + (1 if stacked else n) * updates * per_update + n_evals * per_eval


def train_resources(spec: dict[str, Any], attempt: int = 1) -> Resources:
    """What the training ``spec`` asks the scheduler for; the run time doubles on each retry."""
    est = estimate_seconds(spec)
    minutes = max(MIN_RUNTIME_MIN, math.ceil(SAFETY * est / 60)) * 2 ** (max(1, attempt) - 1)
    m = model_cost(spec["model"], spec["dataset"], spec["algorithm"])
    ds = _data_size(spec["dataset"])
    on_gpu = _device_kind(spec.get("device", "cpu")) == "cuda"
    nbytes = _nbytes(spec)
    n_pixels = math.prod(ds.image_shape)
    data_mb = 3 * (ds.n_train + ds.n_test) * n_pixels * nbytes / 2**20  # raw, converted and rescaled copies
    params_mb = 8 * members_of(spec) * m.n_params * nbytes / 2**20  # weights, gradients, optimiser state, clones
    # host memory: on a GPU the evaluation's activations live on the device; the CUDA context does not
    eval_mb = 0.0 if on_gpu else 3 * min(ds.n_test, 10_000) * m.activations * nbytes / 2**20
    work = algorithm_work(spec) if not on_gpu else None
    if work is not None and work.first_layer is not None and _kept_fraction(spec, work, ds.n_test, False) is not None:
        d_out, d_in = work.first_layer  # every member's test-set product and the W1 it was taken at
        eval_mb += members_of(spec) * (ds.n_test * d_out + d_out * d_in) * nbytes / 2**20
    mem = MEM_BASE_MB + (2048 if on_gpu else 0) + data_mb + params_mb + eval_mb
    mem_mb = 256 * math.ceil(mem / 256)
    gpu = 1 if on_gpu else 0
    return Resources(minutes, mem_mb, gpu, int(spec.get("threads", 1)), est)


def analysis_resources(spec: dict[str, Any], attempt: int = 1) -> Resources:
    """A flat request for an analysis job (no cost model: ``runtime_min`` from its config, else
    :data:`ANALYSIS_RUNTIME_MIN`), doubled in time on each retry."""
    gpu = 1 if _device_kind(spec.get("device", "cpu")) == "cuda" else 0
    minutes = int(spec.get("runtime_min", ANALYSIS_RUNTIME_MIN)) * 2 ** (max(1, attempt) - 1)
    return Resources(minutes, ANALYSIS_MEM_MB, gpu, int(spec.get("threads", 1)), float("nan"))


def _timed(fn: Any, dev: torch.device, n: int) -> float:
    """Seconds per call of ``fn`` (after warm-up calls)."""
    for _ in range(max(2, n // 10)):
        fn()
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    _sync(dev)
    return (time.perf_counter() - t0) / n


def calibrate(device: str = "cpu", threads: int = 1) -> Costs:
    """Measure :class:`Costs` on this machine, each constant by the work it stands for: the per-layer
    overhead from a tiny model at batch 1 (pure torch) and the native per-update overhead from the same
    model on the fast path; the batch-1 rate from 1 x 1024 x 1024 products, the compute-bound rate from
    64 x 1024 x 1024 ones; the optimiser's streaming rate from an SGD step on 16M weights; the
    evaluation rate from a wide MLP on 10,000 examples."""
    torch.set_num_threads(threads)
    dev = torch.device(device)

    def bp_update(hidden: list[int], batch: int, n: int) -> tuple[float, ModelCost]:
        shape = (1, 28, 28)
        net = build_model({"type": "mlp", "hidden": hidden}, shape, 10, "post", 0, device=dev)
        algo = make_algorithm("bp_sgd", net, 0.01, None)
        x = torch.rand(batch, *shape, device=dev)
        y = torch.nn.functional.one_hot(torch.randint(0, 10, (batch,), device=dev), 10).float()
        return _timed(lambda: algo.step(net, x, y, keep_gradient=False), dev, n), model_cost({"type": "mlp", "hidden": hidden}, "mnist")

    tiny = _CALIBRATION_MODEL["hidden"]
    small, m_small = bp_update(tiny, 1, 300)  # the native path where it builds
    native_overhead = small if native.available() and dev.type == "cpu" else None
    with native.disabled():
        small, m_small = bp_update(tiny, 1, 300)  # the pure-torch path
    overhead = small / (3 * m_small.n_layers)
    w = torch.rand(1024, 1024, device=dev)
    out1, out64 = torch.empty(1, 1024, device=dev), torch.empty(64, 1024, device=dev)
    a1, a64 = torch.rand(1, 1024, device=dev), torch.rand(64, 1024, device=dev)
    batch1 = 2 * 1024 * 1024 / _timed(lambda: torch.mm(a1, w.t(), out=out1), dev, 2000)
    rate = 2 * 64 * 1024 * 1024 / _timed(lambda: torch.mm(a64, w.t(), out=out64), dev, 200)
    p, g = torch.rand(2**24, device=dev), torch.rand(2**24, device=dev)
    mem = 3 * p.numel() * p.element_size() / _timed(lambda: p.add_(g, alpha=-1e-9), dev, 20)
    net = build_model({"type": "mlp", "hidden": [1024, 1024]}, (1, 28, 28), 10, "post", 0, device=dev)
    x, c = torch.rand(10_000, 1, 28, 28, device=dev), eval_chunk(dev)
    with torch.no_grad():  # in the evaluation's chunks
        eval_rate = 10_000 * model_cost({"type": "mlp", "hidden": [1024, 1024]}, "mnist").flops / _timed(
            lambda: [net.logits(x[i : i + c]) for i in range(0, len(x), c)], dev, 3)
    known = COSTS[_device_kind(device)]
    # the cache size is not measured here: the device's known one
    return Costs(pass_overhead_s=overhead, flops_per_s=rate, eval_flops_per_s=eval_rate, startup_s=known.startup_s,
                 stack_overhead=known.stack_overhead, native_update_overhead_s=native_overhead, batch1_flops_per_s=batch1,
                 mem_bytes_per_s=mem, cache_bytes=known.cache_bytes)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


@contextlib.contextmanager
def using(device: str, measured: Costs) -> Iterator[None]:
    """Inside, plan with ``measured`` constants for ``device``: what the stacked-sweep benchmark
    (:func:`ilrepro.bench.sweep_bench`) calibrates the plan with."""
    saved = COSTS[device]
    COSTS[device] = measured
    try:
        yield
    finally:
        COSTS[device] = saved
