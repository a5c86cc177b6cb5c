"""The tagging + captioning engine: images in, :class:`TagResult` out, batched, on any device."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..defaults import TAGGER_BATCH_SIZE
from ..models.config import GenerationConfig, ModelConfig
from .beam_search import beam_search, sample
from .caption_decoder import CaptionDecoder
from .device import (
    Precision,
    autocast,
    images_per_pass,
    precast_for_autocast,
    resolve_precision,
)
from .heap import keeping_freed_memory
from .int8 import quantize_linear_layers
from .onednn_linear import use_onednn_products
from .preprocess import (
    ImageInput,
    ImageLoadError,
    image_to_tensor,
    load_image,
    loading_threads,
    normalize,
    resize_to_uint8,
)
from .tag_strings import parse_tags
from .tokenizer import TagTokenizer
from .vocabulary import OpenVocabulary, VocabularyEncoder, default_encoder

SpecifiedTags = str | Sequence[str] | None
_NO_USER_TAGS = {"", "none", "None"}  # the reference treats these strings as "no user tags"
_CAPTION_WINDOW = 4  # batches that predict() hands to predict_tensors() at once
# On the CPU, more images per encoder pass stop paying at about 4 (Swin-B, 2 cores): past that,
# every pass faults its larger intermediates in afresh and is slower per image (measured with
# Swin-B in float32: 0.47 s per image at 4, 0.72-0.78 at 8).
_CPU_IMAGES_PER_PASS = 4
# Linear layers that int8 leaves in float32: RAM's shared per-class scorer (one output per class,
# cheap), whose input error would go straight into every logit.
_FLOAT_LINEAR_LAYERS = ("fc",)


@dataclass
class TagResult:
    """One image's output.

    Attributes:
        tags: tag names in the reference's order (ascending class index; duplicates kept).
        scores: sigmoid confidence of each tag, same order.
        tag_indices: class index of each tag.
        caption: the caption, or None when not asked for (or the model has no captioner).
        tag_string: the reference's form, ``" | ".join(tags)``.
        caption_token_ids: generated ids, prompt included.
        tags_chinese: Chinese names of the same tags (RAM / RAM++), surrounding spaces removed.
        logits: float32 logit (before the sigmoid) of every class, in class-index order.
    """

    tags: list[str]
    scores: list[float]
    tag_indices: list[int]
    caption: str | None = None
    tag_string: str = ""
    caption_token_ids: list[int] | None = None
    tags_chinese: list[str] | None = None
    logits: np.ndarray | None = None


def _user_tag_string(tags: SpecifiedTags) -> str | None:
    """The reference's user-tag string ("cloud,sky" -> "cloud | sky"), or None for model tags.

    Empty and blank names are dropped (",,," is no tags, as ``["", " "]`` is).
    """
    if tags is None or (isinstance(tags, str) and tags in _NO_USER_TAGS):
        return None
    names = parse_tags(tags) if isinstance(tags, str) else [t.strip() for t in tags]
    return " | ".join(n for n in names if n) or None


def check_compilable(precision: Precision, compile_encoder: bool) -> None:
    """Raises ValueError for ``compile_encoder`` with int8 layers: the compiled encoder is
    built and tested for float weights only."""
    if compile_encoder and precision.int8:
        raise ValueError("compile_encoder does not support dtype 'int8'")


def check_open_set(config: ModelConfig) -> None:
    """Raises ValueError unless the model can take an open-set vocabulary (RAM, RAM++)."""
    if config.label_embed is None:
        raise ValueError(
            f"{config.model_type} has no CLIP label embeddings; open-set tagging needs "
            "a RAM or RAM++ model (e.g. 'ram-plus-swin-large-14m')"
        )


class Tagger:
    """Tag2Text-family tagger; see :func:`tag2text_zoo.load_tagger` to build one."""

    def __init__(
        self,
        model: torch.nn.Module,
        config: ModelConfig,
        tag_names: list[str],
        tokenizer: TagTokenizer | None,
        *,
        tag_names_chinese: list[str] | None = None,
        class_thresholds: Sequence[float] | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype = "float32",
        threshold: float | None = None,
        tag_thresholds: Mapping[str | int, float] | None = None,
        delete_tags: Sequence[str | int] | None = None,
        exif_transpose: bool = True,
        batch_size: int = TAGGER_BATCH_SIZE,
        generation: GenerationConfig | None = None,
        compile_encoder: bool = False,
    ) -> None:
        self.config = config
        self.tag_names = tag_names
        self.tag_names_chinese = tag_names_chinese
        self.tokenizer = tokenizer
        precision = resolve_precision(device, dtype, allow_float64=True, allow_int8=True)
        check_compilable(precision, compile_encoder)
        self.device, self.autocast_dtype = precision.device, precision.autocast
        self.model = model.to(self.device, precision.weights).eval()
        self._input_dtype = precision.weights
        if self.autocast_dtype is not None:
            precast_for_autocast(self.model, self.autocast_dtype)
        if precision.int8:
            quantize_linear_layers(self.model, keep=_FLOAT_LINEAR_LAYERS)
        use_onednn_products(self.model)  # its float32 linear layers on the CPU, if any
        # torch.compile is lazy: the first pass compiles (about a minute for Swin-B on 2 CPU
        # cores), passes of new sizes a few times more (then the batch is dynamic).
        self._compiled_encoder = (
            torch.compile(self.model.encode_image, dynamic=None) if compile_encoder else None
        )
        self.exif_transpose = exif_transpose
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self.generation = generation or config.generation
        self.thresholds = self._thresholds(
            self._base_thresholds(threshold, class_thresholds), tag_thresholds or {}
        )
        self._label_embed: tuple[torch.Tensor, torch.Tensor | None] | None = None
        deleted = torch.zeros(len(tag_names), dtype=torch.bool)
        delete = config.delete_tag_index if delete_tags is None else delete_tags
        deleted[self._indices(delete)] = True
        self.deleted = deleted.to(self.device)
        self._caption_decoders: dict[tuple, CaptionDecoder] = {}

    # -- configuration ----------------------------------------------------------------------
    def _indices(self, tags: Sequence[str | int]) -> list[int]:
        """Class indices of names (every class bearing the name) or indices."""
        out: list[int] = []
        for tag in tags:
            if isinstance(tag, int):
                if not 0 <= tag < len(self.tag_names):
                    raise ValueError(f"tag index {tag} out of range 0..{len(self.tag_names) - 1}")
                out.append(tag)
            else:
                hits = [i for i, name in enumerate(self.tag_names) if name.strip() == tag.strip()]
                if not hits:
                    raise ValueError(f"unknown tag {tag!r}")
                out.extend(hits)
        return out

    def _base_thresholds(
        self, threshold: float | None, class_thresholds: Sequence[float] | None
    ) -> torch.Tensor:
        """A threshold file's values (RAM), or the config's default and per-class values.

        A global ``threshold`` replaces the file's values or the config's default (the config's
        per-class values, Tag2Text's person/man/woman, still apply, as in the reference).
        """
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {threshold}")
        if class_thresholds is not None and threshold is None:
            return torch.tensor(class_thresholds, dtype=torch.float32)
        cfg = self.config.thresholds
        values = torch.full((len(self.tag_names),), cfg.default if threshold is None else threshold)
        if class_thresholds is None:
            for index, value in cfg.per_class.items():
                values[index] = value
        return values

    def _thresholds(self, base: torch.Tensor, overrides: Mapping[str | int, float]) -> torch.Tensor:
        """``base`` with per-tag ``overrides`` (by name or index) applied."""
        values = base.clone().float()
        for tag, value in overrides.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"threshold for {tag!r} must be within [0, 1], got {value}")
            values[self._indices([tag])] = value
        return values.to(self.device)

    def with_vocabulary(
        self,
        vocabulary: OpenVocabulary | Sequence[str],
        descriptions: Mapping[str, Sequence[str]] | None = None,
        *,
        encoder: VocabularyEncoder | None = None,
        threshold: float = 0.5,
        tag_thresholds: Mapping[str | int, float] | None = None,
    ) -> Tagger:
        """A tagger for an open-set vocabulary that shares this one's model (RAM / RAM++ only).

        Args:
            vocabulary: user tag names, or an :class:`~.vocabulary.OpenVocabulary` already
                embedded.
            descriptions: optional ``name -> [description, ...]`` (used by RAM++ as its
                per-class descriptions; RAM averages them).
            encoder: embeds the names; default: CLIP ViT-B/16's text encoder from the hub.
            threshold: decision threshold for every user tag (the reference's open-set value).
            tag_thresholds: per-tag overrides by user name.
        """
        check_open_set(self.config)
        if not isinstance(vocabulary, OpenVocabulary):
            if isinstance(vocabulary, str):
                raise ValueError("vocabulary must be a list of tag names, not one string")
            vocabulary = (encoder or default_encoder()).encode(vocabulary, descriptions)
        elif descriptions is not None:
            raise ValueError("descriptions are embedded with the names; pass them to encode()")
        per_class = self.config.label_embed.descriptions_per_class
        embed, mask = vocabulary.label_embeddings(descriptions=per_class is not None)
        if embed.shape[-1] != self.config.label_embed.shape[1]:
            raise ValueError(
                f"vocabulary embeddings are {embed.shape[-1]}-d; this model needs "
                f"{self.config.label_embed.shape[1]}-d (CLIP ViT-B/16 text embeddings)"
            )
        dtype = self._input_dtype
        other = copy.copy(self)
        other.tag_names = list(vocabulary.names)
        other.tag_names_chinese = None
        other.deleted = torch.zeros(len(other.tag_names), dtype=torch.bool, device=self.device)
        base = torch.full((len(other.tag_names),), threshold)
        other.thresholds = other._thresholds(base, tag_thresholds or {})
        other._label_embed = (
            embed.to(self.device, dtype),
            None if mask is None else mask.to(self.device),
        )
        return other

    @property
    def can_caption(self) -> bool:
        return self.tokenizer is not None and hasattr(self.model, "text_decoder")

    # -- inference ------------------------------------------------------------------------------
    def preprocess(self, image: ImageInput, index: int | None = None) -> torch.Tensor:
        """Loads and preprocesses one image to ``[3, S, S]`` float32 (CPU, picklable work)."""
        cfg = self.config
        img = load_image(image, exif_transpose=self.exif_transpose, index=index)
        return image_to_tensor(img, cfg.image_size, cfg.image_mean, cfg.image_std)

    def load_pixels(self, image: ImageInput, index: int | None = None) -> torch.Tensor:
        """Loads and resizes one image to ``[3, S, S]`` uint8, a quarter of :meth:`preprocess`'s
        bytes; the predict methods normalise it on the model's device (same values)."""
        img = load_image(image, exif_transpose=self.exif_transpose, index=index)
        return resize_to_uint8(img, self.config.image_size)

    def load_images(
        self, images: Sequence[ImageInput], first_index: int = 0
    ) -> list[torch.Tensor | ImageLoadError]:
        """:meth:`load_pixels` of every image, in :func:`loading_threads` threads (Pillow decodes
        and resizes without holding the GIL), in order; an unusable image gives its
        :class:`ImageLoadError` (named by path, or by ``first_index`` + its position) instead."""

        def load(i: int) -> torch.Tensor | ImageLoadError:
            try:
                return self.load_pixels(images[i], first_index + i)
            except ImageLoadError as err:
                return err

        with ThreadPoolExecutor(loading_threads()) as pool:
            return list(pool.map(load, range(len(images))))

    def _model_input(self, pixels: torch.Tensor) -> torch.Tensor:
        """A batch on the model's device in its input dtype; uint8 pixels normalised there."""
        pixels = pixels.to(self.device, non_blocking=True)
        if pixels.dtype == torch.uint8:
            pixels = normalize(pixels, self.config.image_mean, self.config.image_std)
        return pixels.to(self._input_dtype)

    def predict(
        self,
        images: Sequence[ImageInput] | ImageInput,
        specified_tags: Sequence[SpecifiedTags] | None = None,
        caption: bool = True,
    ) -> list[TagResult]:
        """Tags (and captions) images, ``batch_size`` at a time.

        Images are read ``4 * batch_size`` at a time, so that a finished caption's place in the
        decoder goes to another image of the next batches (see :meth:`predict_tensors`), with
        :meth:`load_images`; on a GPU the next images load while the model runs.

        Args:
            images: paths, PIL images or numpy arrays (or one of them).
            specified_tags: None, or one entry per image: None / "" for the model's own tags, a
                string like ``"cloud,sky"`` or a list of tag names to steer that image's caption.
            caption: also generate captions (Tag2Text only).

        Raises:
            ImageLoadError: an input is not a usable image (the message names it).
        """
        if not isinstance(images, Sequence) or isinstance(images, str):
            images = [images]  # type: ignore[list-item]
        self._check_request(len(images), specified_tags, caption)
        window = _CAPTION_WINDOW * self.batch_size
        results: list[TagResult] = []
        with ThreadPoolExecutor(1) as ahead:
            # On a GPU the next window loads while the model runs; on the CPU it waits (loading
            # would compete with the model's threads).
            overlap = self.device.type != "cpu"

            def load(start: int) -> Future:
                return ahead.submit(self.load_images, images[start : start + window], start)

            loading = load(0)
            for start in range(0, len(images), window):
                loaded = loading.result()
                errors = [x for x in loaded if isinstance(x, ImageLoadError)]
                if errors:  # before the next window starts loading: nothing to wait for
                    raise errors[0]
                following = start + window < len(images)
                if overlap and following:
                    loading = load(start + window)
                tags = None if specified_tags is None else specified_tags[start : start + window]
                results.extend(self.predict_tensors(torch.stack(loaded), tags, caption))
                if following and not overlap:
                    loading = load(start + window)
        return results

    def _check_request(self, n: int, specified_tags, caption: bool) -> None:
        if specified_tags is None:
            return
        if isinstance(specified_tags, str) or len(specified_tags) != n:
            raise ValueError("specified_tags must be None or a list with one entry per image")
        if not any(_user_tag_string(t) for t in specified_tags):
            return
        if not self.can_caption:
            raise ValueError(
                f"{self.config.model_type} models do not caption, so specified tags have no "
                "caption to steer; use a Tag2Text model (e.g. 'tag2text-swin-14m')"
            )
        if not caption:
            raise ValueError("specified tags only steer captions, and no caption was asked for")

    @torch.inference_mode()
    @keeping_freed_memory
    def tag_probabilities(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Sigmoid tag probabilities ``[B, num_tags]`` (float32, on the device) of a preprocessed
        batch ``[B, 3, S, S]``, ``batch_size`` images per encoder pass (at most 4 on the CPU)."""
        return torch.sigmoid(self._encode(pixel_values)[1].float())

    def _image_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """The image encoder's tokens, through the compiled encoder when there is one."""
        return (self._compiled_encoder or self.model.encode_image)(pixels)

    def _encode(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Image tokens ``[B, 1 + N, C]`` and tag logits ``[B, num_tags]``."""
        embeds, logits = [], []
        per_pass = images_per_pass(self.device, self.batch_size, _CPU_IMAGES_PER_PASS)
        for chunk in pixel_values.split(per_pass):
            pixels = self._model_input(chunk)
            with autocast(self.device, self.autocast_dtype):
                embeds.append(self._image_tokens(pixels))
                if self._label_embed is None:
                    logits.append(self.model.tag_logits(embeds[-1]))
                else:
                    logits.append(self.model.tag_logits(embeds[-1], *self._label_embed))
        return (embeds[0] if len(embeds) == 1 else torch.cat(embeds)), torch.cat(logits)

    @torch.inference_mode()
    @keeping_freed_memory
    def predict_tensors(
        self,
        pixel_values: torch.Tensor,
        specified_tags: Sequence[SpecifiedTags] | None = None,
        caption: bool = True,
    ) -> list[TagResult]:
        """Like :meth:`predict` for a batch ``[B, 3, S, S]`` of :meth:`preprocess` (float) or
        :meth:`load_pixels` (uint8, normalised on the model's device).

        Images go through the encoders ``batch_size`` at a time (at most 4 on the CPU, where
        larger passes are slower per image); captions are decoded for up to
        ``batch_size`` images at once, the next image starting as soon as one finishes.
        """
        self._check_request(len(pixel_values), specified_tags, caption)
        image_embeds, logits = self._encode(pixel_values)
        probs = torch.sigmoid(logits.float())
        on = (probs > self.thresholds) & ~self.deleted
        results = []
        for row_on, row_probs, row_logits in zip(on.cpu(), probs.cpu(), logits.float().cpu()):
            idx = row_on.nonzero().flatten().tolist()
            tags = [self.tag_names[i] for i in idx]
            chinese = None
            if self.tag_names_chinese is not None:
                chinese = [self.tag_names_chinese[i].strip() for i in idx]
            results.append(
                TagResult(
                    tags,
                    row_probs[idx].tolist(),
                    idx,
                    tag_string=" | ".join(tags),
                    tags_chinese=chinese,
                    logits=row_logits.numpy(),
                )
            )
        if caption and self.can_caption:
            users = [None] * len(results) if specified_tags is None else specified_tags
            strings = [_user_tag_string(u) or r.tag_string for u, r in zip(users, results)]
            for result, (text, ids) in zip(results, self._captions(image_embeds, strings)):
                result.caption, result.caption_token_ids = text, ids
        return results

    @torch.inference_mode()
    @keeping_freed_memory
    def embed_tensors(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[B, D]`` float32 L2-normalised image embeddings of a batch as
        :meth:`predict_tensors` takes it (returned on the CPU).

        The first image token the tagging head reads: for Tag2Text the mean of Swin's final
        (layer-normed) tokens (1,024-d for Swin-B); for RAM / RAM++ that token after the image
        projection (512-d), which RAM trains to match CLIP ViT-B/16's image embedding (an L1
        distillation loss).
        """
        pixels = self._model_input(pixel_values)
        with autocast(self.device, self.autocast_dtype):
            tokens = self._image_tokens(pixels)
        return F.normalize(tokens[:, 0].float(), dim=-1).cpu()

    def _captions(self, image_embeds: torch.Tensor, tag_strings: list[str]):
        assert self.tokenizer is not None
        ids, mask = self.tokenizer.encode_tags(tag_strings)
        ids, mask = ids.to(self.device), mask.to(self.device)

        def encode(images: list[int]) -> torch.Tensor:
            """Tag-encoder states of ``images`` (computed when they start decoding)."""
            index = torch.tensor(images, device=self.device)
            return self.model.encode_tags(ids[index], mask[index], image_embeds[index])

        gen, prompt = self.generation, list(self.config.prompt_ids)
        with autocast(self.device, self.autocast_dtype):
            decoder = self._caption_decoder(len(tag_strings), ids.shape[1]).start(encode)
            if gen.do_sample:
                generated = sample(decoder, prompt, len(tag_strings), gen)
            else:
                generated = beam_search(decoder, prompt, len(tag_strings), gen)
        skip = len(self.config.prompt)  # the reference slices characters, not tokens
        return [(self.tokenizer.decode(g.token_ids)[skip:], g.token_ids) for g in generated]

    def _caption_decoder(self, num_images: int, cross_length: int) -> CaptionDecoder:
        """A decoder with its cache, kept for the next batch (CUDA graphs are captured once)."""
        gen = self.generation
        capacity = num_images if gen.do_sample else self.batch_size
        rows = 1 if gen.do_sample else gen.num_beams
        key = (capacity, rows, gen.max_length, cross_length)
        if key not in self._caption_decoders:
            self._caption_decoders = {  # one for beam search, one for sampling at most
                k: d for k, d in self._caption_decoders.items() if k[1] != rows
            }
            self._caption_decoders[key] = CaptionDecoder(
                self.model.text_decoder,
                list(self.config.prompt_ids),
                capacity=capacity,
                rows_per_image=rows,
                max_length=gen.max_length,
                cross_length=cross_length,
                hidden_size=self.model.text_decoder.bert.embeddings.word_embeddings.embedding_dim,
                dtype=self.autocast_dtype or self._input_dtype,
                cuda_graphs=self.device.type == "cuda" and self.autocast_dtype is None,
            )
        return self._caption_decoders[key]
