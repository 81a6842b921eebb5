"""Bad inputs tried as a new user would, each through ``python -m src.cli`` in a fresh process:
the command exits non-zero, its last stderr line is one ``error: ...`` line, nothing prints a
traceback, no file is overwritten or lost, and it takes under 10 s of CPU, start-up included."""

import gzip
import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
CONFIGS = ROOT / "configs"
OFFLINE = {"HF_ENDPOINT": "http://127.0.0.1:9"}  # nothing listens: the hub is unreachable


def _imdb(tmp: Path, train: bytes | None, name: str = "train.csv") -> list[str]:
    """IMDB from ``tmp/data``: the fixture's test split and ``train`` as ``name``; no directory
    at all when ``train`` is None."""
    data = tmp / "data"
    if train is not None:
        data.mkdir()
        shutil.copy(FIXTURES / "imdb" / "test.csv", data)
        (data / name).write_bytes(train)
    return [
        "fit",
        "--config",
        str(CONFIGS / "imdb_lstm.yaml"),
        "--data.init_args.data_dir",
        str(data),
        "--data.init_args.cache_dir",
        str(tmp / "cache"),
    ]


def _series(tmp: Path, csv: str | None, column: str = "[load]") -> list[str]:
    path = tmp / ("load.csv" if csv is not None else "missing.csv")
    if csv is not None:
        path.write_text(csv)
    data = "--data.init_args."
    config = str(CONFIGS / "sine_lstm.yaml")
    return ["fit", "--config", config, f"{data}series=csv", f"{data}csv_path={path}"] + [
        f"{data}target_columns={column}"
    ]


def _file(tmp: Path, name: str, text: str) -> Path:
    (tmp / name).write_text(text)
    return tmp / name


def _conllu(tmp: Path) -> list[str]:
    data = tmp / "ud"
    shutil.copytree(FIXTURES / "ud_ewt", data)
    with gzip.open(data / "en_ewt-ud-train.conllu.gz", "wt") as f:
        f.write("1\tA\ta\n\n")  # three columns instead of ten
    config = str(CONFIGS / "udpos_bilstm.yaml")
    return ["fit", "--config", config, "--data.init_args.data_dir", str(data)] + [
        "--data.init_args.cache_dir",
        str(tmp / "cache"),
    ]


def _corpus(tmp: Path, data: bytes) -> list[str]:
    config = str(CONFIGS / "charlm_imdb.yaml")
    path = tmp / "corpus.txt"
    path.write_bytes(data)
    return ["fit", "--config", config, "--data.init_args.path", str(path)] + [
        "--data.init_args.cache_dir",
        str(tmp / "cache"),
    ]


def _edited(tmp: Path, config: str, edit) -> list[str]:
    cfg = yaml.safe_load((CONFIGS / config).read_text())
    edit(cfg)
    (tmp / config).write_text(yaml.safe_dump(cfg))
    return ["fit", "--config", str(tmp / config)]


TRAIN = (FIXTURES / "imdb" / "train.csv").read_bytes()
ROWS = [f"{i},{i % 7 * 0.5}\n" for i in range(200)]
NET = "model.init_args.net.init_args."
SINE = ["fit", "--config", str(CONFIGS / "sine_lstm.yaml")]

