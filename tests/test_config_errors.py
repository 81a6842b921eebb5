"""Configuration mistakes end in one line naming the key, with the closest valid key or value."""

import sys
from pathlib import Path

import pytest
import yaml

from src.cli import main
from src.cli_errors import one_line
from src.errors import SeqLabError

ROOT = Path(__file__).resolve().parents[1]
SINE = ROOT / "configs" / "sine_lstm.yaml"

NESTED = """Parser key "model":
  Does not validate against any of the Union subtypes
  Subtypes: [<class 'lightning.pytorch.core.module.LightningModule'>, <class 'NoneType'>]
  Errors:
    - Problem with given class_path 'src.tasks.forecasting.ForecastingTask':
        Parser key "net":
          Problem with given class_path 'src.models.forecaster.RNNForecaster':
            Option 'hidden_sise' is not accepted
    - Expected a <class 'NoneType'>
  Given value type: <class 'dict'>
  Given value: {'class_path': 'src.tasks.forecasting.ForecastingTask'}"""


def test_nested_report_becomes_one_line_with_the_closest_argument():
    assert one_line(NESTED) == (
        "unknown key 'model.init_args.net.init_args.hidden_sise'; did you mean 'hidden_size'?"
    )
    wrong_type = NESTED.replace(
        "Option 'hidden_sise' is not accepted",
        "Parser key \"hidden_size\":\n  Expected a <class 'int'>. Got value: abc",
    )
    assert one_line(wrong_type) == (
        "model.init_args.net.init_args.hidden_size: Expected a <class 'int'>. Got value: abc"
    )
    no_class = NESTED.replace(
        "Option 'hidden_sise' is not accepted",
        "module 'src.models.forecaster' has no attribute 'RNNForcaster'",
    )
    assert one_line(no_class) == (
        "model.init_args.net.class_path: 'RNNForcaster' not found in src.models.forecaster; "
        "did you mean 'src.models.forecaster.RNNForecaster'?"
    )
    choice = "argument subcommand: invalid choice: 'fti' (choose from 'fit', 'test')"
    assert one_line(choice).endswith("; did you mean 'fit'?")


def _run(args, tmp_path, monkeypatch) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["python -m src.cli"])
    with pytest.raises(SeqLabError) as err:
        main(args)
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda c: c["model"]["init_args"]["net"]["init_args"].update(hidden_sise=8),
            "unknown key 'model.init_args.net.init_args.hidden_sise'; did you mean 'hidden_size'?",
        ),
        (
            lambda c: c["trainer"].update(max_epoch=3),
            "unknown key 'trainer.max_epoch'; did you mean 'trainer.max_epochs'?",
        ),
        (
            lambda c: c.update(checkpont=c.pop("checkpoint")),
            "unknown key 'checkpont.mode'; did you mean 'checkpoint.mode'?",
        ),
        (
            lambda c: c["data"]["init_args"].update(series="sinus"),
            "data.init_args.series: 'sinus' is not one of 'sine', ",
        ),
    ],
)
def test_typos_in_a_config_file(tmp_path, monkeypatch, edit, expected):
    config = yaml.safe_load(SINE.read_text())
    edit(config)
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(config))
    assert _run(["fit", "--config", str(path)], tmp_path, monkeypatch).startswith(expected)


def test_typos_on_the_command_line(tmp_path, monkeypatch):
    args = ["fit", "--config", str(SINE), "--trainer.acelerator", "cpu"]
    message = _run(args, tmp_path, monkeypatch)
    assert message == "unknown key 'trainer.acelerator'; did you mean 'trainer.accelerator'?"
    args = ["fit", "--config", str(tmp_path / "missing.yaml")]
    assert "File does not exist" in _run(args, tmp_path, monkeypatch)
