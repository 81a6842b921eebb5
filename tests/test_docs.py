"""The README and docs/ say only what a reader can check: no planning vocabulary, files and
modules they name exist, and the README's data-free commands run as written."""

import re
import shlex
import sys
from pathlib import Path

import pytest

from src.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
# Words that refer to how the project was planned rather than to what it is: the word "seeds"
# (name the recipe instead), work sessions, issues, and spec section numbers such as "S1.9".
PLANNING = [
    re.compile(r"\bseeds\b", re.IGNORECASE),
    re.compile(r"\bsessions?\b(?!\.intra_op)", re.IGNORECASE),  # not onnxruntime's config keys
    re.compile(r"\bissues?\b", re.IGNORECASE),
    re.compile(r"\bS\d+\.\d+\b"),
]
CHECKED = ("src", "bench", "configs", "docs", "notebooks", "README.md")
SUFFIXES = {".py", ".md", ".ipynb", ".yaml"}
# Configs whose data is generated, so their commands need no download or local copy.
DATA_FREE = re.compile(r"configs/(sine_|multivariate_|anomaly_|reverse_attention)")
NEEDS_HARDWARE = re.compile(r"configs/trainer/(gpu|ddp|slurm)\.yaml")


def planning_words(paths: list[Path]) -> list[str]:
    """``file:line: text`` of every line of ``paths`` (files or folders) with a planning word."""
    hits = []
    for path in paths:
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.suffix not in SUFFIXES or not file.is_file():
                continue
            lines = file.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines, 1):
                if any(p.search(line) for p in PLANNING):
                    name = file.relative_to(ROOT) if file.is_relative_to(ROOT) else file
                    hits.append(f"{name}:{number}: {line.strip()}")
    return hits


def bash_commands(markdown: str) -> list[str]:
    """The commands of the ```bash blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            command = " ".join(shlex.split(line, comments=True))
            if command:
                commands.append(command)
    return commands


def test_no_planning_words():
    hits = planning_words([ROOT / name for name in CHECKED])
    assert not hits, "planning words (describe what the thing is instead):\n" + "\n".join(hits)


def test_the_planning_check_names_file_and_line(tmp_path):
    planted = tmp_path / "module.py"
    planted.write_text('"""A forecaster."""\n\nseed = 1  # fine\n# the seeds\' recipe\n')
    (tmp_path / "notes.md").write_text("As in S1.9 of the spec.\nFixed in this session.\n")
    (tmp_path / "data.csv").write_text("seeds\n")  # not a checked file type
    assert planning_words([tmp_path]) == [
        f"{planted}:4: # the seeds' recipe",
        f"{tmp_path / 'notes.md'}:1: As in S1.9 of the spec.",
        f"{tmp_path / 'notes.md'}:2: Fixed in this session.",
    ]


def test_readme_is_a_front_door():
    text = README.read_text()
    assert len(text.splitlines()) <= 250, "README.md over 250 lines: move detail to docs/"
    commands = bash_commands(text)
    assert "make install" in commands and "make test" in commands  # what CI runs


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_named_files_modules_and_links_exist(doc):
    text = doc.read_text()
    missing = [c for c in re.findall(r"configs/[\w/]+\.yaml", text) if not (ROOT / c).is_file()]
    for module in re.findall(r"python -m ([\w.]+)", text):
        path = ROOT / module.replace(".", "/")
        if not (path.with_suffix(".py").is_file() or (path / "__main__.py").is_file()):
            missing.append(f"python -m {module}")
    for link in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):  # relative Markdown links
        if not (doc.parent / link).exists():
            missing.append(link)
    assert not missing, f"{doc.name} names what does not exist: {missing}"


def readme_runs() -> list[str]:
    """The README's ``python -m src.cli`` commands that need neither data nor a checkpoint nor
    a GPU: those of the generated-data configs, and every ``--print_config``."""
    runs = []
    for command in bash_commands(README.read_text()):
        if not command.startswith("python -m src.cli "):
            continue
        if "--ckpt_path" in command or NEEDS_HARDWARE.search(command):
            continue
        if "--print_config" in command or DATA_FREE.search(command):
            runs.append(command)
    return runs


def test_readme_runs_include_the_main_job():
    assert "python -m src.cli fit --config configs/sine_lstm.yaml" in readme_runs()


@pytest.mark.parametrize("command", readme_runs())
def test_readme_command_runs(command, tmp_path, monkeypatch, capsys, one_thread):
    """Each command as written, from a fresh directory, with one batch per stage added: the full
    fits take minutes each and are run by hand, with their figures in docs/results.md."""
    monkeypatch.chdir(tmp_path)  # logs and checkpoints land here; configs are read from ROOT
    monkeypatch.setattr(sys, "argv", ["python -m src.cli"])  # the arguments are ``args`` only
    args = [str(ROOT / a) if a.startswith("configs/") else a for a in shlex.split(command)[3:]]
    if "--print_config" in args:
        with pytest.raises(SystemExit) as done:
            main(args)
        assert done.value.code in (None, 0) and "model:" in capsys.readouterr().out
        return
    cli = main([*args, "--trainer.fast_dev_run", "true"])
    assert cli.trainer.state.finished
