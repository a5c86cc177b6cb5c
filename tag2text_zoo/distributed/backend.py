"""Where and how a run goes on Ray: :class:`RayBackend`, and the Ray Data pipeline of stages.

Each stage is an actor pool over one model: one GPU per actor on a cluster with GPUs, CPU actors
otherwise. Pools autoscale from one actor up to what the cluster holds, so a slow stage (SAM
behind Grounding DINO, say) gets more actors; :attr:`RayBackend.actors` fixes a stage's pool.
A dead actor is restarted and its batches retried, a bounded number of times
(:attr:`RayBackend.max_restarts`, :attr:`RayBackend.max_task_retries`). The actors get the
driver's ``TAG2TEXT_ZOO_*`` and ``HF_*`` settings (:data:`FORWARDED_ENV`).

Ray is an optional dependency (``pip install "tag2text-zoo[ray]"``), imported on first use.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .stages import StageSpec

INSTALL = 'the Ray backend needs Ray: pip install "tag2text-zoo[ray]"'

# Settings the workers read (model folders, offline mode, the image-size limit), passed on from
# the driver's environment so that every actor uses the driver's: point them at shared paths.
FORWARDED_ENV = ("TAG2TEXT_ZOO_", "HF_")


def worker_env() -> dict[str, str]:
    """The driver's environment variables that the workers get (:data:`FORWARDED_ENV`)."""
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}


def import_ray() -> Any:
    """``ray`` (with Ray Data), or an ImportError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data ships with the "data" extra only
    except ImportError as err:
        raise ImportError(INSTALL) from err
    return ray


@dataclass
class RayBackend:
    """Run on Ray: ``label_samples(view, spec, "t2t", backend=RayBackend("auto"))``;
    ``backend="ray"`` is ``RayBackend()``.

    Attributes:
        address: the cluster to join (``"auto"``, ``"HEAD:6379"``, ``"ray://HEAD:10001"``).
            None: the Ray this process already joined, else ``$RAY_ADDRESS``, else a new
            local Ray on this machine.
        actors: actors of a stage (``"tag"``, ``"detect"``, ``"mask"``, ``"dense"``): a fixed
            number, or ``(min, max)``; others autoscale from 1 to what the cluster holds.
        gpus_per_actor: None: 1 on a cluster with GPUs (0 where the model spec's ``device``
            is ``"cpu"``), else 0.
        cpus_per_actor: None: 1 with GPUs; on a CPU-only cluster, 1 or less so that every
            stage of the pipeline gets an actor.
        max_restarts: restarts of an actor that died (then the run stops; a re-run resumes).
        max_task_retries: retries of a batch whose actor died.
        runtime_env: the workers' Ray runtime environment (``env_vars``, ``pip``, ...), when
            this process starts or joins Ray.
        samples_per_pass: samples streamed per Ray Data pass; the driver holds their rows
            (about half a kilobyte each), and the actors restart between passes.
    """

    address: str | None = None
    actors: Mapping[str, int | tuple[int, int]] = field(default_factory=dict)
    gpus_per_actor: float | None = None
    cpus_per_actor: float | None = None
    max_restarts: int = 3
    max_task_retries: int = 3
    runtime_env: Mapping[str, Any] | None = None
    samples_per_pass: int = 200_000

    def connect(self) -> Any:
        """Joins (or starts) Ray; returns the ``ray`` module."""
        ray = import_ray()
        if not ray.is_initialized():
            env = dict(self.runtime_env) if self.runtime_env else None
            ray.init(address=self.address, runtime_env=env, log_to_driver=False)
        return ray

    def pipeline(self, rows: Sequence[dict], stages: Sequence[StageSpec], batch_size: int) -> Any:
        """A Ray Data dataset: ``rows`` (about ``batch_size`` a block) through each stage."""
        ray = self.connect()
        ray.data.DataContext.get_current().enable_progress_bars = False
        blocks = max(1, math.ceil(len(rows) / batch_size))
        data = ray.data.from_items(list(rows), override_num_blocks=blocks)
        resources = ray.cluster_resources()
        for spec in stages:
            gpus, cpus, most = self.actor_resources(spec, len(stages), resources)
            with warnings.catch_warnings():
                # Ray 2.60 deprecates these keywords but has no other way to bound the retries
                # (its default: restart and retry forever).
                warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated")
                data = data.map_batches(
                    spec.stage,
                    fn_constructor_kwargs=spec.kwargs,
                    batch_size=batch_size,
                    batch_format="numpy",
                    compute=self._pool(ray, spec.name, most),
                    num_gpus=gpus,
                    num_cpus=cpus,
                    runtime_env={"env_vars": worker_env()},
                    max_restarts=self.max_restarts,
                    max_task_retries=self.max_task_retries,
                )
        return data

    def _pool(self, ray: Any, stage: str, most: int) -> Any:
        size = self.actors.get(stage)
        if size is None:
            return ray.data.ActorPoolStrategy(min_size=1, max_size=most)
        if isinstance(size, int):
            return ray.data.ActorPoolStrategy(size=size)
        return ray.data.ActorPoolStrategy(min_size=size[0], max_size=size[1])

    def actor_resources(
        self, spec: StageSpec, stages: int, resources: Mapping[str, float]
    ) -> tuple[float, float, int]:
        """GPUs and CPUs of each actor of ``spec``'s pool, and the most actors the cluster
        (``ray.cluster_resources()``) holds for it, for a pipeline of ``stages`` stages."""
        gpus = self.gpus_per_actor
        if gpus is None:
            on_cpu = str(spec.model.kwargs.get("device") or "").startswith("cpu")
            gpus = 1.0 if resources.get("GPU", 0) and not on_cpu else 0.0
        cpus = self.cpus_per_actor
        if cpus is None:
            cpus = 1.0 if gpus else min(1.0, resources.get("CPU", 1) / stages)
        most = resources.get("GPU", 0) // gpus if gpus else resources.get("CPU", 1) // cpus
        return gpus, cpus, max(1, int(most))


def backend_of(backend: str | RayBackend) -> RayBackend | None:
    """The Ray backend a runner's ``backend=`` asks for, or None for the local run loop.

    Raises:
        ValueError: an unknown backend name.
    """
    if isinstance(backend, RayBackend):
        return backend
    if backend == "local":
        return None
    if backend == "ray":
        return RayBackend()
    raise ValueError(f"backend must be 'local', 'ray' or a RayBackend, not {backend!r}")
