"""How RayBackend sizes the actor pools: one GPU per actor where the cluster has GPUs, CPU
actors sharing a small CPU-only cluster so that every stage gets one (no Ray needed)."""

from __future__ import annotations

import pytest

from tag2text_zoo import ModelSpec, RayBackend
from tag2text_zoo.distributed.backend import backend_of
from tag2text_zoo.distributed.stages import DetectStage, StageSpec

GPU_CLUSTER = {"CPU": 64.0, "GPU": 8.0}


def _stage(**model) -> StageSpec:
    return StageSpec("detect", DetectStage, {"spec": ModelSpec("grounded", model)})


def test_one_gpu_per_actor_on_a_gpu_cluster():
    assert RayBackend().actor_resources(_stage(device="cuda"), 3, GPU_CLUSTER) == (1.0, 1.0, 8)
    assert RayBackend().actor_resources(_stage(), 3, GPU_CLUSTER) == (1.0, 1.0, 8)


def test_cpu_actors_where_the_model_asks_for_the_cpu_or_there_is_no_gpu():
    assert RayBackend().actor_resources(_stage(device="cpu"), 1, GPU_CLUSTER) == (0.0, 1.0, 64)
    # three stages on two CPUs: each actor takes two thirds of a CPU, so each stage gets one
    gpus, cpus, most = RayBackend().actor_resources(_stage(), 3, {"CPU": 2.0})
    assert (gpus, most) == (0.0, 3) and cpus == pytest.approx(2 / 3)


def test_explicit_sizes_win():
    backend = RayBackend(gpus_per_actor=0.5, cpus_per_actor=4)
    assert backend.actor_resources(_stage(), 2, GPU_CLUSTER) == (0.5, 4, 16)


def test_backend_names():
    assert backend_of("local") is None and backend_of("ray") == RayBackend()
    with pytest.raises(ValueError, match="'local', 'ray' or a RayBackend"):
        backend_of("dask")