# name -> (args for python -m src.cli, given tmp_path; regex the error line must match)
CASES = {
    "missing data dir": (
        lambda tmp: _imdb(tmp, None),
        "IMDB data not found: .*HF_HUB_OFFLINE=1.* set --data.data_dir",
    ),
    "typo in a config key": (
        lambda tmp: _edited(
            tmp,
            "sine_lstm.yaml",
            lambda c: c["model"]["init_args"]["net"]["init_args"].update(hidden_sise=8),
        ),
        f"unknown key '{NET}hidden_sise'; did you mean 'hidden_size'",
    ),
    "typo in a flag": (
        lambda tmp: [*SINE, "--trainer.max_epohcs=2"],
        "unknown key 'trainer.max_epohcs'; did you mean 'trainer.max_epochs'",
    ),
    "wrong value type": (
        lambda tmp: [*SINE, f"--{NET}hidden_size=x"],
        f"{NET}hidden_size: Expected a <class 'int'>",
    ),
    "unknown class": (
        lambda tmp: [*SINE, "--data.class_path=src.data.series.datamodule.TimeSeries"],
        "data.class_path: 'TimeSeries' not found in .* did you mean",
    ),
    "missing config file": (
        lambda tmp: ["fit", "--config", str(tmp / "nope.yaml")],
        "File does not exist",
    ),
    "invalid YAML": (
        lambda tmp: ["fit", "--config", str(_file(tmp, "bad.yaml", "model: [\n"))],
        "Problems parsing config",
    ),
    "wrong column names": (
        lambda tmp: _imdb(tmp, TRAIN.replace(b"text,label", b"review,sentiment", 1)),
        "no column 'text' or 'label'; the header is 'review,sentiment'",
    ),
    "header case": (
        lambda tmp: _imdb(tmp, TRAIN.replace(b"text,label", b"Text,Label", 1)),
        "the header is 'Text,Label'; column names are case-sensitive",
    ),
    "truncated gz": (
        lambda tmp: _imdb(tmp, gzip.compress(TRAIN)[:300], "train.csv.gz"),
        "train.csv.gz is a damaged or truncated compressed file",
    ),
    "empty file": (lambda tmp: _imdb(tmp, b""), "train.csv is empty"),
    "non-UTF-8 file": (
        lambda tmp: _imdb(tmp, TRAIN.decode().replace("Bad", "Caf\xe9").encode("latin-1")),
        "train.csv is not valid UTF-8",
    ),
    "ratings as labels": (
        lambda tmp: _imdb(tmp, TRAIN.replace(b",1\n", b",9\n")),
        "label 9 at row .* is not 0 or 1",
    ),
    "bad CSV series": (
        lambda tmp: _series(tmp, "time,load\n" + "".join(ROWS) + "200,oops\n"),
        "column load has 1 non-numeric values at rows 200",
    ),
    "series shorter than the window": (
        lambda tmp: _series(tmp, "time,load\n" + "".join(ROWS[:20])),
        "input_len \\+ output_len = 70 exceeds the train segment",
    ),
    "series column case": (
        lambda tmp: _series(tmp, "time,Load\n" + "".join(ROWS)),
        "columns \\['load'\\] not in load.csv.*case-sensitive",
    ),
    "missing series file": (
        lambda tmp: _series(tmp, None),
        "missing.csv' not found; check csv_path",
    ),
    "malformed CoNLL-U": (_conllu, "en_ewt-ud-train.conllu.gz"),
    "empty character corpus": (lambda tmp: _corpus(tmp, b""), "corpus.txt is empty"),
    "character corpus not UTF-8": (
        lambda tmp: _corpus(tmp, b"caf\xe9\n" * 99),
        "corpus.txt is not valid UTF-8",
    ),
}


def _hashes(*roots: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for root in roots
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _cli(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``python -m src.cli args``; its result, wall seconds and CPU seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **OFFLINE}
    env.pop("SEQLAB_TRACEBACK", None)
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "src.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return done, time.perf_counter() - start, cpu


def run_case(name: str, tmp_path: Path) -> None:
    """Run one case and check what a user sees and what is left on disk.

    The time limit is on the process's CPU time: on an idle 2-core machine the single-threaded
    start-up and error path take as long in wall time, and on a busy one the CPU time is still
    the work the command did (a hang or a retry loop shows in the wall time, limited to 60 s).
    """
    make, expected = CASES[name]
    args = make(tmp_path)
    before = _hashes(tmp_path, CONFIGS, FIXTURES)
    done, wall, cpu = _cli([*args, "--trainer.fast_dev_run=true"], tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0 and lines, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert lines[-1].startswith("error: "), lines[-3:]
    assert sum(line.startswith("error: ") for line in lines) == 1
    assert re.search(expected, lines[-1]), lines[-1]
    after = _hashes(tmp_path, CONFIGS, FIXTURES)
    assert {k: after.get(k) for k in before} == before  # nothing overwritten or lost
    print(f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU")  # the figures, with pytest -s
    assert cpu < 10.0 and wall < 60.0, (cpu, wall)


@pytest.mark.parametrize("name", ["typo in a config key", "truncated gz", "header case"])
def test_bad_input_is_one_line(name, tmp_path):
    run_case(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_matrix(name, tmp_path):
    run_case(name, tmp_path)
