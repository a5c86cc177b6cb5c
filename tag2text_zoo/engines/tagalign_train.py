"""Training the TagAlign projector on (image, caption, tags) samples over a frozen CLIP.

Two losses, as in the paper: a symmetric contrastive loss between the pooled dense embedding and
the caption embedding, and a soft-target multi-tag cross-entropy against a tag vocabulary embedded
by the CLIP text encoder. Checkpoints use the TagAlign layout (``model``, ``optimizer``,
``lr_scheduler``, ``scaler``, ``step``, ``config``, ``metrics``; plain data only, so
:func:`~tag2text_zoo.models.tagalign.load_tagalign_projector` reads them with
``weights_only=True``) and training resumes from the latest one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2
from tqdm.auto import tqdm
from transformers import CLIPModel, CLIPTokenizer

from ..models.tagalign import (
    TagAlignProjector,
    patch_grid,
    projector_state_dict,
    surgery_tokens,
    tagalign_state_dict,
)
from .dense import CLASS_TEMPLATE
from .dense_windows import IMAGENET_MEAN_255, IMAGENET_STD_255
from .device import Precision, autocast, resolve_device, resolve_precision
from .preprocess import ImageInput, load_image

LATEST = "checkpoint_latest.pth"


@dataclass(frozen=True)
class TrainSample:
    """One training image with its caption and tags (tags outside the vocabulary are ignored)."""

    image: ImageInput
    caption: str
    tags: Sequence[str]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters (plain values: stored in checkpoints)."""

    steps: int = 10_000
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 0.05
    warmup_steps: int = 500
    image_size: int = 224
    tag_loss_weight: float = 1.0
    template: str = CLASS_TEMPLATE
    checkpoint_every: int = 1000
    seed: int = 0
    num_workers: int = 0
    vocabulary: list[str] = field(default_factory=list)


@dataclass
class TrainResult:
    """What a training run did.

    Attributes:
        losses: per-step total losses of this run (resumed steps excluded).
        checkpoint: the latest checkpoint.
        samples: the number of training samples.
        vocabulary: the tags classified.
    """

    losses: list[float]
    checkpoint: Path
    samples: int
    vocabulary: list[str]


