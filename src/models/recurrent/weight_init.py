"""Recurrent weight initialisation: Xavier-uniform inputs (Glorot & Bengio 2010), orthogonal
recurrent weights per gate (Saxe et al. 2014), LSTM forget-gate bias (Jozefowicz et al. 2015)."""

from typing import Literal

from torch import nn

Init = Literal["default", "xavier_orthogonal"]


def init_recurrent_weights(rnn: nn.RNNBase, init: Init, forget_bias: float | None) -> None:
    """Re-initialise ``rnn`` (an ``nn.LSTM``/``nn.GRU``/``nn.RNN``) in place.

    Args:
        rnn: The module whose ``weight_ih``/``weight_hh``/``weight_hr``/``bias_*`` are set.
        init: ``"default"`` keeps PyTorch's uniform; ``"xavier_orthogonal"`` sets Xavier-uniform
            input (and projection) weights, an orthogonal ``(H, H_out)`` block per gate of the
            recurrent weights and zero biases.
        forget_bias: LSTM only: the forget gate's effective bias ``b_ih + b_hh`` (put in
            ``b_ih``; ``b_hh``'s share set to 0); ``None`` leaves it.
    """
    if init not in ("default", "xavier_orthogonal"):
        raise ValueError(f"init must be 'default' or 'xavier_orthogonal', got {init!r}")
    H = rnn.hidden_size
    for name, p in rnn.named_parameters():
        if init == "xavier_orthogonal":
            if name.startswith(("weight_ih", "weight_hr")):
                nn.init.xavier_uniform_(p)
            elif name.startswith("weight_hh"):
                for gate in p.data.split(H):  # one (H, H_out) block per gate
                    nn.init.orthogonal_(gate)
            else:
                nn.init.zeros_(p)
        if forget_bias is not None and name.startswith("bias"):
            # gate order i, f, g, o
            p.data[H : 2 * H] = forget_bias if name.startswith("bias_ih") else 0.0
