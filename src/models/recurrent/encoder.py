"""Recurrent encoder (LSTM: Hochreiter & Schmidhuber 1997; GRU: Cho et al. 2014) with exact
packed-sequence semantics at dense-kernel speed on CPU."""

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from src.models.recurrent.cell_scan import run_stack
from src.models.recurrent.dense_exact import dense_exact
from src.models.recurrent.weight_init import Init, init_recurrent_weights
from src.models.recurrent.within_length import check_lengths

Cell = Literal["lstm", "gru", "rnn"]
_MODULES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def device_types(value: str | Sequence[str], source: str) -> tuple[str, ...]:
    """``"cpu, cuda"`` or ``["cpu", "cuda:0"]`` -> ``("cpu", "cuda")``; a one-line error naming
    ``source`` otherwise."""
    parts = value.split(",") if isinstance(value, str) else value
    types = []
    for name in filter(None, (str(part).strip() for part in parts)):
        try:
            types.append(torch.device(name).type)
        except RuntimeError:
            raise ValueError(
                f"{source}: {name!r} is not a device type; give a list such as ['cpu', 'cuda']"
            ) from None
    return tuple(types)


class RecurrentEncoder(nn.Module):
    """A stack of LSTM / GRU / tanh-RNN layers, ``batch_first``, variable lengths.

    ``forward(x, lengths)`` returns what the matching PyTorch module returns on
    ``pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)`` unpacked again:
    ``output`` ``(N, L, D * H_out)`` with zeros at padded steps and ``h_n``
    ``(num_layers * D, N, H_out)`` taken at each sequence's true end (LSTM: ``(h_n, c_n)``, ``c_n``
    ``(num_layers * D, N, H_cell)``). On CUDA this is cuDNN's packed kernel (no sort when the
    batch comes longest first, as length-bucketed batches do). On CPU PyTorch's packed
    backward grows with the square of the length, so each layer and direction runs the dense
    (oneDNN) kernel instead: right padding never reaches earlier steps, and the backward direction
    runs on each sequence reversed within its own length; a batch of very unequal lengths is cut
    into length groups first (:mod:`src.models.recurrent.dense_exact`). An LSTM's exact final cell
    state is rebuilt from the exact hidden states (one extra input/hidden projection and an
    elementwise scan); pass ``need_cell_state=False`` to skip that when ``c_n`` is not used.

    The parameters live in ``self.rnn``, a plain ``nn.LSTM``/``nn.GRU``/``nn.RNN``, so
    ``encoder.rnn.load_state_dict(torch_module.state_dict())`` loads PyTorch weights.

    Args:
        input_size: Features per time step ``H_in``.
        hidden_size: Hidden units per direction ``H_cell``.
        cell: Recurrent cell: ``"lstm"``, ``"gru"`` or ``"rnn"`` (tanh).
        num_layers: Stacked recurrent layers.
        dropout: Dropout on the outputs of every layer but the last (as in ``nn.LSTM``).
        bidirectional: Run a second, time-reversed direction and concatenate (``D = 2``).
        proj_size: LSTM only: project hidden states to this size (``H_out``); 0 disables.
        init: ``"default"`` (PyTorch's uniform) or ``"xavier_orthogonal"`` (Xavier-uniform input
            weights, orthogonal recurrent weights per gate, zero biases).
        forget_bias: LSTM only: initial forget-gate bias (e.g. 1.0, Jozefowicz et al. 2015).
        learn_initial_state: Learn ``h_0`` (and ``c_0``) instead of starting from zeros.
        implementation: ``"torch"`` (PyTorch's kernels, above) or ``"handwritten"`` (the gate
            equations of :mod:`src.models.recurrent.cells` run step by step on ``self.rnn``'s
            parameters, same results, slower; no ``proj_size``). :meth:`gates` works with either.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        cell: Cell = "lstm",
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        init: Init = "default",
        forget_bias: float | None = None,
        learn_initial_state: bool = False,
        implementation: Literal["torch", "handwritten"] = "torch",
        dense_exact_devices: Sequence[str] = ("cpu",),
    ) -> None:
        super().__init__()
        self.dense_exact_devices = device_types(dense_exact_devices, "dense_exact_devices")
        if cell not in _MODULES:
            raise ValueError(f"cell must be one of {sorted(_MODULES)}, got {cell!r}")
        if implementation not in ("torch", "handwritten"):
            raise ValueError(
                f"implementation must be 'torch' or 'handwritten', got {implementation!r}"
            )
        if implementation == "handwritten" and proj_size:
            raise ValueError(
                "proj_size is not supported by implementation='handwritten'; use 'torch'"
            )
        if cell != "lstm" and (proj_size or forget_bias is not None):
            raise ValueError(f"proj_size and forget_bias apply to cell='lstm' only, not {cell!r}")
        extra = {"proj_size": proj_size} if cell == "lstm" else {}
        self.rnn = _MODULES[cell](
            input_size,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
            **extra,
        )
        self.cell, self.input_size, self.hidden_size = cell, input_size, hidden_size
        self.num_layers, self.dropout = num_layers, dropout
        self.implementation = implementation
        self.num_directions = 2 if bidirectional else 1
        self.hidden_out = proj_size or hidden_size  # H_out
        states = num_layers * self.num_directions
        self.h0 = (
            nn.Parameter(torch.zeros(states, 1, self.hidden_out)) if learn_initial_state else None
        )
        has_c0 = learn_initial_state and cell == "lstm"
        self.c0 = nn.Parameter(torch.zeros(states, 1, hidden_size)) if has_c0 else None
        init_recurrent_weights(self.rnn, init, forget_bias)

    @property
    def output_size(self) -> int:
        """Features per step of ``output``: ``D * H_out``."""
        return self.num_directions * self.hidden_out

    def _initial_state(self, n: int, like: Tensor) -> tuple[Tensor, Tensor | None]:
        states = self.num_layers * self.num_directions
        h0 = self.h0.expand(-1, n, -1) if self.h0 is not None else None
        if h0 is None:
            h0 = like.new_zeros(states, n, self.hidden_out)
        if self.cell != "lstm":
            return h0.contiguous(), None
        c0 = self.c0.expand(-1, n, -1) if self.c0 is not None else None
        if c0 is None:
            c0 = like.new_zeros(states, n, self.hidden_size)
        return h0.contiguous(), c0.contiguous()

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, need_cell_state: bool = True
    ) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor | None]]:
        """Run the stack.

        Args:
            x: ``(N, L, H_in)`` right-padded inputs.
            lengths: ``(N,)`` true lengths in ``1..L``; ``None`` means all ``L``.
            need_cell_state: LSTM only; ``False`` returns ``c_n=None`` on the CPU
                variable-length path, saving its rebuild.

        Returns:
            ``(output, h_n)``, or ``(output, (h_n, c_n))`` for LSTM; shapes as in the class doc.
        """
        self._check_input(x)
        n, length = x.shape[:2]
        h0, c0 = self._initial_state(n, x)
        hx = (h0, c0) if self.cell == "lstm" else h0
        if self.implementation == "handwritten":
            return self._handwritten(x, lengths, hx, record_gates=False)[:2]
        if lengths is not None:
            # the host copy is what packing reads (one device sync when lengths live on a GPU)
            lengths = check_lengths(torch.as_tensor(lengths).cpu(), n, length)
            if bool((lengths != length).any()):
                if x.device.type in self.dense_exact_devices:
                    return self._dense_exact(x, lengths, h0, c0, need_cell_state)
                return self._packed(x, lengths, hx)
        return self.rnn(x, hx)

    def _dense_exact(self, x, lengths, h0, c0, need_cell_state: bool):
        D = self.num_directions
        params = [self._layer_params(k // D, k % D) for k in range(len(h0))]
        dropout = self.dropout if self.num_layers > 1 else 0.0
        args = (dropout, self.training, need_cell_state)
        output, h_n, c_n = dense_exact(self.cell, params, D, x, lengths, h0, c0, *args)
        return (output, (h_n, c_n)) if self.cell == "lstm" else (output, h_n)

    def _packed(self, x: Tensor, lengths: Tensor, hx):
        # length-bucketed batches come longest first: then packing needs no sort (no gathers)
        descending = bool((lengths[:-1] >= lengths[1:]).all())
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=descending)
        out, state = self.rnn(packed, hx)
        return pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0], state

    def gates(self, x: Tensor, lengths: Tensor | None = None) -> dict[str, Tensor]:
        """Gate activations per step, from the hand-written cells on this encoder's parameters.

        Works whatever ``implementation`` is; dropout is off. Padded steps hold zeros.

        Args:
            x: ``(N, L, H_in)`` right-padded inputs.
            lengths: ``(N,)`` true lengths in ``1..L``; ``None`` means all ``L``.

        Returns:
            ``(num_layers * D, N, L, H_cell)`` tensors (row ``layer * D + direction``): LSTM
            ``input``, ``forget``, ``candidate``, ``output``, ``cell``; GRU ``reset``,
            ``update``, ``candidate``; every cell ``hidden`` (each layer's hidden states).
        """
        if self.hidden_out != self.hidden_size:
            raise ValueError("gates() does not support proj_size; build the encoder without it")
        self._check_input(x)
        h0, c0 = self._initial_state(x.size(0), x)
        hx = (h0, c0) if self.cell == "lstm" else h0
        return self._handwritten(x, lengths, hx, record_gates=True, training=False)[2]

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 3 or x.size(-1) != self.input_size:
            raise ValueError(
                f"expected input (N, L, {self.input_size}) (batch_first), got {tuple(x.shape)}"
            )

    def _handwritten(self, x, lengths, hx, record_gates: bool, training: bool | None = None):
        bidirectional = self.num_directions == 2
        training = self.training if training is None else training
        params = dict(self.rnn.named_parameters())
        args = (self.num_layers, bidirectional, self.dropout, training, record_gates)
        return run_stack(self.cell, params, x, lengths, hx, *args)

    def _layer_params(self, layer: int, direction: int) -> list[Tensor]:
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
        if self.hidden_out != self.hidden_size:
            names.append("weight_hr")
        return [getattr(self.rnn, name + suffix) for name in names]
