"""python -m src.predict: every task predicts new input from its checkpoint alone (the training
data deleted), and every bad input is a one-line error with exit status 2."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from src.checkpoints.restore import restore
from src.predict.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def predict(capsys, monkeypatch, *args, stdin=None) -> list[dict]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    main([*map(str, args)])
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def fails(capsys, *args) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*map(str, args)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_classifier_predicts_file_and_stdin_as_the_model_does(
    tiny_checkpoint, tmp_path, capsys, monkeypatch
):
    ckpt, dm = tiny_checkpoint("imdb_bilstm")
    reviews = ["A wonderful film.<br /><br />I loved it", "dull", "bad " * 500, "x\x0cy\u2028z"]
    (tmp_path / "in.txt").write_text("\n".join(reviews) + "\n")
    rows = predict(capsys, monkeypatch, "--ckpt_path", ckpt, "--input", tmp_path / "in.txt")
    assert [set(r) for r in rows] == [{"label", "prob_negative", "prob_positive"}] * 4
    task = restore(ckpt).task
    batch = dm.encode_texts(reviews)  # the training datamodule's encoding, one padded batch
    with torch.no_grad():
        probs = task(batch["tokens"], batch["lengths"]).softmax(-1)
    got = torch.tensor([[r["prob_negative"], r["prob_positive"]] for r in rows])
    torch.testing.assert_close(got, probs, atol=1e-5, rtol=0)  # bucketed batches, same results
    assert [r["label"] for r in rows] == [dm.label_names[i] for i in probs.argmax(-1)]
    piped = predict(capsys, monkeypatch, "--ckpt_path", ckpt, stdin=reviews[0] + "\n")
    assert piped == rows[:1]
    table = tmp_path / "in.csv"
    pd.DataFrame({"id": [1, 2], "text": reviews[:2]}).to_csv(table, index=False)
    out = tmp_path / "out.csv"
    main(["--ckpt_path", str(ckpt), "--input", str(table), "--output", str(out)])
    assert pd.read_csv(out)["label"].tolist() == [r["label"] for r in rows[:2]]
    records = "\n".join(json.dumps({"text": t}) for t in reviews[:2])
    jsonl = predict(
        capsys, monkeypatch, "--ckpt_path", ckpt, "--input_format", "jsonl", stdin=records
    )
    assert jsonl == rows[:2]


def _raw_window_csv(dm, path: Path, start: int, dates: bool) -> None:
    """The series' raw values ``[start, start + input_len)`` as a CSV (optionally dated)."""
    values = dm.data[start : start + dm.input_len].numpy() * dm.std + dm.mean
    frame = pd.DataFrame(values, columns=dm.column_names)
    if dates:
        frame.insert(0, "date", pd.date_range("2024-03-01", periods=len(frame), freq="15min"))
    frame.to_csv(path, index=False)


def test_forecaster_forecasts_after_the_series_end_in_its_units(
    tiny_checkpoint, tmp_path, capsys, monkeypatch
):
    ckpt, dm = tiny_checkpoint("multivariate_lstm")
    start = int(dm.window_starts["test"][3])
    _raw_window_csv(dm, tmp_path / "s.csv", start, dates=True)
    rows = predict(capsys, monkeypatch, "--ckpt_path", ckpt, "--input", tmp_path / "s.csv")
    task = restore(ckpt).task
    x = dm.data[start : start + dm.input_len][None]  # the same window from the training data
    with torch.no_grad():
        expected = task.inverse_transform(task(x))[0, :, 0]
    assert [r["step"] for r in rows] == list(range(1, dm.output_len + 1))
    np.testing.assert_allclose([r["target"] for r in rows], expected.numpy(), atol=1e-4)
    last = pd.Timestamp("2024-03-01") + (dm.input_len - 1) * pd.Timedelta("15min")
    assert rows[0]["date"] == str(last + pd.Timedelta("15min"))
    assert rows[-1]["date"] == str(last + dm.output_len * pd.Timedelta("15min"))
    # other column names, mapped onto the model's channels in order; no dates, no date field
    frame = pd.read_csv(tmp_path / "s.csv").drop(columns="date")
    frame.columns = ["load", "temp", "wind"]
    frame.to_csv(tmp_path / "renamed.csv", index=False)
    args = ["--ckpt_path", ckpt, "--input", tmp_path / "renamed.csv", "--columns", "load,temp,wind"]
    renamed = predict(capsys, monkeypatch, *args)
    assert [r["target"] for r in renamed] == [r["target"] for r in rows]
    assert "date" not in renamed[0]
    # a one-step net forecast recursively; its record holds link values it does not take
    ckpt, dm = tiny_checkpoint("sine_recursive")
    _raw_window_csv(dm, tmp_path / "r.csv", int(dm.window_starts["test"][0]), dates=False)
    rows = predict(capsys, monkeypatch, "--ckpt_path", ckpt, "--input", tmp_path / "r.csv")
    assert [r["step"] for r in rows] == list(range(1, dm.output_len + 1))


