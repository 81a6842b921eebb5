"""ONNX export (dynamic batch and length axes, lengths as an input) and onnxruntime's dynamic
int8 quantization of the exported graph."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import onnx
import torch
from torch import nn

from src.export.ops import TRANSLATIONS


def export_onnx(graph: nn.Module, path: str | Path, extra_metadata: dict[str, str]) -> Path:
    """Export ``graph`` (a :mod:`src.export.graphs` wrapper) to ``path`` with its metadata.

    The metadata (``metadata_props``: the tokenizer JSON, label names, scaler columns, ...) makes
    the file usable without this repository.
    """
    path = Path(path)
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter narrates every stage
        program = torch.onnx.export(
            graph.eval(),
            graph.example_inputs(),
            input_names=graph.input_names,
            output_names=graph.output_names,
            dynamic_shapes=graph.dynamic_shapes(),
            custom_translation_table=TRANSLATIONS,
            dynamo=True,
            optimize=True,
            verbose=False,
        )
    model = program.model_proto
    metadata = {**graph.metadata(), **extra_metadata}
    onnx.helper.set_model_props(model, metadata)
    _save(model, path)
    return path


def _save(model: onnx.ModelProto, path: Path) -> None:
    """Write ``model`` in one file, atomically (temporary file, then ``os.replace``)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    onnx.save_model(model, tmp)
    os.replace(tmp, path)


def _gemm_to_matmul(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite ``Gemm(x, W, b, transB=1)`` as ``MatMul(x, W^T) + b``, which the dynamic
    quantizer handles (it has no Gemm rule): the linear heads then get int8 weights too."""
    inits = {t.name: t for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        plain = attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0
        weight = inits.get(node.input[1]) if node.op_type == "Gemm" else None
        if weight is None or not plain or attrs.get("transA", 0):
            nodes.append(node)
            continue
        array = onnx.numpy_helper.to_array(weight)
        if attrs.get("transB", 0):
            array = array.T
        name = f"{node.input[1]}_matmul"
        model.graph.initializer.append(onnx.numpy_helper.from_array(array.copy(), name))
        product = f"{node.output[0]}_product" if len(node.input) > 2 else node.output[0]
        nodes.append(onnx.helper.make_node("MatMul", [node.input[0], name], [product]))
        if len(node.input) > 2:
            nodes.append(onnx.helper.make_node("Add", [product, node.input[2]], [node.output[0]]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    kept = [t for t in model.graph.initializer if t.name in used]  # the replaced Gemm weights go
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


def quantize_int8(float_path: str | Path, int8_path: str | Path) -> Path:
    """Int8 weights for the recurrent (LSTM), linear (MatMul) and embedding (Gather) nodes, with
    activations quantized to int8 on the fly (onnxruntime's dynamic quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    float_path, int8_path = Path(float_path), Path(int8_path)
    model = _gemm_to_matmul(onnx.load(float_path))
    staged = int8_path.with_name(f".{int8_path.name}.{os.getpid()}.float.onnx")
    onnx.save_model(model, staged)
    try:
        quantize_dynamic(
            staged,
            int8_path,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["LSTM", "MatMul", "Gather"],
        )
    finally:
        staged.unlink(missing_ok=True)
    quantized = onnx.load(int8_path)
    onnx.helper.set_model_props(
        quantized, {p.key: p.value for p in model.metadata_props} | {"weights": "int8"}
    )
    _save(quantized, int8_path)
    return int8_path
