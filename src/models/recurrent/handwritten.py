"""Hand-written stacked LSTM (Hochreiter & Schmidhuber 1997) / GRU (Cho et al. 2014) layer."""

import math
from typing import Literal

import torch
from torch import Tensor, nn

from src.models.recurrent.cell_scan import CHUNKS, State, run_stack


class HandwrittenRNN(nn.Module):
    """Runs :class:`~src.models.recurrent.cells.LSTMCell` /
    :class:`~src.models.recurrent.cells.GRUCell` equations over time; a ``batch_first`` stand-in
    for ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` (tanh).

    Parameters carry PyTorch's names, layout and init (``weight_ih_l{k}[_reverse]`` ``(G*H, H_in)``,
    ``weight_hh_l{k}[_reverse]`` ``(G*H, H)``, ``bias_ih_l{k}``, ``bias_hh_l{k}``; ``G`` = 4 / 3 /
    1), so ``load_state_dict`` takes an ``nn.LSTM``'s. Variable lengths follow
    ``pack_padded_sequence``: zeros at padded steps, ``h_n`` at each sequence's true end, the
    backward direction reversed within each length.
    :func:`~src.models.recurrent.cell_scan.run_stack` runs the same computation on any module's
    parameters, e.g. ``dict(nn_lstm.named_parameters())``.

    Args:
        input_size: Features per step ``H_in``.
        hidden_size: Hidden units per direction ``H``.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"`` (tanh).
        num_layers: Stacked layers.
        bias: Use the biases.
        dropout: Dropout on every layer's output but the last's, in training.
        bidirectional: Add a time-reversed direction (``D = 2``).
        compiled: The fast path (opt-in: the first call compiles for seconds and needs a C++
            compiler on CPU; if compiling fails it warns once and runs eagerly). LSTM: the
            hand-written backward of :mod:`src.models.recurrent.lstm_bptt` (fused,
            ``torch.compile``d gate kernels; weight gradients as one GEMM; its speed against
            ``nn.LSTM`` is in ``bench/bench_cells.py``'s report); GRU: the same design in
            :mod:`src.models.recurrent.gru_bptt`; RNN: a ``torch.compile``d step under autograd.
        device: Parameter device.
        dtype: Parameter dtype.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        cell: Literal["lstm", "gru", "rnn"] = "lstm",
        num_layers: int = 1,
        bias: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        compiled: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if cell not in CHUNKS:
            raise ValueError(f"cell must be one of {sorted(CHUNKS)}, got {cell!r}")
        self.input_size, self.hidden_size, self.cell = input_size, hidden_size, cell
        self.num_layers, self.bias, self.dropout = num_layers, bias, dropout
        self.bidirectional, self.compiled = bidirectional, compiled
        self.num_directions = 2 if bidirectional else 1
        kw = {"device": device, "dtype": dtype}
        rows = CHUNKS[cell] * hidden_size
        for layer in range(num_layers):
            width = input_size if layer == 0 else self.num_directions * hidden_size
            for d in range(self.num_directions):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                shapes = {"weight_ih": (rows, width), "weight_hh": (rows, hidden_size)}
                if bias:
                    shapes.update(bias_ih=(rows,), bias_hh=(rows,))
                for name, shape in shapes.items():  # nn.LSTM's names and registration order
                    self.register_parameter(name + sfx, nn.Parameter(torch.empty(shape, **kw)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's RNN init (same order, so the same seed gives the same weights)."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, cell={self.cell!r}, num_layers="
            f"{self.num_layers}, bidirectional={self.bidirectional}, compiled={self.compiled}"
        )

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        hx: State | None = None,
        return_gates: bool = False,
    ) -> tuple[Tensor, State] | tuple[Tensor, State, dict[str, Tensor]]:
        """Run the stack over time.

        Args:
            x: ``(N, L, H_in)`` right-padded inputs.
            lengths: ``(N,)`` true lengths in ``1..L``; ``None`` means all ``L``.
            hx: ``h_0`` ``(num_layers * D, N, H)``, for LSTM ``(h_0, c_0)``; zeros when ``None``.
            return_gates: Also return the gate activations per step (eager step).

        Returns:
            ``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``): ``output`` ``(N, L, D * H)``,
            ``h_n``/``c_n`` ``(num_layers * D, N, H)``; with ``return_gates`` a third item, a
            dict of ``(num_layers * D, N, L, H)`` tensors, see
            :func:`~src.models.recurrent.cell_scan.run_stack`.
        """
        if x.dim() != 3 or x.size(-1) != self.input_size:
            raise ValueError(
                f"expected input (N, L, {self.input_size}) (batch_first), got {tuple(x.shape)}"
            )
        output, state, gates = run_stack(
            self.cell,
            dict(self.named_parameters()),
            x,
            lengths,
            hx,
            self.num_layers,
            self.bidirectional,
            self.dropout,
            self.training,
            return_gates,
            self.compiled,
        )
        return (output, state, gates) if return_gates else (output, state)
