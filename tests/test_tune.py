"""Optuna search on the tiny sine forecaster: trials are CLI fits in their own directories,
a pruner stops a run after its first validation, the report and best.yaml are written and
best.yaml trains to the best trial's value, and a SIGKILLed worker's study continues."""

import multiprocessing
import os
import signal
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.storages import RetryFailedTrialCallback
from optuna.trial import TrialState

from src import tune
from src.cli import main
from src.search.space import SearchSpace, SpaceError, cli_args
from tests.test_cli import ROOT

LR = "model.init_args.optimizer.init_args.lr"
HIDDEN = "model.init_args.net.init_args.hidden_size"
SPACE = {
    "metric": "val/mse",
    "direction": "minimize",
    "settings": {
        "trainer.max_epochs": 2,
        "trainer.enable_progress_bar": False,
        "trainer.enable_model_summary": False,
        "data.init_args.n_points": 400,
        "data.init_args.input_len": 20,
        "data.init_args.output_len": 5,
        "data.init_args.batch_size": 32,
    },
    "params": {
        LR: {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
        HIDDEN: {"type": "int", "low": 4, "high": 8, "step": 4},
    },
}


class PruneTrialOne(optuna.pruners.BasePruner):
    """Prunes trial 1 at its first report and nothing else."""

    def prune(self, study, trial) -> bool:
        return trial.number == 1


def tune_args(tmp_path, trials: int, **space_changes) -> list[str]:
    space = {**SPACE, **space_changes}
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    config = str(ROOT / "configs" / "sine_lstm.yaml")
    return [
        *("--config", config, "--space", str(tmp_path / "space.yaml"), "--trials", str(trials)),
        *("--sampler", "random", "--seed", "0", "--study-dir", str(tmp_path / "study")),
    ]


def test_search_prunes_writes_report_and_best_yaml_trains(tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)
    args = tune.parse_args(tune_args(tmp_path, trials=3))
    summary = tune.run(args, pruner={"class_path": "tests.test_tune.PruneTrialOne"})
    study_dir = tmp_path / "study"
    study = optuna.load_study(study_name="space", storage=f"sqlite:///{study_dir / 'study.db'}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.PRUNED] + [
        TrialState.COMPLETE
    ]
    pruned = study.trials[1]
    assert list(pruned.intermediate_values) == [1] and pruned.user_attrs["epochs"] == 1.0
    assert study.trials[0].user_attrs["epochs"] == 2.0
    assert summary | {"plots": None, "saved": None} == {
        "trials": 3, "complete": 2, "pruned": 1, "fail": 0, "plots": None, "saved": None,
        "best": str(study_dir / "best.yaml"),
    }  # fmt: skip
    assert 0 < summary["saved"] < 1 / 3  # 1 of 6 steps left out, priced at its trial's rate
    for trial in study.trials:  # each trial ran in its own directory with its config saved
        saved = yaml.safe_load(Path(trial.user_attrs["config"]).read_text())
        assert trial.user_attrs["config"].startswith(str(study_dir / f"trial_{trial.number:04d}"))
        net = saved["model"]["init_args"]["net"]["init_args"]
        assert net["hidden_size"] == trial.params[HIDDEN]
        run = study_dir / f"trial_{trial.number:04d}" / "sine_lstm" / "version_0"
        assert (run / "checkpoints" / "last.ckpt").is_file()
    lines = (study_dir / "trials.csv").read_text().splitlines()
    assert lines[0].startswith("trial,state,value,epochs,seconds,") and len(lines) == 4
    table = (study_dir / "trials.md").read_text()
    assert "| 1 | PRUNED |" in table and "Pruning: 5 of 6 validation steps trained" in table
    for plot in ("history", "intermediate", "importance"):
        assert (study_dir / f"{plot}.png").stat().st_size > 1000
    tune.run(tune.parse_args(tune_args(tmp_path, trials=3) + ["--report-only"]))
    assert len(list((study_dir / "tensorboard").glob("events.out.tfevents.*"))) == 1

    best = study_dir / "best.yaml"
    assert "OptunaPruning" not in best.read_text()
    cli = main(["fit", "--config", str(best)])
    checkpoint = cli.trainer.checkpoint_callback
    run = tmp_path / "lightning_logs" / "best" / "version_0"  # a run of its own, not a trial's
    assert Path(checkpoint.dirpath).resolve() == run / "checkpoints"
    assert checkpoint.best_model_score.item() == pytest.approx(study.best_value, rel=1e-6)


def _worker(argv: list[str]) -> None:
    import torch

    torch.set_num_threads(1)
    tune.main(argv)


def test_killed_worker_study_continues(tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)
    settings = SPACE["settings"] | {"trainer.max_epochs": 1}
    argv = tune_args(tmp_path, trials=2, settings=settings) + ["--heartbeat", "1"]
    storage = f"sqlite:///{tmp_path / 'study' / 'study.db'}"
    worker = multiprocessing.get_context("fork").Process(target=_worker, args=(argv,))
    worker.start()
    running = tmp_path / "study" / "trial_0001"  # made when the second trial starts to fit
    deadline = time.monotonic() + 120
    while not running.exists() and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    assert worker.exitcode == -signal.SIGKILL
    first = optuna.load_study(study_name="space", storage=storage).trials[0]
    time.sleep(2.5)  # the killed trial's heartbeat is now older than the grace period
    tune.run(tune.parse_args(argv))
    trials = optuna.load_study(study_name="space", storage=storage).trials
    states = [t.state for t in trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert trials[0].value == first.value  # the finished trial was kept, not re-run
    assert RetryFailedTrialCallback.retried_trial_number(trials[2]) == 1
    assert trials[2].params == trials[1].params  # the killed trial ran again


def test_space_errors_name_the_key_and_fix(tmp_path):
    def load(params):
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump({"metric": "val/acc", "params": params}))
        return SearchSpace.load(path)

    with pytest.raises(SpaceError, match="a.b needs `type:` float, int or categorical"):
        load({"a.b": {"low": 1, "high": 2}})
    with pytest.raises(SpaceError, match=r"a \(int\) needs \['high'\]"):
        load({"a": {"type": "int", "low": 1}})
    with pytest.raises(SpaceError, match="`when` names b, which must be a parameter above it"):
        load({"a": {"type": "int", "low": 1, "high": 2, "when": {"b": 1}}})
    space = load(
        {
            "a": {"type": "categorical", "choices": ["x", "y"]},
            "b": {"type": "float", "low": 0.0, "high": 1.0, "when": {"a": "y"}},
        }
    )
    with pytest.raises(SpaceError, match="b: the grid sampler cannot take a conditional"):
        space.grid()
    study = optuna.create_study()
    study.enqueue_trial({"a": "x"})
    study.enqueue_trial({"a": "y", "b": 0.5})
    assert [space.suggest(study.ask()) for _ in range(2)] == [{"a": "x"}, {"a": "y", "b": 0.5}]
    assert cli_args({"x.y": "gru", "x.z": 0.5, "x.w": True}) == [
        "--x.y=gru",
        "--x.z=0.5",
        "--x.w=true",
    ]
