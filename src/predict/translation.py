"""Translations of new sentences (one source sentence per line) by beam search."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from src.predict.base import Predictor, in_input_order, length_batches
from src.predict.io import input_format, read_texts


class Translator(Predictor):
    """Source sentences -> ``{"source", "translation"}``.

    Sources are tokenized with the checkpoint's source tokenizer and decoded with
    ``--beam_size`` beams (default: the task's test beam size), in length-bucketed batches.
    """

    options = ("beam_size",)

    def predict(self, path: str, fmt: str | None = None) -> Iterator[dict[str, Any]]:
        texts = read_texts(path, input_format(path, fmt), "sentence")
        dm, task = self.datamodule, self.task
        beam = self.beam_size or task.hparams.beam_size
        if beam < 1:
            raise ValueError(f"--beam_size must be at least 1, got {beam}")
        batch = dm.encode_sources(texts)  # checks every sentence before any decoding
        lengths = batch["src_lengths"].tolist()

        def compute(indices: np.ndarray) -> list[dict[str, Any]]:
            width = max(lengths[int(i)] for i in indices)
            src = batch["src"][indices, :width]
            tokens = task(src, batch["src_lengths"][indices], beam)
            return [
                {"source": texts[int(i)], "translation": t}
                for i, t in zip(indices, dm.decode_target(tokens), strict=True)
            ]

        return in_input_order(length_batches(lengths, self.batch_size), compute, len(texts))
