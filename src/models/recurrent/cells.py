"""Hand-written LSTM (Hochreiter & Schmidhuber 1997; Gers et al. 2000), GRU (Cho et al. 2014)."""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LSTM_GATES = ("input", "forget", "candidate", "output", "cell")
GRU_GATES = ("reset", "update", "candidate")


def lstm_step(
    xw: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor | None
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One LSTM step from the input projection ``xw = W_ih x + b_ih`` ``(N, 4H)``.

    ``i, f, o = sigmoid(.)``, ``g = tanh(.)`` of ``xw + W_hh h + b_hh`` (gate order i, f, g, o as
    in PyTorch), ``c' = f * c + i * g``, ``h' = o * tanh(c')``.

    Returns:
        ``(h', c', i, f, g, o)``, each ``(N, H)``.
    """
    i, f, g, o = (xw + F.linear(h, w_hh, b_hh)).chunk(4, -1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    c = f * c + i * g
    return o * c.tanh(), c, i, f, g, o


def gru_step(
    xw: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One GRU step from the input projection ``xw = W_ih x + b_ih`` ``(N, 3H)``.

    ``r, z = sigmoid(.)`` (gate order r, z, n), ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``
    (PyTorch's placement of the reset gate), ``h' = (1 - z) * n + z * h``.

    Returns:
        ``(h', r, z, n)``, each ``(N, H)``.
    """
    xr, xz, xn = xw.chunk(3, -1)
    hr, hz, hn = F.linear(h, w_hh, b_hh).chunk(3, -1)
    r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
    n = (xn + r * hn).tanh()
    return (1 - z) * n + z * h, r, z, n


class _GatedCell(nn.Module):
    """Parameters and init of ``nn.RNNCellBase``: ``weight_ih`` ``(G*H, H_in)``, ``weight_hh``
    ``(G*H, H)``, ``bias_ih``/``bias_hh`` ``(G*H,)``, all uniform in ``+-1/sqrt(H)``."""

    gates = 1

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        rows = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size, **kw))
        self.bias_ih = nn.Parameter(torch.empty(rows, **kw)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(rows, **kw)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's cell init (same order, so the same seed gives the same weights)."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    def _batch(self, input: Tensor, hx: tuple[Tensor | None, ...]) -> tuple:
        """Checks dims like PyTorch; unbatched ``(H_in)`` becomes ``(1, H_in)``."""
        name = type(self).__name__
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        for k, value in enumerate(hx):
            if value is not None and value.dim() != input.dim():
                raise ValueError(
                    f"{name}: hx[{k}] must be {input.dim()}D like the input, got {value.dim()}D"
                )
        batched = input.dim() == 2
        input = input if batched else input.unsqueeze(0)
        zeros = input.new_zeros(input.size(0), self.hidden_size)
        states = [zeros if v is None else v if batched else v.unsqueeze(0) for v in hx]
        return batched, F.linear(input, self.weight_ih, self.bias_ih), states


class LSTMCell(_GatedCell):
    """LSTM cell written from its gate equations; a drop-in for ``nn.LSTMCell``.

    Loads an ``nn.LSTMCell`` ``state_dict`` as is (gate order i, f, g, o).

    Args:
        input_size: Input features ``H_in``.
        hidden_size: Hidden and cell units ``H``.
        bias: Use ``bias_ih`` and ``bias_hh``.
        device: Parameter device.
        dtype: Parameter dtype.
    """

    gates = 4

    def forward(
        self,
        input: Tensor,
        hx: tuple[Tensor, Tensor] | None = None,
        return_gates: bool = False,
    ) -> tuple[Tensor, Tensor] | tuple[tuple[Tensor, Tensor], dict[str, Tensor]]:
        """One step.

        Args:
            input: ``(N, H_in)`` or unbatched ``(H_in)``.
            hx: ``(h_0, c_0)``, each ``(N, H)`` (or ``(H)``); zeros when ``None``.
            return_gates: Also return the activations ``input``, ``forget``, ``candidate``,
                ``output`` and the new ``cell`` state, each shaped like ``h_1``.

        Returns:
            ``(h_1, c_1)``, each ``(N, H)`` (or ``(H)``); with ``return_gates``
            ``((h_1, c_1), gates)``.
        """
        batched, xw, (h, c) = self._batch(input, hx if hx is not None else (None, None))
        h, c, i, f, g, o = lstm_step(xw, h, c, self.weight_hh, self.bias_hh)
        squeeze = (lambda t: t) if batched else (lambda t: t.squeeze(0))
        state = (squeeze(h), squeeze(c))
        if not return_gates:
            return state
        return state, {k: squeeze(v) for k, v in zip(LSTM_GATES, (i, f, g, o, c), strict=True)}


class GRUCell(_GatedCell):
    """GRU cell written from its gate equations; a drop-in for ``nn.GRUCell``.

    Loads an ``nn.GRUCell`` ``state_dict`` as is (gate order r, z, n).

    Args:
        input_size: Input features ``H_in``.
        hidden_size: Hidden units ``H``.
        bias: Use ``bias_ih`` and ``bias_hh``.
        device: Parameter device.
        dtype: Parameter dtype.
    """

    gates = 3

    def forward(
        self, input: Tensor, hx: Tensor | None = None, return_gates: bool = False
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """One step.

        Args:
            input: ``(N, H_in)`` or unbatched ``(H_in)``.
            hx: ``h_0`` ``(N, H)`` (or ``(H)``); zeros when ``None``.
            return_gates: Also return the activations ``reset``, ``update`` and ``candidate``,
                each shaped like ``h_1``.

        Returns:
            ``h_1`` ``(N, H)`` (or ``(H)``); with ``return_gates`` ``(h_1, gates)``.
        """
        batched, xw, (h,) = self._batch(input, (hx,))
        h, r, z, n = gru_step(xw, h, self.weight_hh, self.bias_hh)
        squeeze = (lambda t: t) if batched else (lambda t: t.squeeze(0))
        if not return_gates:
            return squeeze(h)
        return squeeze(h), {k: squeeze(v) for k, v in zip(GRU_GATES, (r, z, n), strict=True)}
