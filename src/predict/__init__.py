"""Predictions on new input from a checkpoint alone: ``python -m src.predict --ckpt_path <ckpt>``.

The predictor is chosen by the task class the checkpoint records (:data:`PREDICTORS`).
"""

from __future__ import annotations

from typing import Any

from src.checkpoints.restore import CheckpointError, Loaded
from src.predict.anomaly import AnomalyScorer
from src.predict.base import Predictor
from src.predict.classification import TextClassifier
from src.predict.forecasting import Forecaster
from src.predict.language_model import TextGenerator
from src.predict.tagging import Tagger
from src.predict.translation import Translator
from src.tasks.anomaly import AnomalyTask
from src.tasks.classification import ClassificationTask
from src.tasks.forecasting import ForecastingTask
from src.tasks.language_model import LanguageModelTask
from src.tasks.tagging import TaggingTask
from src.tasks.translation import Seq2SeqTask

__all__ = ["PREDICTORS", "Predictor", "predictor_for"]

PREDICTORS: dict[type, type[Predictor]] = {
    ClassificationTask: TextClassifier,
    ForecastingTask: Forecaster,
    TaggingTask: Tagger,
    Seq2SeqTask: Translator,
    AnomalyTask: AnomalyScorer,
    LanguageModelTask: TextGenerator,
}


def predictor_for(loaded: Loaded, batch_size: int = 64, **options: Any) -> Predictor:
    """The predictor of ``loaded``'s task, given the options it reads (None: not given).

    An option the predictor does not read, given a value, is an error naming the ones it does.
    """
    kind = next((PREDICTORS[c] for c in type(loaded.task).__mro__ if c in PREDICTORS), None)
    if kind is None:
        raise CheckpointError(f"{loaded.path} holds a {type(loaded.task).__name__}: no predictor")
    unused = sorted(k for k, v in options.items() if v is not None and k not in kind.options)
    if unused:
        takes = ", ".join(f"--{o}" for o in kind.options) or "no task options"
        raise ValueError(
            f"--{unused[0]} does not apply to a {type(loaded.task).__name__} checkpoint "
            f"(it takes {takes})"
        )
    values = {name: options.get(name) for name in kind.options}
    return kind(loaded.task, loaded.datamodule, batch_size, **values)
