"""Tag-string encoding and caption decoding with the reference's rules."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from tokenizers import BertWordPieceTokenizer

from ..models.config import TokenizerConfig

# transformers 4.25's `clean_up_tokenization`, in its order.
_CLEAN_UP = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)


class TagTokenizer:
    """BERT uncased WordPiece (``tokenizers``) with ``[DEC]`` / ``[ENC]`` added on top."""

    def __init__(self, vocab_file: str | Path, cfg: TokenizerConfig, max_tokens: int = 40) -> None:
        self._tok = BertWordPieceTokenizer(
            str(vocab_file),
            lowercase=cfg.do_lower_case,
            strip_accents=cfg.strip_accents,
            handle_chinese_chars=cfg.tokenize_chinese_chars,
        )
        self._tok.add_special_tokens(list(cfg.added_tokens))
        for token, expected in cfg.added_tokens.items():
            if self._tok.token_to_id(token) != expected:
                raise ValueError(
                    f"{vocab_file}: {token} got id {self._tok.token_to_id(token)}, "
                    f"expected {expected} (wrong vocabulary file?)"
                )
        self.cfg = cfg
        self.max_tokens = max_tokens
        self._special = {
            cfg.pad_token_id,
            cfg.unk_token_id,
            cfg.cls_token_id,
            cfg.sep_token_id,
            cfg.mask_token_id,
            *cfg.added_tokens.values(),
        }

    def encode_tags(self, tag_strings: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``[CLS] pieces [SEP]`` truncated/padded to ``max_tokens``, first id set to ``[ENC]``.

        Returns:
            ``input_ids`` and ``attention_mask``, both int64 ``[B, max_tokens]``.
        """
        self._tok.enable_truncation(self.max_tokens)
        self._tok.enable_padding(length=self.max_tokens, pad_id=self.cfg.pad_token_id)
        encodings = self._tok.encode_batch(list(tag_strings))
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
        ids[:, 0] = self.cfg.enc_token_id
        return ids, mask

    def decode(self, ids: Sequence[int]) -> str:
        """``decode(ids, skip_special_tokens=True)`` as transformers 4.25 did it."""
        tokens = [self._tok.id_to_token(i) for i in ids if i not in self._special]
        text = " ".join(tokens).replace(" ##", "").strip()
        for old, new in _CLEAN_UP:
            text = text.replace(old, new)
        return text
