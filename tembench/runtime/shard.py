"""One sweep over the processes ``torchrun`` starts: one per GPU, or one per group of CPU cores.

``torchrun --nproc-per-node N [--nnodes M --rdzv-backend c10d --rdzv-endpoint HOST:PORT] -m tembench
profile ...`` starts N x M copies of the command. :func:`join` makes each one a rank of a gloo process
group, of which only the key-value store is used: no tensor crosses ranks, so gloo serves GPU sweeps as
well, and ranks on different nodes need no shared file system. Each rank measures on its own device
(:func:`rank_device`: ``cuda:LOCAL_RANK``) or, on a CPU, on its own cores (:func:`pin_cores`: the node's
cores split into disjoint groups, one per local rank).

Rank 0 decides and the others follow (:meth:`Launch.share`): rank 0 makes the plan (which cases, in which
order, which run file), and every rank then claims the next unit of the plan from one shared counter
until none is left. The plan lists the units by counted cost, largest first, so this is greedy list
scheduling: the ranks end within about one unit's time of each other whatever the spread of costs, and
the split needs no cost model of the devices (:func:`largest_first`). A unit is claimed by exactly one
rank, so no case is measured twice; a case whose rank dies without a record stays missing.

The store's keys, all under one prefix per sweep (:attr:`Launch.prefix`):

========================= ===========================================================================
``share/<name>``          what rank 0 decided (JSON: ``{"ok": value}`` or ``{"error": ..., "code": ...}``)
``next``                  the shared counter of claimed units
``claim/<rank>``          the unit the rank is measuring now (a rank that dies names its case)
``rec/<rank>/<seq>``      each record, as JSON, posted as soon as it is measured; rank 0 collects
                          and deletes it (``count/<rank>``: how many the rank posted)
``done``                  cases finished over all ranks (rank 0's progress bar)
``hello/<rank>``          the rank's process, host, device, cores and fingerprint
``beat/<rank>``           a counter each rank advances every few seconds while it lives
``end/<rank>``            how the rank stopped: complete, interrupted or failed, and its case in flight
========================= ===========================================================================
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from tembench.errors import TembenchError, UsageError, one_line

BEAT_S = 5.0  # a rank's heartbeat period
LOST_AFTER_S = 120.0  # a rank whose heartbeat stood still this long (and never said it ended) is lost
POLL_S = 0.2

_sweeps = 0  # sweeps this process has started (every rank starts them in the same order)
_node_cores: list[int] | None = None  # the cores this process could use before pin_cores narrowed them


class FollowedError(TembenchError):
    """Rank 0 stopped the sweep with an error that it reports; the other ranks exit with its code, quietly."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Launch:
    """This process's place in the launch: rank ``rank`` of ``world`` (``local_rank`` of ``local_world``
    on its node). A single process is rank 0 of 1 and has no store."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    store: Any = None
    prefix: str = "tembench"
    created: bool = False  # whether join() initialised the process group
    host: str = field(default_factory=socket.gethostname)
    _posted: int = 0
    _seen: dict = field(default_factory=dict)
    _beat: threading.Event | None = None

    @property
    def sharded(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def key(self, *parts) -> str:
        return "/".join([self.prefix, *map(str, parts)])

    # ---- rank 0 decides --------------------------------------------------------------------------

    def share(self, name: str, decide: Callable[[], Any]) -> Any:
        """What ``decide()`` returns on rank 0 (a JSON value), on every rank. An error rank 0 meets is raised
        there and, as :class:`FollowedError`, on the others."""
        if not self.sharded:
            return decide()
        key = self.key("share", name)
        if self.is_main:
            try:
                value = decide()
            except TembenchError as e:
                self.store.set(key, json.dumps({"error": str(e), "code": e.exit_code}))
                raise
            except BaseException as e:
                self.store.set(key, json.dumps({"error": one_line(e), "code": 1}))
                raise
            self.store.set(key, json.dumps({"ok": value}))
            return value
        self.wait(key)
        got = json.loads(self.store.get(key))
        if "error" in got:
            raise FollowedError(got["error"], got.get("code", 1))
        return got["ok"]

    def wait(self, key: str) -> None:
        """Until ``key`` exists (polling, so Ctrl-C and SIGTERM stop the wait)."""
        while not self.store.check([key]):
            time.sleep(POLL_S)

    # ---- every rank ------------------------------------------------------------------------------

    def claim(self, units: int) -> int | None:
        """The index of the next unclaimed unit of the plan, or None when every unit is claimed."""
        i = int(self.store.add(self.key("next"), 1)) - 1
        if i >= units:
            return None
        self.store.set(self.key("claim", self.rank), str(i))
        return i

    def hello(self, info: dict) -> None:
        self.store.set(self.key("hello", self.rank), json.dumps(info, default=str))

    def post(self, record: dict) -> None:
        """Hand a record to rank 0 (rank 0 keeps its own records itself)."""
        self.store.set(self.key("rec", self.rank, self._posted), json.dumps(record, default=str))
        self._posted += 1
        self.store.add(self.key("count", self.rank), 1)

    def finished_case(self) -> None:
        self.store.add(self.key("done"), 1)

    def end(self, status: str, in_flight: str | None = None, measured: int = 0) -> None:
        self.store.set(self.key("end", self.rank),
                       json.dumps({"status": status, "in_flight": in_flight, "measured": measured}))

    def start_heartbeat(self) -> None:
        if self.is_main or self._beat is not None:
            return
        self._beat = threading.Event()
        stop, key, store = self._beat, self.key("beat", self.rank), self.store

        def beat():
            while not stop.wait(BEAT_S):
                try:
                    store.add(key, 1)
                except Exception:  # noqa: BLE001 -- the store is gone: the launch is ending
                    return

        threading.Thread(target=beat, name="tembench-heartbeat", daemon=True).start()

    def stop_heartbeat(self) -> None:
        if self._beat is not None:
            self._beat.set()
            self._beat = None

    # ---- rank 0 watches the others -----------------------------------------------------------------

    def done(self) -> int:
        """Cases finished over all ranks."""
        return int(self.store.add(self.key("done"), 0))

    def collect(self) -> list[dict]:
        """The records the other ranks posted since the last call, rank by rank in the order posted."""
        out = []
        for r in range(1, self.world):
            n = int(self.store.add(self.key("count", r), 0))
            for seq in range(self._seen.get(r, 0), n):
                key = self.key("rec", r, seq)
                out.append(json.loads(self.store.get(key)))
                self.store.delete_key(key)
            self._seen[r] = max(n, self._seen.get(r, 0))
        return out

    def read(self, what: str, rank: int) -> dict | None:
        """The ``hello`` or ``end`` a rank posted, or None."""
        key = self.key(what, rank)
        return json.loads(self.store.get(key)) if self.store.check([key]) else None

    def claimed(self, rank: int) -> int | None:
        key = self.key("claim", rank)
        return int(self.store.get(key)) if self.store.check([key]) else None

    def beats(self, rank: int) -> int:
        return int(self.store.add(self.key("beat", rank), 0))

    def finish(self) -> None:
        """Leave the process group if :func:`join` created it."""
        self.stop_heartbeat()
        if self.created:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            self.created = False


def launched() -> bool:
    """Whether this process was started as one of several ranks (``WORLD_SIZE`` > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def join() -> Launch:
    """This process's :class:`Launch`: rank 0 of 1 unless started by torchrun (or another launcher that sets
    ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``), in
    which case it joins the gloo process group (or uses the one already initialised) and its store."""
    global _sweeps
    if not launched():
        return Launch()
    import torch.distributed as dist

    if not dist.is_available():
        raise UsageError("this torch has no torch.distributed: run the sweep as one process (without torchrun)")
    created = False
    if not dist.is_initialized():
        try:
            dist.init_process_group("gloo")
        except (ValueError, RuntimeError) as e:
            raise UsageError(f"cannot join the ranks of this launch: {one_line(e)} (start the sweep with torchrun, "
                             "which sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT)") from None
        created = True
    from torch.distributed.distributed_c10d import _get_default_store

    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    _sweeps += 1
    # torchrun keeps its store across restarts (--max-restarts): a restarted group starts a new prefix
    prefix = f"tembench/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/{_sweeps}"
    return Launch(rank, world, local_rank, local_world, _get_default_store(), prefix, created)


def largest_first(weights: list[float]) -> list[int]:
    """Indices of ``weights``, largest first (ties in their order): the order in which ranks claim units,
    so that the small units fill the gaps at the end (greedy list scheduling)."""
    return sorted(range(len(weights)), key=lambda i: -weights[i])


def rank_device(device: str, launch: Launch) -> str:
    """The device this rank measures on: ``cuda`` becomes ``cuda:LOCAL_RANK``; ``cpu`` stays ``cpu`` (see
    :func:`pin_cores`). One-line error when the node has fewer GPUs than ranks, or a sharded sweep names one
    GPU (``cuda:1``)."""
    if not launch.sharded or device == "cpu":
        return device
    if device != "cuda":
        raise UsageError(f"--device {device} in a sweep of {launch.world} ranks: give --device cuda, and each rank "
                         "measures on cuda:LOCAL_RANK")
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if launch.local_world > n:
        raise UsageError(f"{launch.local_world} ranks on {launch.host} but {n} CUDA device(s) visible: start at most "
                         f"{n} processes per node (--nproc-per-node {n}), one per GPU")
    torch.cuda.set_device(launch.local_rank)
    return f"cuda:{launch.local_rank}"


def pin_cores(launch: Launch, threads: int | None = None) -> list[int] | None:
    """Pin this rank to its share of the node's cores (the cores this process may use, split into
    ``LOCAL_WORLD_SIZE`` disjoint contiguous groups) and return them; None when not sharded or the platform
    cannot pin. One-line error when there are fewer cores than ranks, or ``threads`` exceeds a rank's share."""
    global _node_cores
    if not launch.sharded or not hasattr(os, "sched_setaffinity"):
        return None
    if _node_cores is None:
        _node_cores = sorted(os.sched_getaffinity(0))
    cores = _node_cores
    n = launch.local_world
    if n > len(cores):
        raise UsageError(f"{n} ranks on {launch.host} share {len(cores)} cores: start at most {len(cores)} CPU "
                         f"processes per node (--nproc-per-node {len(cores)})")
    mine = cores[launch.local_rank * len(cores) // n:(launch.local_rank + 1) * len(cores) // n]
    if threads is not None and threads > len(mine):
        raise UsageError(f"--threads {threads}, but each of the {n} ranks on {launch.host} has {len(mine)} of its "
                         f"{len(cores)} cores: give --threads {len(mine)} or fewer, or start fewer ranks")
    os.sched_setaffinity(0, mine)
    return mine
