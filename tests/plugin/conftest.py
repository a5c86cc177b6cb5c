"""Plugin test set-up: this repository as the only plugin, tiny fixture models as local models."""

from __future__ import annotations

from pathlib import Path

import pytest
from local_models import install_local_models

REPO = Path(__file__).resolve().parents[2]
URI = "@tag2text-zoo/tag2text"


@pytest.fixture
def plugins(tmp_path_factory, monkeypatch, grounded_dirs):
    """FiftyOne finds the plugin through ``plugins_dir``; catalogue names resolve offline."""
    import fiftyone as fo

    from tag2text_zoo.assets.download import LOCAL_MODELS_ENV

    root = tmp_path_factory.mktemp("plugins")
    (root / "tag2text").symlink_to(REPO, target_is_directory=True)
    local = install_local_models(tmp_path_factory.mktemp("local-models"), grounded_dirs)
    monkeypatch.setattr(fo.config, "plugins_dir", str(root))
    monkeypatch.setenv(LOCAL_MODELS_ENV, str(local))
    monkeypatch.setenv("TAG2TEXT_ZOO_HOME", str(tmp_path_factory.mktemp("empty-home")))
    return root


@pytest.fixture
def run_operator(plugins):
    """Runs an operator now, or queues it and then runs the queued operation, as the App would."""
    from fiftyone.operators.delegated import DelegatedOperationService
    from fiftyone.operators.executor import ExecutionRunState, execute_operator

    def run(name, dataset, params, delegated=False, **ctx):
        uri = f"{URI}/{name}"
        result = execute_operator(
            uri, dataset=dataset, params=params, request_delegation=delegated, **ctx
        )
        if not delegated:
            return result.result
        assert result.delegated
        service = DelegatedOperationService()
        queued = service.list_operations(operator=uri, run_state=ExecutionRunState.QUEUED)
        assert [str(op.id) for op in queued] == [str(result.result["id"])]
        service.execute_operation(queued[0])
        done = service.get(queued[0].id)
        assert done.run_state == ExecutionRunState.COMPLETED, done.result and done.result.error
        return done.result.result if done.result else None

    return run


@pytest.fixture
def run_in_app(plugins):
    """Runs an operator as the App's server does; returns what it streams to the App, as the
    ``{"operator_uri": ..., "params": ...}`` of each operator it triggers."""
    import asyncio

    from fiftyone.operators.executor import execute_or_delegate_operator

    def run(name, dataset, params):
        request = {"dataset_name": dataset.name, "params": params}
        result = asyncio.run(execute_or_delegate_operator(f"{URI}/{name}", request))
        assert result.is_generator, result.error
        return [message.body.to_json() for message in result.result]

    return run


@pytest.fixture
def resolve_form(plugins):
    """The form of an operator as the App's server resolves it (a real context: the dataset's
    execution store included); returns its properties by name."""
    import asyncio

    import fiftyone.operators.types as types
    from fiftyone.operators.executor import resolve_type
    from fiftyone.operators.registry import OperatorRegistry

    def resolve(name, dataset, params=None):
        request = {"dataset_name": dataset.name, "params": params or {}}
        prop = asyncio.run(resolve_type(OperatorRegistry(), f"{URI}/{name}", request))
        assert isinstance(prop, types.Property), getattr(prop, "error", prop)
        return prop.type.properties

    return resolve
