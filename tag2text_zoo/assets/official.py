"""The official SAM, SAM-HQ, SAM 2 and Grounding DINO files that Grounded-SAM users have, by name.

A detector or segmenter argument naming one of :data:`OFFICIAL_CHECKPOINTS` is downloaded
(resumable, checksummed, clear when offline) into ``<models dir>/<name>/``; one that is a file
path is used as it is. Either way the engines convert it on first load
(:func:`tag2text_zoo.models.official_checkpoint.load_official_model`). Sizes and sha256 are the
ones published for these files (``tests/data/reference/official/README.md``), not re-measured.
"""

from __future__ import annotations

from pathlib import Path

from .catalogue import BERT_VOCAB, ModelSpec, RemoteFile
from .download import (
    DownloadError,
    default_models_dir,
    ensure_model_dir,
    fetch_file,
    local_model_dir,
)
from .hub import hub_model_problem, online

_SAM = "https://dl.fbaipublicfiles.com/segment_anything"
_SAM2 = "https://dl.fbaipublicfiles.com/segment_anything_2/092824"
_GDINO = "https://github.com/IDEA-Research/GroundingDINO/releases/download"
_SOURCES = {
    "sam": "https://github.com/facebookresearch/segment-anything",
    "sam_hq": "https://github.com/SysCV/sam-hq",
    "sam2": "https://github.com/facebookresearch/sam2",
    "grounding-dino": "https://github.com/IDEA-Research/GroundingDINO",
}


def _official(name: str, family: str, description: str, file: RemoteFile) -> ModelSpec:
    extra = (BERT_VOCAB,) if family == "grounding-dino" else ()  # the detector's tokenizer
    return ModelSpec(
        name=name,
        description=description,
        model_type=family,
        files=(file, *extra),
        config={"model_type": family, "checkpoint": {"file": file.filename}},
        license="Apache-2.0",
        source=_SOURCES[family],
        tags=("detection" if family == "grounding-dino" else "segmentation", "grounded"),
    )


def _file(url: str, size: int, sha256: str, **hub: str) -> RemoteFile:
    return RemoteFile(url.rsplit("/", 1)[1], url, size, sha256, **hub)


OFFICIAL_CHECKPOINTS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _official(
            "sam-vit-b",
            "sam",
            "SAM ViT-B (segment-anything)",
            _file(
                f"{_SAM}/sam_vit_b_01ec64.pth",
                375_042_383,
                "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
            ),
        ),
        _official(
            "sam-vit-l",
            "sam",
            "SAM ViT-L (segment-anything)",
            _file(
                f"{_SAM}/sam_vit_l_0b3195.pth",
                1_249_524_607,
                "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
            ),
        ),
        _official(
            "sam-vit-h",
            "sam",
            "SAM ViT-H (segment-anything)",
            _file(
                f"{_SAM}/sam_vit_h_4b8939.pth",
                2_564_550_879,
                "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
            ),
        ),
        _official(
            "sam-hq-vit-h",
            "sam_hq",
            "HQ-SAM ViT-H (segment-anything-hq)",
            _file(
                "https://huggingface.co/lkeab/hq-sam/resolve/main/sam_hq_vit_h.pth",
                2_570_940_653,
                "a7ac14a085326d9fa6199c8c698c4f0e7280afdbb974d2c4660ec60877b45e35",
                hf_repo="lkeab/hq-sam",
                hf_filename="sam_hq_vit_h.pth",
            ),
        ),
        _official(
            "sam2.1-hiera-tiny",
            "sam2",
            "SAM 2.1 Hiera-T (sam2)",
            _file(
                f"{_SAM2}/sam2.1_hiera_tiny.pt",
                156_008_466,
                "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69",
            ),
        ),
        _official(
            "sam2.1-hiera-small",
            "sam2",
            "SAM 2.1 Hiera-S (sam2)",
            _file(
                f"{_SAM2}/sam2.1_hiera_small.pt",
                184_416_285,
                "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38",
            ),
        ),
        _official(
            "sam2.1-hiera-base-plus",
            "sam2",
            "SAM 2.1 Hiera-B+ (sam2)",
            _file(
                f"{_SAM2}/sam2.1_hiera_base_plus.pt",
                323_606_802,
                "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5",
            ),
        ),
        _official(
            "sam2.1-hiera-large",
            "sam2",
            "SAM 2.1 Hiera-L (sam2)",
            _file(
                f"{_SAM2}/sam2.1_hiera_large.pt",
                898_083_611,
                "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318",
            ),
        ),
        _official(
            "groundingdino-swint-ogc",
            "grounding-dino",
            "Grounding DINO Swin-T, trained on O365, GoldG, Cap4M (GroundingDINO)",
            _file(
                f"{_GDINO}/v0.1.0-alpha/groundingdino_swint_ogc.pth",
                693_997_677,
                "3b3ca2563c77c69f651d7bd133e97139c186df06231157a64c507099c52bc799",
            ),
        ),
        _official(
            "groundingdino-swinb-cogcoor",
            "grounding-dino",
            "Grounding DINO Swin-B, trained on COCO, O365, GoldG, Cap4M, OpenImage, ODinW, RefCOCO",
            _file(
                f"{_GDINO}/v0.1.0-alpha2/groundingdino_swinb_cogcoor.pth",
                938_057_991,
                "46270f7a822e6906b655b729c90613e48929d0f2bb8b9b76fd10a856f3ac6ab7",
            ),
        ),
    )
}


