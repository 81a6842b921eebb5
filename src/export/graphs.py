"""Export-ready graphs of trained networks: every :class:`RecurrentEncoder` swapped for
:class:`ExportRecurrent` (one :func:`~src.export.ops.recurrent_layer` per layer), wrapped with
the task's pre- and post-processing so the graph maps raw inputs to final outputs."""

from __future__ import annotations

import copy
import json

import torch
from torch import Tensor, nn

from src.export.ops import to_onnx_gates
from src.models.recurrent.encoder import RecurrentEncoder
from src.models.recursive import recursive_forecast


class ExportRecurrent(nn.Module):
    """A :class:`RecurrentEncoder`'s evaluation forward, layer by layer through the export op.

    Args:
        encoder: The trained encoder (eval mode; dropout between layers is off). Projections
            (``proj_size``) have no ONNX equivalent and are refused.
    """

    def __init__(self, encoder: RecurrentEncoder) -> None:
        super().__init__()
        if encoder.hidden_out != encoder.hidden_size:
            raise ValueError("an LSTM with proj_size has no ONNX operator; export refuses it")
        self.cell, self.hidden_size = encoder.cell, encoder.hidden_size
        self.num_layers, self.directions = encoder.num_layers, encoder.num_directions
        self.h0, self.c0 = encoder.h0, encoder.c0
        for layer in range(self.num_layers):
            ws, rs, bs = [], [], []
            for d in range(self.directions):
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                ih, hh, b_ih, b_hh = (getattr(encoder.rnn, n + suffix) for n in names)
                ws.append(to_onnx_gates(ih.detach(), self.cell))
                rs.append(to_onnx_gates(hh.detach(), self.cell))
                bs.append(torch.cat([to_onnx_gates(b.detach(), self.cell) for b in (b_ih, b_hh)]))
            self.register_buffer(f"w{layer}", torch.stack(ws))
            self.register_buffer(f"r{layer}", torch.stack(rs))
            self.register_buffer(f"b{layer}", torch.stack(bs))

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, need_cell_state: bool = True
    ) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
        """As :meth:`RecurrentEncoder.forward` in eval mode; ``lengths`` ``(N,)`` or all ``L``."""
        n, steps = x.shape[:2]
        if lengths is None:
            lengths = torch.full((n,), steps, dtype=torch.long, device=x.device)
        lengths = lengths.long()
        states = self.num_layers * self.directions
        zeros = x.new_zeros(states, n, self.hidden_size)
        h0 = zeros if self.h0 is None else self.h0.expand(-1, n, -1)
        c0 = zeros if self.c0 is None else self.c0.expand(-1, n, -1)
        h_n, c_n, inp, d = [], [], x, self.directions
        for layer in range(self.num_layers):
            weights = [getattr(self, f"{k}{layer}") for k in "wrb"]
            k = slice(layer * d, (layer + 1) * d)
            args = (self.cell, self.hidden_size, d == 2)
            inp, h, c = torch.ops.seqlab.recurrent_layer(
                inp, lengths, *weights, h0[k], c0[k], *args
            )
            h_n.append(h)
            c_n.append(c)
        valid = torch.arange(steps, device=x.device)[None, :] < lengths[:, None]  # (N, L)
        output = inp * valid.unsqueeze(-1).to(inp.dtype)  # zeros at padding, as packing gives
        h_n = torch.cat(h_n)
        return (output, (h_n, torch.cat(c_n))) if self.cell == "lstm" else (output, h_n)


def exportable(net: nn.Module) -> nn.Module:
    """A copy of ``net`` in eval mode with every :class:`RecurrentEncoder` swapped for an
    :class:`ExportRecurrent` holding the same weights."""
    net = copy.deepcopy(net).eval()
    for name, module in list(net.named_modules()):
        if isinstance(module, RecurrentEncoder):
            parent_name, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent_name), child, ExportRecurrent(module))
    return net


class ClassifierGraph(nn.Module):
    """``tokens`` ``(N, L)`` int64 and ``lengths`` ``(N,)`` int64 -> ``probs`` ``(N, C)``.

    Args:
        task: A trained :class:`~src.tasks.classification.ClassificationTask`.
        datamodule: Its restored datamodule (tokenizer, ``max_len``, label names).
    """

    input_names, output_names = ["tokens", "lengths"], ["probs"]

    def __init__(self, task: nn.Module, datamodule) -> None:
        super().__init__()
        self.net = exportable(task.net)
        self.datamodule = datamodule

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return self.net(tokens, lengths).softmax(-1)

    def example_inputs(self) -> tuple[Tensor, Tensor]:
        tokens = torch.randint(2, 10, (3, 7))
        return tokens.masked_fill(
            torch.arange(7) >= torch.tensor([[7], [2], [5]]), 0
        ), torch.tensor([7, 2, 5])

    def dynamic_shapes(self) -> tuple:
        batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
        return ({0: batch, 1: length}, {0: batch})

    def metadata(self) -> dict[str, str]:
        dm = self.datamodule
        names = list(getattr(dm, "label_names", None) or [])
        return {
            "tokenizer": dm.tokenizer.to_str(),
            "max_len": str(dm.max_len),
            "label_names": json.dumps(names),
            "text_cleaning": "replace <br>, <br/> and <br /> (any case) by a space, then join "
            "the words with single spaces; the tokenizer lower-cases",
        }


class ForecasterGraph(nn.Module):
    """``values`` ``(N, L, C)`` in the series' units -> ``forecast`` ``(N, H, T)`` in its units.

    The training scaler is inside the graph: inputs are scaled per channel and forecasts scaled
    back, so the graph reads and writes raw values.

    Args:
        task: A trained :class:`~src.tasks.forecasting.ForecastingTask`.
        datamodule: Its restored datamodule (scaler, column names, window and horizon).
    """

    input_names, output_names = ["values"], ["forecast"]

    def __init__(self, task: nn.Module, datamodule) -> None:
        super().__init__()
        self.net, self.datamodule = exportable(task.net), datamodule
        self.recursive, self.horizon = task.hparams.recursive, task.hparams.horizon
        self.register_buffer("mean", torch.as_tensor(datamodule.mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(datamodule.std, dtype=torch.float32))
        self.register_buffer("target_mean", task.mean.detach().clone())
        self.register_buffer("target_std", task.std.detach().clone())

    def forward(self, values: Tensor) -> Tensor:
        x = (values - self.mean) / self.std
        y = recursive_forecast(self.net, x, self.horizon) if self.recursive else self.net(x)
        return y * self.target_std + self.target_mean

    def example_inputs(self) -> tuple[Tensor]:
        return (torch.randn(3, self.datamodule.input_len, len(self.mean)),)

    def dynamic_shapes(self) -> tuple:
        return ({0: torch.export.Dim("batch"), 1: torch.export.Dim("length")},)

    def metadata(self) -> dict[str, str]:
        dm = self.datamodule
        return {
            "columns": json.dumps(list(dm.column_names)),
            "targets": json.dumps(list(dm.column_names[: dm.n_targets])),
            "input_len": str(dm.input_len),
            "output_len": str(dm.output_len),
        }
