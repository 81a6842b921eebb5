"""python -m src.export: ONNX graphs give onnxruntime what PyTorch gives on batches of mixed
lengths (1 included), int8 weights keep the labels, torch.export programs load and agree."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from tokenizers import Tokenizer
from torch import nn

from src.checkpoints.restore import restore
from src.export import export_program
from src.export.__main__ import export, main
from src.export.graphs import ClassifierGraph, exportable
from src.export.onnx import export_onnx, quantize_int8
from src.models.recurrent.encoder import RecurrentEncoder


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _reviews(n: int, vocab: int, longest: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random reviews padded to ``longest``; lengths 1 and ``longest`` among them."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, longest + 1, (n,), generator=g)
    lengths[0] = longest
    lengths[n // 2] = 1
    tokens = torch.randint(2, vocab, (n, longest), generator=g)
    return tokens.masked_fill(torch.arange(longest) >= lengths[:, None], 0), lengths


def test_onnx_classifier_matches_pytorch_and_int8_keeps_its_labels(tiny_checkpoint, tmp_path):
    ckpt, dm = tiny_checkpoint("imdb_bilstm")
    loaded = restore(ckpt)
    with torch.no_grad():  # a two-step model sits at p = 0.5: spread its logits out
        loaded.task.net.head[-1].weight.mul_(30.0)
    float_path = export_onnx(
        ClassifierGraph(loaded.task, loaded.datamodule), tmp_path / "f.onnx", {}
    )
    session, task = _session(float_path), loaded.task
    for n, longest, seed in [(9, 23, 0), (4, 1, 1), (1, 40, 2)]:  # (4, 1): every length is 1
        tokens, lengths = _reviews(n, dm.vocab_size, longest, seed)
        with torch.no_grad():
            expected = task(tokens, lengths).softmax(-1).numpy()
        got = session.run(None, {"tokens": tokens.numpy(), "lengths": lengths.numpy()})[0]
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
        padded = torch.nn.functional.pad(tokens, (0, 5))  # more padding changes nothing
        again = session.run(None, {"tokens": padded.numpy(), "lengths": lengths.numpy()})[0]
        np.testing.assert_allclose(again, got, atol=1e-6, rtol=0)
    meta = session.get_modelmeta().custom_metadata_map
    tokenizer = Tokenizer.from_str(meta["tokenizer"])  # usable without this repository
    assert tokenizer.encode("a good movie").ids == dm.tokenizer.encode("a good movie").ids
    assert json.loads(meta["label_names"]) == ["negative", "positive"]
    assert meta["max_len"] == str(dm.max_len) and "br" in meta["text_cleaning"]

    int8_path = quantize_int8(float_path, tmp_path / "int8.onnx")
    model = onnx.load(int8_path)
    assert {"DynamicQuantizeLSTM", "MatMulInteger"} <= {n.op_type for n in model.graph.node}
    eight_bit = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)  # the embedding's is uint8
    quantized = {t.name for t in model.graph.initializer if t.data_type in eight_bit}
    embedding, lstm = "net.embedding.weight", ["net.encoder.w0", "net.encoder.r0"]
    assert {f"{w}_quantized" for w in [embedding, *lstm, "net.head.1.weight_matmul"]} <= quantized
    floats = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    assert max(np.prod(t.dims) for t in floats) <= 2 * 8 * 8  # biases and scales only
    tokens, lengths = _reviews(64, dm.vocab_size, 30, seed=3)
    feeds = {"tokens": tokens.numpy(), "lengths": lengths.numpy()}
    p_float, p_int8 = session.run(None, feeds)[0], _session(int8_path).run(None, feeds)[0]
    assert (p_float.argmax(1) == p_int8.argmax(1)).mean() >= 0.9
    assert np.abs(p_float - p_int8).max() < 0.1


def test_onnx_forecaster_matches_pytorch_on_its_test_windows(tiny_checkpoint, tmp_path):
    ckpt, dm = tiny_checkpoint("multivariate_lstm")
    path, _ = export(str(ckpt), "onnx", str(tmp_path / "forecaster.onnx"))
    task = restore(ckpt).task
    windows = torch.stack([dm.datasets["test"][i]["x"] for i in range(len(dm.datasets["test"]))])
    raw = windows * torch.tensor(dm.std, dtype=torch.float32) + torch.tensor(dm.mean).float()
    got = _session(path).run(None, {"values": raw.numpy()})[0]  # the graph scales by itself
    with torch.no_grad():
        expected = task.inverse_transform(task(windows)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-5)
    meta = _session(path).get_modelmeta().custom_metadata_map
    assert json.loads(meta["columns"]) == ["target", "covariate_1", "covariate_2"]


class _Stacks(nn.Module):
    """Every cell kind and option the export op translates, in one small network."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = RecurrentEncoder(3, 5, "lstm", 2, bidirectional=True, learn_initial_state=True)
        self.gru = RecurrentEncoder(3, 4, "gru", 1, bidirectional=True)
        self.rnn = RecurrentEncoder(3, 4, "rnn", 2)
        with torch.no_grad():
            self.lstm.h0.normal_()
            self.lstm.c0.normal_()

    def forward(self, x, lengths):
        outs = []
        for encoder in (self.lstm, self.gru, self.rnn):
            output, state = encoder(x, lengths)
            h_n, c_n = state if isinstance(state, tuple) else (state, state)
            outs += [
                output.flatten(1),
                h_n.transpose(0, 1).flatten(1),
                c_n.transpose(0, 1).flatten(1),
            ]
        return torch.cat(outs, 1)


class _StacksGraph(nn.Module):
    input_names, output_names = ["x", "lengths"], ["y"]

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.reference = _Stacks().eval()
        self.net = exportable(self.reference)

    def forward(self, x, lengths):
        return self.net(x, lengths)

    def example_inputs(self):
        return torch.randn(3, 6, 3), torch.tensor([6, 1, 4])

    def dynamic_shapes(self):
        batch = torch.export.Dim("batch")
        return ({0: batch, 1: torch.export.Dim("length")}, {0: batch})

    def metadata(self):
        return {}


def test_every_cell_exports_exactly_to_onnx_and_torch_export(tmp_path):
    graph = _StacksGraph()
    session = _session(export_onnx(graph, tmp_path / "stacks.onnx", {}))
    program = torch.export.load(export_program(graph, tmp_path / "stacks.pt2", {})).module()
    g = torch.Generator().manual_seed(1)
    for n, longest in [(5, 9), (3, 1), (2, 12)]:
        x = torch.randn(n, longest, 3, generator=g)
        lengths = torch.randint(1, longest + 1, (n,), generator=g)
        lengths[0] = longest
        with torch.no_grad():
            expected = graph.reference(x, lengths).numpy()
            from_program = program(x, lengths).numpy()
        got = session.run(None, {"x": x.numpy(), "lengths": lengths.numpy()})[0]
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
        np.testing.assert_allclose(from_program, expected, atol=1e-5, rtol=0)


def test_export_refuses_other_tasks_in_one_line(tiny_checkpoint, tmp_path, capsys):
    ckpt, _ = tiny_checkpoint("udpos_bilstm")
    with pytest.raises(SystemExit) as exit_info:
        main(["--ckpt_path", str(ckpt), "--format", "onnx", "--output", str(tmp_path / "t.onnx")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {ckpt} holds a TaggingTask; export supports classification and forecasting "
        "checkpoints"
    )
