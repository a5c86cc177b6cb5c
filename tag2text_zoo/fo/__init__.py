"""FiftyOne adapters, by capability, over one shared base.

- :mod:`.base`: the item loader (image + tags, load-or-skip), the tag reader and parser, the
  ``fom.Model`` base with its failure bookkeeping, the run loop (skip-existing rule, batches,
  writes by sample id), the run report and mask targets.
- :mod:`.tagging`, :mod:`.grounded`, :mod:`.dense`: per capability, ``model.py`` (the adapter),
  ``labels.py`` (engine result -> FiftyOne labels), ``run.py`` (the runner) and, where there is
  one, ``evaluation.py``.

The public names are re-exported by :mod:`tag2text_zoo`.
"""