class TagAlignLoss(nn.Module):
    """Contrastive image-caption loss + soft-target multi-tag cross-entropy.

    Arguments:
        label_embedding: [V, E] normalised text embeddings of the tag vocabulary (frozen).
        tag_loss_weight: weight of the tag loss.
    """

    def __init__(self, label_embedding: torch.Tensor, tag_loss_weight: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("label_embedding", label_embedding)
        init = math.log(1 / 0.07)
        self.cl_logit_scale = nn.Parameter(torch.tensor(init))
        self.ce_logit_scale = nn.Parameter(torch.tensor(init))
        self.tag_loss_weight = tag_loss_weight

    def forward(
        self, image: torch.Tensor, caption: torch.Tensor, tags: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Arguments: BxE normalised image and caption embeddings, BxV multi-hot tags.

        Returns: (contrastive loss, tag loss).
        """
        logits = self.cl_logit_scale.clamp(max=math.log(100)).exp() * image @ caption.t()
        target = torch.arange(len(image), device=image.device)
        contrastive = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
        tag_logits = (
            self.ce_logit_scale.clamp(max=math.log(100)).exp() * image @ self.label_embedding.t()
        )
        soft = tags / tags.sum(-1, keepdim=True).clamp(min=1)
        tag_loss = -(soft * tag_logits.log_softmax(-1)).sum(-1)
        has_tags = (tags.sum(-1) > 0).float()
        tag_loss = (tag_loss * has_tags).sum() / has_tags.sum().clamp(min=1)
        return contrastive, self.tag_loss_weight * tag_loss


class _Samples(torch.utils.data.Dataset):
    def __init__(self, samples: Sequence[TrainSample], vocabulary: list[str], size: int) -> None:
        self.samples = samples
        self.index = {t: i for i, t in enumerate(vocabulary)}
        self.transform = v2.Compose(
            [
                v2.PILToTensor(),
                v2.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True),
                v2.RandomHorizontalFlip(),
                v2.ToDtype(torch.float32),
                v2.Normalize(IMAGENET_MEAN_255, IMAGENET_STD_255),
            ]
        )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str, torch.Tensor]:
        sample = self.samples[i]
        tags = torch.zeros(len(self.index))
        for tag in sample.tags:
            if tag in self.index:
                tags[self.index[tag]] = 1
        return self.transform(load_image(sample.image, index=i)), sample.caption, tags


def embed_texts(
    clip: CLIPModel, tokenizer: CLIPTokenizer, texts: Sequence[str], batch_size: int = 256
) -> torch.Tensor:
    """[N, E] normalised CLIP text embeddings (EOT token, ``text_projection``)."""
    device = clip.text_projection.weight.device
    out = []
    for start in range(0, len(texts), batch_size):
        tokens = tokenizer(
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=77,
            return_tensors="pt",
        ).to(device)
        with torch.no_grad():
            pooled = clip.text_model(**tokens).pooler_output
            out.append(F.normalize(clip.text_projection(pooled).float(), dim=-1))
    return torch.cat(out)


def _lr_lambda(config: TrainConfig):
    def schedule(step: int) -> float:  # linear warm-up, cosine decay
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(config.steps - config.warmup_steps, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return schedule


@dataclass
class _Training:
    """Everything a step updates and a checkpoint holds."""

    projector: TagAlignProjector
    loss_fn: TagAlignLoss
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    step: int = 0

    def save(self, path: Path, config: TrainConfig, loss: float) -> None:
        """Writes a TagAlign-format checkpoint atomically."""
        model = tagalign_state_dict(self.projector)
        model["label_embedding"] = self.loss_fn.label_embedding.detach().cpu()
        model["cl_loss.logit_scale"] = self.loss_fn.cl_logit_scale.detach().cpu()
        model["ce_loss.logit_scale"] = self.loss_fn.ce_logit_scale.detach().cpu()
        checkpoint = {
            "model": model,
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "config": asdict(config),
            "metrics": {"loss": loss},
        }
        tmp = path.with_suffix(".tmp")
        torch.save(checkpoint, tmp)
        os.replace(tmp, path)

    def resume(self, path: Path, config: TrainConfig) -> None:
        """Continues from the checkpoint at ``path``, if there is one.

        Raises:
            ValueError: it was trained on another tag vocabulary.
        """
        if not path.exists():
            return
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if checkpoint.get("config", {}).get("vocabulary") != list(config.vocabulary):
            raise ValueError(f"{path} was trained on another tag vocabulary; use a new output dir")
        self.projector.load_state_dict(projector_state_dict(checkpoint))
        with torch.no_grad():
            self.loss_fn.cl_logit_scale.copy_(checkpoint["model"]["cl_loss.logit_scale"])
            self.loss_fn.ce_logit_scale.copy_(checkpoint["model"]["ce_loss.logit_scale"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["lr_scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        self.step = int(checkpoint["step"])


def _build(
    clip: CLIPModel, tokenizer: CLIPTokenizer, config: TrainConfig, precision: Precision
) -> _Training:
    """A fresh projector (seeded), its loss over the embedded vocabulary, and the optimiser."""
    torch.manual_seed(config.seed)
    device = precision.device
    projector = TagAlignProjector.from_clip(clip.vision_model, clip.visual_projection).to(device)
    labels = embed_texts(clip, tokenizer, [config.template.format(t) for t in config.vocabulary])
    loss_fn = TagAlignLoss(labels, config.tag_loss_weight).to(device)
    params = list(projector.parameters()) + [loss_fn.cl_logit_scale, loss_fn.ce_logit_scale]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config))
    scaler = torch.amp.GradScaler(device.type, enabled=precision.autocast == torch.float16)
    return _Training(projector, loss_fn, optimizer, scheduler, scaler)


def _checkpoints(step: int, config: TrainConfig, out: Path) -> list[Path]:
    """Where to save after ``step``: the latest every ``checkpoint_every`` steps and at the end,
    a numbered copy every ``checkpoint_every`` steps."""
    every = step % config.checkpoint_every == 0
    latest = [out / LATEST] if every or step == config.steps else []
    return latest + ([out / f"checkpoint_{step}.pth"] if every else [])


def _step(
    training: _Training, clip: CLIPModel, tokenizer: CLIPTokenizer, batch, precision: Precision
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on a batch; returns (contrastive loss, tag loss)."""
    pixels, captions, tags = batch
    device = precision.device
    with autocast(device, precision.autocast):
        with torch.no_grad():
            patch = clip.config.vision_config.patch_size
            grid = patch_grid(
                surgery_tokens(clip.vision_model, pixels.to(device)),
                *(s // patch for s in pixels.shape[2:]),
            )
            caption = embed_texts(clip, tokenizer, captions)
        image = F.normalize(training.projector(grid).float().mean((2, 3)), dim=-1)
        contrastive, tag_loss = training.loss_fn(image, caption, tags.to(device))
    training.optimizer.zero_grad(set_to_none=True)
    training.scaler.scale(contrastive + tag_loss).backward()
    training.scaler.step(training.optimizer)
    training.scaler.update()
    training.scheduler.step()
    training.step += 1
    return contrastive, tag_loss


def train_projector(
    clip: CLIPModel,
    tokenizer: CLIPTokenizer,
    samples: Sequence[TrainSample],
    output_dir: str | os.PathLike,
    config: TrainConfig,
    *,
    device: str | torch.device | None = None,
    dtype: str = "auto",
    progress: bool = True,
) -> TrainResult:
    """Trains a TagAlign projector; resumes from ``output_dir/checkpoint_latest.pth`` if present.

    Args:
        clip, tokenizer: the frozen CLIP and its tokenizer.
        samples: training samples; ``config.vocabulary`` lists the tags to classify.
        output_dir: where ``checkpoint_latest.pth`` and ``checkpoint_{step}.pth`` go.
        config: hyper-parameters.
        device: default CUDA when available.
        dtype: autocast dtype: ``"auto"`` (bfloat16 on CUDA, float32 elsewhere), ``"float32"``,
            ``"bfloat16"`` or ``"float16"`` (with loss scaling).
        progress: show a progress bar.
    """
    if not config.vocabulary:
        raise ValueError("config.vocabulary is empty: give the tags to train on")
    if not samples:
        raise ValueError("no training samples")
    if dtype == "auto":
        dtype = "bfloat16" if resolve_device(device).type == "cuda" else "float32"
    precision = resolve_precision(device, dtype)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    clip = clip.eval().requires_grad_(False).to(precision.device)
    training = _build(clip, tokenizer, config, precision)
    training.resume(out / LATEST, config)

    data = _Samples(samples, config.vocabulary, config.image_size)
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=len(data) >= config.batch_size,
        num_workers=config.num_workers,
        generator=torch.Generator().manual_seed(config.seed + training.step),
    )
    losses: list[float] = []
    bar = tqdm(total=config.steps, initial=training.step, disable=not progress, desc="tagalign")
    training.projector.train()
    while training.step < config.steps:
        for batch in loader:
            contrastive, tag_loss = _step(training, clip, tokenizer, batch, precision)
            losses.append((contrastive + tag_loss).item())
            bar.update(1)
            bar.set_postfix(
                loss=f"{losses[-1]:.4f}",
                cl=f"{contrastive.item():.3f}",
                tag=f"{tag_loss.item():.3f}",
            )
            for path in _checkpoints(training.step, config, out):
                training.save(path, config, losses[-1])
            if training.step >= config.steps:
                break
    bar.close()
    return TrainResult(losses, out / LATEST, len(samples), list(config.vocabulary))
