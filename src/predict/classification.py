"""Text classification on new reviews: label name and the probability of every class."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from src.data.collate import TokenDataset, pad_collate
from src.data.text import encode_ids
from src.predict.base import Predictor, in_input_order, length_batches
from src.predict.io import input_format, read_texts


class TextClassifier(Predictor):
    """One review per line (or a ``text`` column) -> ``{"label", "prob_<label>" ...}``.

    Texts are cleaned (HTML line breaks), tokenized, truncated to ``max_len`` tokens and, for a
    backward model, reversed as the training data were (the datamodule's ``encode``, else
    :func:`src.data.text.encode_ids` with the checkpoint's tokenizer), then classified in
    length-bucketed batches.
    """

    def predict(self, path: str, fmt: str | None = None) -> Iterator[dict[str, Any]]:
        texts = read_texts(path, input_format(path, fmt), "review")
        dm = self.datamodule
        ids, offsets = (
            dm.encode(texts)
            if hasattr(dm, "encode")
            else encode_ids(dm.tokenizer, texts, dm.max_len)
        )
        lengths = np.diff(offsets)
        if (lengths == 0).any():
            i = int(np.flatnonzero(lengths == 0)[0])
            raise ValueError(f"review {i + 1} has no words once HTML tags are removed")
        dataset = TokenDataset(ids, offsets)
        names = getattr(dm, "label_names", None) or [
            str(i) for i in range(self.task.hparams.num_classes)
        ]

        def compute(indices: np.ndarray) -> list[dict[str, Any]]:
            batch = pad_collate([dataset[int(i)] for i in indices])
            probs = self.task(batch["tokens"], batch["lengths"]).softmax(-1).tolist()
            return [
                {"label": names[int(np.argmax(p))]}
                | {f"prob_{n}": v for n, v in zip(names, p, strict=True)}
                for p in probs
            ]

        return in_input_order(length_batches(lengths, self.batch_size), compute, len(texts))
