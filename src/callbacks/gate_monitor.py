"""TensorBoard plots of LSTM (Hochreiter & Schmidhuber 1997) / GRU (Cho et al. 2014) gates."""

import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_warn
from matplotlib.figure import Figure  # no pyplot state: rendered by TensorBoard's Agg canvas
from torch import Tensor

SIGMOID_GATES = ("input", "forget", "output", "reset", "update")
TANH_GATES = ("candidate",)


class GateMonitor(Callback):
    """Plots what the recurrent encoder's gates do on a fixed validation batch.

    Every ``every_n_epochs`` epochs (epochs 0, n, 2n, ...), at the end of validation, the first
    ``num_samples`` sequences of the first validation batch (kept from the first validation run)
    go through ``pl_module.net.encoder_inputs(batch)`` and ``pl_module.net.encoder.gates(x,
    lengths)`` (see :meth:`src.models.recurrent.RecurrentEncoder.gates`), and the TensorBoard logger
    receives, per layer and direction (``layer{k}``, ``layer{k}_reverse``):

    - ``gates/traces/layer{k}``: each gate's activation averaged over units, against time, one
      line per sequence;
    - ``gates/cell_state/layer{k}`` (LSTM; ``gates/hidden_state/layer{k}`` for GRU / RNN): a
      heatmap of the first ``max_units`` units against time, one panel per sequence;

    and, pooled over layers, directions, sequences and units:

    - ``gates/hist/{gate}``: histograms of every gate, the cell and the hidden state;
    - ``gates/saturation/{gate}``: share of values ``< saturation`` or ``> 1 - saturation``
      (sigmoid gates), or with ``|v| > 1 - 2 * saturation`` (the tanh candidate, the same
      pre-activation threshold).

    Only valid (non-padded) steps enter. Without a :class:`TensorBoardLogger` it warns once and
    does nothing. Works for any net exposing ``encoder_inputs`` and an LSTM / GRU / RNN
    ``encoder`` (:class:`~src.models.classifier.RNNClassifier`,
    :class:`~src.models.forecaster.RNNForecaster`).

    Args:
        every_n_epochs: Log every this many epochs.
        num_samples: Sequences of the first validation batch to inspect.
        max_units: Hidden units shown in the heatmaps.
        saturation: Distance from a sigmoid's bound that counts as saturated.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        num_samples: int = 4,
        max_units: int = 32,
        saturation: float = 0.05,
    ) -> None:
        super().__init__()
        if every_n_epochs < 1 or num_samples < 1 or max_units < 1:
            raise ValueError("every_n_epochs, num_samples and max_units must be at least 1")
        if not 0 < saturation < 0.5:
            raise ValueError(f"saturation must lie in (0, 0.5), got {saturation}")
        self.every_n_epochs, self.num_samples = every_n_epochs, num_samples
        self.max_units, self.saturation = max_units, saturation
        self._batch: dict | None = None
        self._warned = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._batch = None  # each run inspects its own first validation batch
        net = getattr(pl_module, "net", None)
        encoder = getattr(net, "encoder", None)
        if not hasattr(net, "encoder_inputs") or not hasattr(encoder, "gates"):
            raise ValueError(
                f"GateMonitor needs pl_module.net with encoder_inputs(batch) and encoder.gates(); "
                f"{type(net).__name__} has not: use RNNClassifier or RNNForecaster"
            )

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self._batch is None and batch_idx == 0 and dataloader_idx == 0:
            k = self.num_samples
            self._batch = {
                key: value[:k].detach().cpu() if torch.is_tensor(value) and value.dim() else value
                for key, value in batch.items()
            }

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or self._batch is None:
            return
        if trainer.current_epoch % self.every_n_epochs or not trainer.is_global_zero:
            return
        writer = next(
            (lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None
        )
        if writer is None:
            if not self._warned:
                rank_zero_warn("GateMonitor: no TensorBoardLogger in the trainer; gates not logged")
                self._warned = True
            return
        device = pl_module.device
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in self._batch.items()}
        net = pl_module.net
        with torch.no_grad():
            x, lengths = net.encoder_inputs(batch)
            gates = {k: v.float().cpu() for k, v in net.encoder.gates(x, lengths).items()}
        n, length = x.shape[:2]
        lengths = torch.full((n,), length) if lengths is None else lengths.cpu()
        self._log(writer, gates, lengths, net.encoder.num_directions, trainer.global_step)

    def _log(self, writer, gates: dict[str, Tensor], lengths: Tensor, dirs: int, step: int) -> None:
        valid = torch.arange(int(lengths.max())) < lengths[:, None]  # (N, L')
        for name, value in gates.items():
            values = value[:, :, : valid.size(1)][:, valid]  # (num_layers * D, M, H), valid only
            writer.add_histogram(f"gates/hist/{name}", values.flatten(), step)
            s = self.saturation
            if name in SIGMOID_GATES:
                share = ((values < s) | (values > 1 - s)).float().mean()
            elif name in TANH_GATES:
                share = (values.abs() > 1 - 2 * s).float().mean()
            else:
                continue
            writer.add_scalar(f"gates/saturation/{name}", float(share), step)
        state = "cell" if "cell" in gates else "hidden"
        for k in range(gates["hidden"].size(0)):
            suffix = f"layer{k // dirs}" + ("_reverse" if k % dirs else "")
            traces = {g: v[k] for g, v in gates.items() if g in SIGMOID_GATES + TANH_GATES}
            if traces:
                writer.add_figure(f"gates/traces/{suffix}", _traces(traces, lengths), step)
            heat = gates[state][k, :, :, : self.max_units]
            writer.add_figure(f"gates/{state}_state/{suffix}", _heatmaps(heat, lengths), step)


def _traces(gates: dict[str, Tensor], lengths: Tensor) -> Figure:
    """One panel per gate: the unit-mean activation ``(N, L, H) -> (N, L)`` against time."""
    fig = Figure(figsize=(8, 1.8 * len(gates)), layout="constrained")
    axes = fig.subplots(len(gates), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, value) in zip(axes, gates.items(), strict=True):
        for i, n in enumerate(lengths.tolist()):
            ax.plot(value[i, :n].mean(-1).numpy(), lw=1, label=f"seq {i}")
        ax.set_ylim(*((-1.05, 1.05) if name in TANH_GATES else (-0.05, 1.05)))
        ax.set_ylabel(name)
    axes[0].legend(loc="upper right", fontsize="small", ncols=min(len(lengths), 4))
    axes[-1].set_xlabel("time step")
    return fig


def _heatmaps(state: Tensor, lengths: Tensor) -> Figure:
    """One panel per sequence: ``state`` ``(N, L, H)`` as units x valid time steps."""
    fig = Figure(figsize=(8, 1.6 * len(lengths) + 0.6), layout="constrained")
    axes = fig.subplots(len(lengths), 1, sharex=True, squeeze=False)[:, 0]  # one time scale
    bound = max(float(state.abs().max()), 1e-6)
    for i, (ax, n) in enumerate(zip(axes, lengths.tolist(), strict=True)):
        image = ax.imshow(
            state[i, :n].T.numpy(), aspect="auto", cmap="RdBu_r", vmin=-bound, vmax=bound
        )
        ax.set_ylabel(f"seq {i}\nunit")
    axes[-1].set_xlim(-0.5, int(lengths.max()) - 0.5)  # shared: the longest sequence
    axes[-1].set_xlabel("time step")
    fig.colorbar(image, ax=list(axes), shrink=0.8)
    return fig
