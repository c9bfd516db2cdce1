"""The processes of a multi-process run: how many there are, which one this is, who started them.

ecowatch runs training and batch prediction over several processes with Lightning's DDP strategy
and nothing home-made: one process per device (GPU, or a share of the CPU cores), on one machine or
many. The processes are started in one of three ways, and the same ``ecowatch`` command works
under each:

- **Lightning's own launcher** (``detect.devices: 2`` on one machine, or ``num_nodes`` > 1 with
  ``MASTER_ADDR``, ``MASTER_PORT`` and ``NODE_RANK`` set on every node): the command starts as one
  process; at the first ``Trainer.predict`` / ``fit`` Lightning runs the same command line again in
  a child process per further device, with ``LOCAL_RANK`` (and ``WORLD_SIZE``, ``NODE_RANK``) set.
  A child therefore goes through the command from the start, and must not redo what only the
  first process does (ingest, the store's run row, MLflow, the report): :func:`launch_rank` tells
  it, before Lightning starts, that it is not rank 0.
- **torchrun** (``torchrun --nproc-per-node 4 -m pipelines nightly ...``): every process starts at
  once with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE`` set.
- **SLURM** (``srun`` with one task per device): every task starts at once with ``SLURM_PROCID``,
  ``SLURM_NTASKS``, ``SLURM_LOCALID`` and ``SLURM_NNODES`` set.

Under torchrun and SLURM the launcher decides the number of processes (the configured ``devices``
and ``num_nodes`` are then ignored), exactly as Lightning's cluster environments do. Because all
processes start together there, :func:`init_process_group` joins them before any work, so that the
other ranks can wait (:func:`barrier`) until rank 0 has ingested the dump.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, TypeVar

log = logging.getLogger(__name__)

Launcher = Literal["none", "lightning", "torchrun", "slurm"]
T = TypeVar("T")

#: How long a collective (a barrier) waits for the slowest process. The other ranks wait in a
#: barrier while rank 0 works alone: between the prediction stages (static false positives), and
#: under torchrun and SLURM while it ingests the dump, which can take hours on a large dump (run
#: ``ecowatch ingest`` first to avoid the wait). A rank that dies is noticed sooner: its peers'
#: connections close, and the launcher stops the others.
PROCESS_GROUP_TIMEOUT = dt.timedelta(hours=6)


@dataclass(frozen=True)
class ProcessWorld:
    """This process's place among the processes of one run.

    Attributes:
        rank: global rank, 0 .. ``size`` - 1; rank 0 writes the results store.
        size: number of processes (world size).
        local_rank: rank among the processes of this machine.
        local_size: processes per machine (Lightning's ``devices``).
        num_nodes: machines (Lightning's ``num_nodes``).
        launcher: who starts the processes: ``none`` (one process), ``lightning`` (Lightning's
            launcher starts the others when prediction begins), ``torchrun`` or ``slurm`` (all
            processes start at once).
    """

    rank: int
    size: int
    local_rank: int
    local_size: int
    num_nodes: int
    launcher: Launcher

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that ingests, writes the store, tracks and reports."""
        return self.rank == 0

    @property
    def starts_together(self) -> bool:
        """Every process was started at once by an external launcher (torchrun, SLURM)."""
        return self.launcher in ("torchrun", "slurm")

    def trainer_kwargs(self) -> dict[str, object]:
        """``devices``, ``num_nodes`` and ``strategy`` of a prediction ``lightning.Trainer`` in this world.

        Several processes: Lightning's DDP strategy, whose collectives wait up to
        :data:`PROCESS_GROUP_TIMEOUT` (the other processes wait while rank 0 works between stages).
        """
        if not self.distributed:
            return {"devices": 1, "num_nodes": 1, "strategy": "auto"}
        from lightning.pytorch.strategies import DDPStrategy

        return {"devices": self.local_size, "num_nodes": self.num_nodes,
                "strategy": DDPStrategy(timeout=PROCESS_GROUP_TIMEOUT)}


def launch_rank() -> int:
    """The global rank of this process in a multi-process launch, read before Lightning starts one.

    ``RANK`` (torchrun), ``SLURM_PROCID`` (srun), else Lightning's own launcher's ``NODE_RANK`` x
    processes per node + ``LOCAL_RANK``: 0 in a single process and in the process that launches the
    others. Only rank 0 tracks, evaluates and writes the checkpoint.
    """
    for key in ("RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    local = _env_int("LOCAL_RANK", 0)
    node = _env_int("NODE_RANK", 0)
    per_node = _env_int("LOCAL_WORLD_SIZE", 0) or max(1, _env_int("WORLD_SIZE", 1))
    return node * per_node + local if node else local


def launch_world(*, devices: int = 1, num_nodes: int = 1) -> ProcessWorld:
    """The process world of this run, from the launcher's environment or the configured devices.

    Args:
        devices: processes per machine when Lightning's own launcher starts them (the
            configuration's ``devices``); ignored under torchrun and SLURM.
        num_nodes: machines, likewise.

    Returns:
        The world, as Lightning's cluster environments will see it (torchrun first, then SLURM,
        then Lightning's launcher, the order Lightning itself tries them).

    Raises:
        ValueError: ``devices`` or ``num_nodes`` below 1, or a launcher environment variable that
            is not a number.
    """
    if devices < 1 or num_nodes < 1:
        raise ValueError(f"devices and num_nodes must be at least 1, got devices={devices}, num_nodes={num_nodes}")
    external = "TORCHELASTIC_RUN_ID" in os.environ or "SLURM_NTASKS" in os.environ  # (Lightning imported only then)
    if external:
        from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
    if external and TorchElasticEnvironment.detect():
        size = _env_int("WORLD_SIZE", 1)
        local_size = _env_int("LOCAL_WORLD_SIZE", 0) or size
        world = ProcessWorld(_env_int("RANK", 0), size, _env_int("LOCAL_RANK", 0), local_size,
                             max(1, size // local_size), "torchrun")
    elif external and SLURMEnvironment.detect() and _env_int("SLURM_NTASKS", 1) > 1:
        size, nodes = _env_int("SLURM_NTASKS", 1), max(1, _env_int("SLURM_NNODES", 1))
        world = ProcessWorld(_env_int("SLURM_PROCID", 0), size, _env_int("SLURM_LOCALID", 0), max(1, size // nodes),
                             nodes, "slurm")
    else:
        size = devices * num_nodes
        local_rank = _env_int("LOCAL_RANK", 0)
        rank = _env_int("NODE_RANK", 0) * devices + local_rank
        return ProcessWorld(rank, size, local_rank, devices, num_nodes, "lightning" if size > 1 else "none")
    if (world.local_size, world.num_nodes) != (devices, num_nodes):
        log.info("%s started %d processes (%d per machine on %d machines); the configured devices=%d, num_nodes=%d "
                 "are not used", world.launcher, world.size, world.local_size, world.num_nodes, devices, num_nodes)
    return world


def cpu_threads(threads: int | None, world: ProcessWorld) -> int:
    """Torch CPU threads of one process: the configured number, else this machine's cores shared out.

    Args:
        threads: the configured threads per process, or None.
        world: the process world (its ``local_size`` processes share the machine's cores).

    Returns:
        ``threads``, or ``os.cpu_count() // world.local_size`` (at least 1).
    """
    return threads or max(1, (os.cpu_count() or 1) // world.local_size)


def pad_to_world(items: list[T], world_size: int) -> list[T]:
    """The items, repeated from the start until every one of ``world_size`` processes gets one.

    Lightning's prediction sampler refuses a process without a sample; a repeated item is
    predicted twice and stored once (deterministic ids, insert-ignore).
    """
    if not items or len(items) >= world_size:
        return items
    return [items[i % len(items)] for i in range(world_size)]


def uses_cuda(accelerator: str) -> bool:
    """Whether a Lightning ``accelerator`` setting (``auto``, ``cpu``, ``gpu``) will run on CUDA here."""
    import torch

    return accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def init_process_group(world: ProcessWorld, *, accelerator: str = "auto",
                       timeout: dt.timedelta = PROCESS_GROUP_TIMEOUT) -> bool:
    """Join the processes of a torchrun / SLURM launch before any work, so they can wait for rank 0.

    Only where every process starts at once (:attr:`ProcessWorld.starts_together`) and the group
    is not initialised yet; Lightning's DDP strategy then reuses this group. Under Lightning's own
    launcher the other processes only exist once prediction starts, so nothing is done here.

    Args:
        world: the process world (see :func:`launch_world`).
        accelerator: the Lightning accelerator setting; the backend is ``nccl`` on CUDA, else
            ``gloo`` (Lightning's choice too).
        timeout: how long collectives wait for the slowest process.

    Returns:
        Whether the group was initialised by this call.
    """
    import torch
    import torch.distributed as dist

    if not world.distributed or not world.starts_together or not dist.is_available() or dist.is_initialized():
        return False
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    environment = TorchElasticEnvironment() if world.launcher == "torchrun" else SLURMEnvironment()
    os.environ["MASTER_ADDR"] = environment.main_address
    os.environ["MASTER_PORT"] = str(environment.main_port)
    backend = "nccl" if uses_cuda(accelerator) else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(world.local_rank)
    log.info("joining %d processes (%s, %s): rank %d", world.size, world.launcher, backend, world.rank)
    dist.init_process_group(backend, rank=world.rank, world_size=world.size, timeout=timeout)
    if backend == "nccl":
        import atexit

        atexit.register(dist.destroy_process_group)
    return True


def group_initialised() -> bool:
    """Whether this process belongs to an initialised ``torch.distributed`` process group."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    """Wait until every process of the group gets here; nothing without an initialised group."""
    import torch
    import torch.distributed as dist

    if not group_initialised():
        return
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


@contextmanager
def main_process_first(world: ProcessWorld) -> Iterator[None]:
    """Rank 0 runs the block first; the other processes run it once rank 0 has finished it.

    For work that must be done once before the others read its result (downloading weights,
    merging shards an earlier run left, ingesting). Without an initialised process group (one
    process, or Lightning's launcher before it started the others) it is a plain block.
    """
    if not world.is_main:
        barrier()
    yield
    if world.is_main:
        barrier()


def gather_ints(values: Sequence[int]) -> list[list[int]]:
    """Every process's ``values`` (same length everywhere), in rank order; a synchronisation point.

    Without an initialised group this process is the only one: ``[list(values)]``.
    """
    import torch
    import torch.distributed as dist

    if not group_initialised():
        return [list(values)]
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    mine = torch.tensor(list(values), dtype=torch.long, device=device)
    gathered = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, mine)
    return [[int(v) for v in tensor.tolist()] for tensor in gathered]


def _env_int(key: str, default: int) -> int:
    text = os.environ.get(key, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError as exc:
        raise ValueError(f"environment variable {key}={text!r} is not a whole number; the launcher sets it, "
                         "unset it when not launching several processes") from exc
