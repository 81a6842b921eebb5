"""Continuations of prompts (one a line) sampled from a character language model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from src.data.chars.source import CharVocab
from src.predict.base import Predictor
from src.predict.io import input_format, read_texts


class TextGenerator(Predictor):
    """Prompts -> ``{"prompt", "text"}`` (prompt and continuation), as :mod:`src.generate`.

    Sampling takes ``--length`` characters at ``--temperature`` among the ``--top_k`` most
    likely; ``--seed`` makes it reproducible (each prompt then gets seed, seed + 1, ...).
    """

    options = ("length", "temperature", "top_k", "seed")

    def predict(self, path: str, fmt: str | None = None) -> Iterator[dict[str, Any]]:
        prompts = read_texts(path, input_format(path, fmt), "prompt")
        task, seed = self.task, self.seed
        vocab = CharVocab(task.hparams.vocab)
        for k, prompt in enumerate(prompts, 1):
            if vocab.unknown(prompt):
                raise ValueError(
                    f"prompt {k} has characters {vocab.unknown(prompt)} outside the model's "
                    f"{len(vocab)}-character vocabulary; remove or replace them"
                )
        length = 300 if self.length is None else self.length
        temperature = 1.0 if self.temperature is None else self.temperature

        def rows() -> Iterator[dict[str, Any]]:
            for k, prompt in enumerate(prompts):
                s = None if seed is None else seed + k
                text = task.generate(prompt, length, temperature, self.top_k, s)
                yield {"prompt": prompt, "text": text}

        return rows()
