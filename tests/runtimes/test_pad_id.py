"""The pad-token fallback, written once in tasks/runtimes/base.py: a pad id of 0 stays 0."""

from __future__ import annotations

import pytest

from tasks.compression import _train
from tasks.errors import GreenlaneError
from tasks.runtimes.base import load_tokenizer, pad_id


@pytest.fixture
def tokenizer(smol_dir):
    return load_tokenizer(smol_dir)  # SmolLM2's: pad = eos = <|im_end|>, and <|endoftext|> is id 0


def test_pad_id_zero_is_kept_not_replaced_by_eos(tokenizer):
    tokenizer.pad_token = tokenizer.convert_ids_to_tokens(0)
    assert tokenizer.pad_token_id == 0 != tokenizer.eos_token_id
    assert pad_id(tokenizer) == 0  # `pad or eos` would have given the EOS id here
    assert _train._pad_id(tokenizer) == 0  # the training loops pad with the same helper


def test_pad_id_falls_back_to_eos_only_when_missing(tokenizer):
    assert pad_id(tokenizer) == tokenizer.pad_token_id
    tokenizer.pad_token = None
    assert tokenizer.pad_token_id is None and pad_id(tokenizer) == tokenizer.eos_token_id
    tokenizer.eos_token = None
    with pytest.raises(GreenlaneError, match="neither a pad nor an end-of-sequence token"):
        pad_id(tokenizer)