def test_tagger_translator_anomaly_and_language_model_predict_without_data(
    tiny_checkpoint, tmp_path, capsys, monkeypatch
):
    ckpt, dm = tiny_checkpoint("udpos_bilstm")
    rows = predict(capsys, monkeypatch, "--ckpt_path", ckpt, stdin="The cat sat .\nRun !\n")
    assert [r["tokens"] for r in rows] == [["The", "cat", "sat", "."], ["Run", "!"]]
    assert [len(r["tags"]) for r in rows] == [4, 2]
    assert {t for r in rows for t in r["tags"]} <= set(dm.tag_names)

    ckpt, dm = tiny_checkpoint("multi30k_attention")
    source = "Ein Mann fährt Fahrrad.\nZwei Hunde spielen im Schnee.\n"
    rows = predict(capsys, monkeypatch, "--ckpt_path", ckpt, "--beam_size", "2", stdin=source)
    assert [r["source"] for r in rows] == source.splitlines()
    assert all(isinstance(r["translation"], str) for r in rows)

    ckpt, dm = tiny_checkpoint("anomaly_lstm_ae")
    a, b = dm.segments["test"]
    values = dm.data[a:b].numpy() * dm.std + dm.mean
    pd.DataFrame({"value": values[:, 0]}).to_csv(tmp_path / "a.csv", index=False)
    rows = predict(capsys, monkeypatch, "--ckpt_path", ckpt, "--input", tmp_path / "a.csv")
    threshold = float(restore(ckpt).task.threshold)
    assert [r["step"] for r in rows] == list(range(b - a))
    assert all(r["anomaly"] == (r["score"] > threshold) for r in rows)

    ckpt, _ = tiny_checkpoint("charlm_imdb")
    args = ["--ckpt_path", ckpt, "--length", "12", "--seed", "0"]
    rows = predict(capsys, monkeypatch, *args, stdin="the film\n")
    assert rows[0]["text"].startswith("the film") and len(rows[0]["text"]) == 8 + 12
    assert predict(capsys, monkeypatch, *args, stdin="the film\n") == rows  # seeded


def test_every_bad_input_is_a_one_line_error(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    imdb, _ = tiny_checkpoint("imdb_bilstm")
    series, dm = tiny_checkpoint("multivariate_lstm")
    (tmp_path / "x").write_text("a review\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("good\n\nbad\n"))
    assert "line 2 is empty" in fails(capsys, "--ckpt_path", imdb)
    monkeypatch.setattr(sys, "stdin", io.StringIO("<br /><br />\n"))
    assert "no words once HTML tags are removed" in fails(capsys, "--ckpt_path", imdb)
    (tmp_path / "reviews.csv").write_text("review,stars\ngreat,5\n")
    err = fails(capsys, "--ckpt_path", imdb, "--input", tmp_path / "reviews.csv")
    assert "no 'text' column" in err
    assert "not found" in fails(capsys, "--ckpt_path", imdb, "--input", tmp_path / "nope.txt")
    err = fails(capsys, "--ckpt_path", imdb, "--beam_size", "3", "--input", tmp_path / "x")
    assert "--beam_size does not apply to a ClassificationTask" in err
    _raw_window_csv(dm, tmp_path / "short.csv", 0, dates=True)
    short = pd.read_csv(tmp_path / "short.csv").iloc[:-1]
    short.to_csv(tmp_path / "short.csv", index=False)
    err = fails(capsys, "--ckpt_path", series, "--input", tmp_path / "short.csv")
    assert f"{dm.input_len - 1} rows, fewer than the model's input window of {dm.input_len}" in err
    short.drop(columns="covariate_2").to_csv(tmp_path / "cols.csv", index=False)
    err = fails(capsys, "--ckpt_path", series, "--input", tmp_path / "cols.csv")
    assert "lacks column(s) ['covariate_2']" in err
    # a text file for a forecaster: the checkpoint's task decides what the input must be
    assert "lacks column(s)" in fails(capsys, "--ckpt_path", series, "--input", tmp_path / "x")
    (tmp_path / "notes.ckpt").write_text("not a model")
    err = fails(capsys, "--ckpt_path", tmp_path / "notes.ckpt")
    assert "is truncated, damaged or not a checkpoint" in err
    (tmp_path / "cut.ckpt").write_bytes(imdb.read_bytes()[:5000])
    assert "damaged" in fails(capsys, "--ckpt_path", tmp_path / "cut.ckpt")


def test_command_line_error_exits_2_without_a_traceback(tiny_checkpoint):
    ckpt, _ = tiny_checkpoint("imdb_bilstm")
    command = [sys.executable, "-m", "src.predict", "--ckpt_path", str(ckpt)]
    bad = subprocess.run(command, input="\n", capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "error: standard input: line 1 is empty; give one review per line"
    ]