def trusted_official_sha256() -> set[str]:
    """Digests of the catalogued files: only these may be unpickled beyond ``weights_only``."""
    return {f.sha256 for spec in OFFICIAL_CHECKPOINTS.values() for f in spec.files}


def official_checkpoint(
    name_or_path: str | Path, models_dir: str | Path | None = None
) -> Path | None:
    """The official checkpoint file an argument stands for, or None (a hub id or a folder).

    A path to a file is returned as it is; a name of :data:`OFFICIAL_CHECKPOINTS` is taken from
    ``$TAG2TEXT_ZOO_LOCAL_MODELS/<name>/`` or downloaded into ``<models_dir>/<name>/`` first.

    Raises:
        DownloadError: the named files could not be downloaded (lists them and their URLs).
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    spec = OFFICIAL_CHECKPOINTS.get(str(name_or_path))
    if spec is None:
        return None
    folder = local_model_dir(spec.name) or ensure_model_dir(spec, models_dir)
    return folder / spec.files[0].filename


def installed_official_checkpoint(name: str, models_dir: str | Path | None = None) -> Path | None:
    """The file of catalogue entry ``name`` (or its converted copy) if it is on this machine."""
    spec = OFFICIAL_CHECKPOINTS[name]
    root = Path(models_dir or default_models_dir()).expanduser()
    for folder in (local_model_dir(name), root / name):
        file = None if folder is None else folder / spec.files[0].filename
        if file is not None and (file.is_file() or file.with_suffix(".safetensors").is_file()):
            return file
    return None


def weights_problem(value: str) -> str | None:
    """Why a detector or segmenter argument cannot be loaded now, or None: an official checkpoint
    file, a catalogue name (downloaded, or downloadable now), else a hub id or folder."""
    if Path(value).expanduser().is_file():
        return None  # an official checkpoint file, recognised and converted when loaded
    if value not in OFFICIAL_CHECKPOINTS:
        return hub_model_problem(value)
    if installed_official_checkpoint(value) or online():
        return None
    folder = default_models_dir() / value
    return f"{value} is not downloaded and there is no network: put its files in {folder}"


def bert_vocab_for(checkpoint: Path, models_dir: str | Path | None = None) -> Path:
    """The BERT vocabulary of an official Grounding DINO file: ``vocab.txt`` beside it, else
    the catalogue's copy (downloaded into ``<models_dir>/bert-base-uncased/`` once).

    Raises:
        DownloadError: it is in neither place and cannot be downloaded; says where to put it.
    """
    beside = checkpoint.parent / BERT_VOCAB.filename
    if beside.is_file():
        return beside
    folder = Path(models_dir or default_models_dir()).expanduser() / "bert-base-uncased"
    vocab = folder / BERT_VOCAB.filename
    if not vocab.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fetch_file(BERT_VOCAB, folder)
        except Exception as err:  # noqa: BLE001 - offline, HTTP error, checksum: all reported
            raise DownloadError(
                f"Grounding DINO needs the bert-base-uncased vocabulary {BERT_VOCAB.filename} "
                f"({BERT_VOCAB.size:,} bytes, sha256 {BERT_VOCAB.sha256}) and could not download "
                f"it from {BERT_VOCAB.url} ({type(err).__name__}: {err}). Put it next to "
                f"{checkpoint} or in {folder}/, then run again."
            ) from err
    return vocab
