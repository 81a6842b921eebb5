"""Export of trained classifiers and forecasters: ONNX (float or int8 weights) and torch.export.

``python -m src.export --ckpt_path <ckpt> --format onnx|int8|pt2``; see :mod:`src.export.__main__`.
The graph of a checkpoint is chosen by the task class it records (:data:`GRAPHS`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from src.checkpoints.restore import CheckpointError, Loaded
from src.export.graphs import ClassifierGraph, ForecasterGraph
from src.tasks.checkpointing import class_path
from src.tasks.classification import ClassificationTask
from src.tasks.forecasting import ForecastingTask

GRAPHS: dict[type, type[nn.Module]] = {
    ClassificationTask: ClassifierGraph,
    ForecastingTask: ForecasterGraph,
}


def graph_for(loaded: Loaded) -> nn.Module:
    """The export graph of ``loaded``'s task (raw inputs in, final outputs out)."""
    kind = next((GRAPHS[c] for c in type(loaded.task).__mro__ if c in GRAPHS), None)
    if kind is None:
        raise CheckpointError(
            f"{loaded.path} holds a {type(loaded.task).__name__}; export supports classification "
            "and forecasting checkpoints"
        )
    try:
        return kind(loaded.task, loaded.datamodule)
    except (AttributeError, TypeError) as e:
        raise CheckpointError(f"{loaded.path}: this network cannot be exported ({e})") from None


def metadata(loaded: Loaded) -> dict[str, str]:
    """What the exported file records about where it came from."""
    return {"seqlab_task": class_path(loaded.task), "source_checkpoint": loaded.path.name}


def export_program(graph: nn.Module, path: str | Path, extra: dict[str, str]) -> Path:
    """``torch.export`` of ``graph`` with dynamic batch and length, saved as a ``.pt2`` file.

    The program holds the ``seqlab::recurrent_layer`` operator: ``import src.export`` before
    ``torch.export.load`` registers its kernel (PyTorch's packed recurrent layer).
    """
    path = Path(path)
    program = torch.export.export(
        graph.eval(), graph.example_inputs(), dynamic_shapes=graph.dynamic_shapes()
    )
    info = {**graph.metadata(), **extra, "inputs": graph.input_names}
    info["outputs"] = graph.output_names
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.export.save(program, tmp, extra_files={"seqlab.json": json.dumps(info)})
    os.replace(tmp, path)
    return path
