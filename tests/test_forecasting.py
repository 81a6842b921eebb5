"""Forecasting architectures and modes: seasonal-naive baseline, seq2seq with teacher forcing,
recursive one-step forecasting, stateful truncated BPTT, attention pooling."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from src.data.series.datamodule import TimeSeriesDataModule
from src.data.series.windows import StreamDataset, WindowDataset, seasonal_index
from src.models.forecaster import RNNForecaster
from src.models.recursive import OneStepForecaster, recursive_forecast
from src.models.seq2seq_forecaster import Seq2SeqForecaster
from src.models.stateful_forecaster import StatefulForecaster
from src.tasks.forecast_metrics import ForecastMetrics
from src.tasks.forecasting import ForecastingTask

SMALL = dict(n_points=1000, input_len=20, output_len=5, batch_size=16)


def _all_params_get_grad(module: torch.nn.Module, loss: torch.Tensor) -> None:
    loss.backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"


# ---- seasonal-naive baseline -------------------------------------------------------------------
@pytest.mark.parametrize("season", [1, 3, 5, 7, 12])
def test_seasonal_index_same_phase_latest_past(season):
    end, horizon = torch.tensor([40, 57]), 10
    index = seasonal_index(end, horizon, season)  # (2, H)
    target = end[:, None] + torch.arange(1, horizon + 1)
    assert (index <= end[:, None]).all()  # never a future value
    assert ((target - index) % season == 0).all()  # same phase of the season
    assert (index > end[:, None] - season).all()  # the latest such observation


@pytest.mark.parametrize("season", [3, 7, 50])  # shorter than H, between H and L, longer than L
def test_seasonal_values_one_season_earlier(season):
    dm = TimeSeriesDataModule(**SMALL, season_length=season)
    dm.setup()
    val = dm.datasets["val"]
    for i in (0, 17, len(val) - 1):
        end = int(val.starts[i]) + 19  # last observed step
        item = val[i]
        for h in range(1, 6):
            source = end + h - season * -(-h // season)
            assert source <= end
            torch.testing.assert_close(item["seasonal"][h - 1], dm.data[source, :1])
    # values after the window's end never reach the baseline
    spoiled = dm.data.clone()
    spoiled[int(val.starts[3]) + 20 :] = 99.0
    same = WindowDataset(spoiled, val.starts, 20, 5, 1, season)[3]["seasonal"]
    torch.testing.assert_close(same, val[3]["seasonal"])


def test_seasonal_default_period_nan_without_history_and_metrics():
    assert TimeSeriesDataModule().season_length == 314  # round(2 pi / (200 / 9999))
    assert TimeSeriesDataModule(n_points=900).season_length == 28
    assert TimeSeriesDataModule(series="random_walk").season_length is None
    assert TimeSeriesDataModule(season_length=0).season_length is None
    off = TimeSeriesDataModule(**SMALL, season_length=0)
    off.setup()
    assert "seasonal" not in off.datasets["val"][0]
    dm = TimeSeriesDataModule(**SMALL, season_length=50)
    dm.setup()
    first = dm.datasets["train"][0]["seasonal"]  # window ends at step 19: nothing 50 steps back
    assert torch.isnan(first).all()
    metric = ForecastMetrics()
    target = torch.zeros(2, 3, 1)
    seasonal = torch.tensor([[1.0, 1.0, float("nan")], [2.0, float("nan"), 2.0]]).unsqueeze(-1)
    metric.update(torch.ones(2, 3, 1), target, torch.full((2, 3, 1), 2.0), seasonal)
    out = metric.compute()
    assert out["seasonal_mse"].item() == pytest.approx((1 + 1 + 4 + 4) / 4)
    assert out["rel_seasonal"].item() == pytest.approx(4 / 10)
    assert out["rel_naive"].item() == pytest.approx(1 / 4)
    plain = ForecastMetrics()
    plain.update(torch.ones(2, 3, 1), target, target + 2)
    assert "rel_seasonal" not in plain.compute()


def test_forecast_metrics_by_hand():
    pred, target, naive = (
        torch.tensor(values).view(2, 2, 1)
        for values in ([1.0, -2.0, 3.0, 0.0], [2.0, 2.0, -1.0, 0.0], [0.0, 0.0, 1.0, 0.0])
    )
    metric = ForecastMetrics()
    metric.update(pred[:1], target[:1], naive[:1])  # two updates: the figures cover both
    metric.update(pred[1:], target[1:], naive[1:])
    out = {k: v.item() for k, v in metric.compute().items()}
    # errors -1, -4, 4, 0; naive errors -2, -2, 2, 0
    assert out["mse"] == pytest.approx((1 + 16 + 16 + 0) / 4)
    assert out["rmse"] == pytest.approx((33 / 4) ** 0.5)
    assert out["mae"] == pytest.approx((1 + 4 + 4 + 0) / 4)
    # 2 |e| / (|pred| + |target|): 2/3, 8/4, 8/4, and 0 where both are 0
    assert out["smape"] == pytest.approx(100 * (2 / 3 + 2 + 2 + 0) / 4)
    assert out["naive_mse"] == pytest.approx((4 + 4 + 4 + 0) / 4)
    assert out["rel_naive"] == pytest.approx(33 / 12)
    assert "rel_seasonal" not in out
    metric.reset()
    metric.update(torch.full((1, 1, 1), 2.0), torch.ones(1, 1, 1), torch.zeros(1, 1, 1))
    assert metric.compute()["mae"].item() == 1.0  # reset starts a new epoch


# ---- encoder-decoder --------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_seq2seq_shapes_and_gradients(cell):
    torch.manual_seed(0)
    net = Seq2SeqForecaster(
        input_size=3, output_len=4, output_size=2, hidden_size=6, cell=cell, num_layers=2
    )
    out = net(torch.randn(5, 9, 3))
    assert out.shape == (5, 4, 2)
    _all_params_get_grad(net, out.pow(2).sum())


def test_seq2seq_teacher_forcing_ratio():
    torch.manual_seed(0)
    x, y = torch.randn(3, 8, 1), torch.randn(3, 4, 1)
    free = Seq2SeqForecaster(hidden_size=5, output_len=4, teacher_forcing_ratio=0.0)
    torch.testing.assert_close(free(x, target=y), free(x))  # ratio 0: the truth is never read
    forced = Seq2SeqForecaster(hidden_size=5, output_len=4, teacher_forcing_ratio=1.0)
    out = forced(x, target=y)
    changed = y.clone()
    changed[:, 1] += 1.0  # truth of step 1 is the decoder's input at step 2
    again = forced(x, target=changed)
    torch.testing.assert_close(again[:, :2], out[:, :2])
    assert not torch.allclose(again[:, 2:], out[:, 2:])
    # ratio 1 is exactly: decoder inputs = last observation, then y[:, :-1]
    _, state = forced.encoder(x)
    inputs = torch.cat([x[:, -1:], y[:, :-1]], 1)
    manual = forced.head(forced.decoder(inputs, state)[0])
    torch.testing.assert_close(out, manual)
    forced.eval()  # evaluation never reads the truth
    torch.testing.assert_close(forced(x, target=y), forced(x))
    assert ForecastingTask(forced).teacher_forcing  # its forward names ``target``
    assert not ForecastingTask(RNNForecaster()).teacher_forcing


# ---- recursive one-step forecasting -----------------------------------------------------------
def test_recursive_forecast_feeds_predictions_back():
    torch.manual_seed(0)
    net = OneStepForecaster(hidden_size=6).eval()
    x = torch.randn(2, 12, 1)
    window, manual = x, []
    for _ in range(5):
        step = net(window)  # (N, 1, 1)
        manual.append(step)
        window = torch.cat([window[:, 1:], step], 1)
    torch.testing.assert_close(recursive_forecast(net, x, 5), torch.cat(manual, 1))
    task = ForecastingTask(net, recursive=True, horizon=5).eval()
    batch = {"x": x, "y": torch.zeros(2, 5, 1), "last": x[:, -1]}
    torch.testing.assert_close(task._forecast(batch, "val")[0], torch.cat(manual, 1))
    torch.testing.assert_close(task(x), torch.cat(manual, 1))
    pred, scored = task._forecast(batch, "train")  # one-step training target
    assert pred.shape == scored["y"].shape == (2, 1, 1)
    with pytest.raises(ValueError, match="one-step net"):
        ForecastingTask(RNNForecaster(output_len=5), recursive=True)._forecast(batch, "train")


def test_recursive_with_covariates_raises():
    dm = TimeSeriesDataModule(series="multivariate", **SMALL)
    batch = next(iter(dm.val_dataloader()))
    task = ForecastingTask(OneStepForecaster(input_size=3, output_size=1), recursive=True)
    with pytest.raises(ValueError, match="every input channel to be a target"):
        task._forecast(batch, "train")
    with pytest.raises(ValueError, match="future covariates are unknown"):
        recursive_forecast(task.net, batch["x"], 5)
    with pytest.raises(ValueError, match="drop output_len"):
        OneStepForecaster(output_len=3)


# ---- stateful truncated BPTT ------------------------------------------------------------------
def test_stream_chunks_are_contiguous():
    data = torch.arange(500, dtype=torch.float32)[:, None]  # value = index
    ds = StreamDataset(data, start=100, limit=400, n_streams=4, chunk_len=7, horizon=3, n_targets=1)
    assert ds.n_chunks == (400 - 100 - 3) // 28
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    batches = list(loader)
    assert len(batches) == ds.n_chunks
    for k, batch in enumerate(batches):
        x, y = batch["x"][..., 0], batch["y"][..., 0]
        if k:  # chunk k of stream b continues chunk k - 1 of stream b
            torch.testing.assert_close(x[:, 0], batches[k - 1]["x"][:, -1, 0] + 1)
        torch.testing.assert_close(batch["last"][..., 0], x)
        torch.testing.assert_close(y, x[..., None] + torch.arange(1, 4))  # next 3 steps
        assert y.max() < 400
    assert batches[0]["x"][:, 0, 0].tolist() == [100 + b * ds.stream_len for b in range(4)]


def test_datamodule_stateful_loader_in_order():
    dm = TimeSeriesDataModule(**SMALL, stateful=True, chunk_len=10, season_length=7)
    batches = list(dm.train_dataloader())
    ds = dm.datasets["train"]
    assert len(batches) == ds.n_chunks and batches[0]["x"].shape == (16, 10, 1)
    assert batches[0]["y"].shape == batches[0]["seasonal"].shape == (16, 10, 5, 1)
    for k in (0, len(batches) - 1):
        p = ds.position(k * 16 + 3)  # chunk k of stream 3
        torch.testing.assert_close(batches[k]["x"][3], dm.data[p : p + 10])
    assert next(iter(dm.val_dataloader()))["x"].shape == (16, 20, 1)  # evaluation: windows


def test_stateful_state_carried_detached_and_reset():
    torch.manual_seed(0)
    dm = TimeSeriesDataModule(**SMALL, stateful=True, chunk_len=8)
    net = StatefulForecaster(hidden_size=6, output_len=5)
    task = ForecastingTask(net, stateful=True)
    batches = list(dm.train_dataloader())[:6]
    with torch.no_grad():  # batch 2 continues from the state after reading batches 0 and 1
        preds = [task._forecast(b, "train")[0] for b in batches[:3]]
        whole = torch.cat([b["x"] for b in batches[:3]], 1)  # the three chunks of each stream
        expected = net.forward_steps(whole)[0][:, -8:].flatten(0, 1)
        torch.testing.assert_close(preds[2], expected)
    task.on_train_epoch_start()
    assert task.carried_state is None
    opt = torch.optim.SGD(task.parameters(), lr=0.01)
    for batch in batches:
        loss = task._shared_step(batch, "train")
        loss.backward()  # works every step: the graph never reaches back into earlier batches
        opt.step()
        opt.zero_grad()
        assert all(not s.requires_grad and s.grad_fn is None for s in task.carried_state)
    with pytest.raises(ValueError, match="forward_steps"):
        ForecastingTask(RNNForecaster(), stateful=True)
    with pytest.raises(ValueError, match="set data stateful: true"):
        ForecastingTask(net, stateful=True)._forecast(next(iter(dm.val_dataloader())), "train")


def test_stateful_fit_resets_state_every_epoch(tmp_path):
    class Spy(Callback):
        def __init__(self) -> None:
            self.seen = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.seen.append((batch_idx, pl_module.carried_state is None))

    dm = TimeSeriesDataModule(**SMALL, stateful=True, chunk_len=10)
    task = ForecastingTask(StatefulForecaster(hidden_size=4, output_len=5), stateful=True)
    spy = Spy()
    trainer = L.Trainer(
        max_epochs=2, limit_train_batches=3, limit_val_batches=2, logger=False, callbacks=[spy],
        enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(task, datamodule=dm)
    assert spy.seen == [(0, True), (1, False), (2, False)] * 2
    assert "val/rel_seasonal" in trainer.callback_metrics


# ---- pooling ----------------------------------------------------------------------------------
@pytest.mark.parametrize("pooling", ["mean", "max", "attention"])
def test_forecaster_pooling_gradients(pooling):
    torch.manual_seed(0)
    net = RNNForecaster(input_size=2, output_len=3, hidden_size=5, pooling=pooling, layer_norm=True)
    out, weights = net(torch.randn(4, 7, 2), return_attention=True)
    assert out.shape == (4, 3, 1)
    if pooling == "attention":
        torch.testing.assert_close(weights.sum(-1), torch.ones(4))
    _all_params_get_grad(net, out.pow(2).sum())


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_forecaster_last_pooling_reads_top_layer_ends(cell):
    """Expected value from PyTorch's own module: forward direction at step L - 1, backward at 0."""
    torch.manual_seed(0)
    net = RNNForecaster(
        input_size=2, output_len=3, hidden_size=5, cell=cell, num_layers=2, bidirectional=True
    )
    assert not [k for k in net.state_dict() if k.startswith("pool")]  # old checkpoints load
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    reference = rnn(2, 5, num_layers=2, bidirectional=True, batch_first=True)
    reference.load_state_dict(net.encoder.rnn.state_dict())
    x = torch.randn(4, 7, 2)
    output = reference(x)[0]  # (N, L, 2 * H): the top layer, both directions
    pooled = torch.cat([output[:, -1, :5], output[:, 0, 5:]], -1)
    torch.testing.assert_close(net(x), net.head(net.norm(pooled)).view(4, 3, 1))
