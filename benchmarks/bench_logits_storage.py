"""What ``store_logits=True`` costs per sample in FiftyOne's database, for 3,313 (Tag2Text's
unique names) and 4,585 (RAM) classes: tags only, full logits as float32 or float16
``Classifications.logits``, or only the top 50 (indices + float16 values).

python benchmarks/bench_logits_storage.py [--samples 2000]

Logits are synthetic (most classes strongly negative, about 12 above 0, like a tagger's); what
matters for size is that their low mantissa bits look random, which any real logits do.
Figures: the BSON document size (what every sample load reads and the App fetches) and the
collection's on-disk size after WiredTiger's compression, per sample. Writes JSON to
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path

import fiftyone as fo
import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
CLASSES = {"tag2text (3,313 names)": 3313, "ram (4,585)": 4585}
TOP_K = 50


def _logits(rng: np.random.Generator, n: int) -> np.ndarray:
    logits = rng.normal(-7.0, 2.5, n)
    on = rng.choice(n, 12, replace=False)
    logits[on] = rng.normal(2.0, 1.0, 12)
    return logits.astype(np.float32)


def _tags(logits: np.ndarray) -> fo.Classifications:
    on = np.flatnonzero(logits > 0)
    return fo.Classifications(
        classifications=[
            fo.Classification(label=f"tag {i}", confidence=float(1 / (1 + np.exp(-logits[i]))))
            for i in on
        ]
    )


def _variants(logits: np.ndarray) -> dict[str, fo.Classifications]:
    top = np.argsort(logits)[::-1][:TOP_K]
    variants = {"tags only": _tags(logits)}
    variants["full float32"] = _tags(logits)
    variants["full float32"].logits = logits
    variants["full float16 (chosen)"] = _tags(logits)
    variants["full float16 (chosen)"].logits = logits.astype(np.float16)
    variants[f"top {TOP_K} (uint16 + float16)"] = _tags(logits)
    variants[f"top {TOP_K} (uint16 + float16)"]["top_index"] = top.astype(np.uint16)
    variants[f"top {TOP_K} (uint16 + float16)"]["top_logit"] = logits[top].astype(np.float16)
    return variants


def _measure(name: str, labels: list[fo.Classifications]) -> dict[str, float]:
    dataset = fo.Dataset(f"bench-logits-{uuid.uuid4().hex[:8]}")
    try:
        dataset.add_samples(
            [fo.Sample(filepath=f"/img/{i}.jpg", tags_field=t) for i, t in enumerate(labels)],
            progress=False,
        )
        coll = dataset._sample_collection
        coll.database.client.admin.command("fsync")  # a checkpoint, so storageSize is real
        bson = coll.aggregate([{"$group": {"_id": None, "s": {"$avg": {"$bsonSize": "$$ROOT"}}}}])
        stats = coll.database.command("collStats", coll.name)
        return {
            "bson_bytes": round(next(bson)["s"]),
            "disk_bytes": round(stats["storageSize"] / len(labels)),
        }
    finally:
        dataset.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for model, n in CLASSES.items():
        per_sample = [_variants(_logits(rng, n)) for _ in range(args.samples)]
        for variant in per_sample[0]:
            sizes = _measure(variant, [v[variant] for v in per_sample])
            rows.append({"classes": model, "variant": variant, **sizes})
    print(f"{'classes':<24}{'variant':<30}{'BSON bytes':>12}{'disk bytes':>12}")
    for r in rows:
        print(f"{r['classes']:<24}{r['variant']:<30}{r['bson_bytes']:>12,}{r['disk_bytes']:>12,}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "bench_logits_storage.json"
    out.write_text(json.dumps({"samples": args.samples, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(RESULTS.parent.parent)}")


if __name__ == "__main__":
    main()
