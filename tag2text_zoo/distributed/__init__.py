"""Running the three capabilities on a Ray cluster (``backend="ray"`` of the runners).

The driver (``fo/base/ray_run.py``) reads sample ids, file paths and prompts from FiftyOne,
streams them through Ray Data and writes the labels back by sample id; the workers run
:mod:`.stages` (one model per actor) and need neither FiftyOne nor the database.

- :mod:`.stages`: the worker side: stages over batches of plain rows, results as plain dicts.
- :mod:`.backend`: :class:`RayBackend` (where and how to run) and the Ray Data pipeline.
"""
