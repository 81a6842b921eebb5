"""Part-of-speech tags for new sentences (one sentence per line, tokens separated by spaces)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from src.predict.base import Predictor, in_input_order, length_batches
from src.predict.io import input_format, read_texts


class Tagger(Predictor):
    """Whitespace-tokenized sentences -> ``{"tokens": [...], "tags": [...]}``, one tag a token.

    Words and characters are encoded with the checkpoint's vocabularies as in training
    (lower-cased words, clipped long words, unknowns to ``<unk>``), in length-bucketed batches.
    """

    def predict(self, path: str, fmt: str | None = None) -> Iterator[dict[str, Any]]:
        sentences = [t.split() for t in read_texts(path, input_format(path, fmt), "sentence")]
        dm, task = self.datamodule, self.task
        names = task.tag_names

        def compute(indices: np.ndarray) -> list[dict[str, Any]]:
            batch = dm.encode_sentences([sentences[int(i)] for i in indices])
            tags = task(batch["words"], batch["chars"], batch["lengths"]).argmax(-1)  # (N, L)
            return [
                {"tokens": sentences[int(i)], "tags": [names[t] for t in row[:n]]}
                for i, row, n in zip(indices, tags.tolist(), batch["lengths"].tolist(), strict=True)
            ]

        batches = length_batches([len(s) for s in sentences], self.batch_size)
        return in_input_order(batches, compute, len(sentences))
