"""Every notebook in ``notebooks/`` runs top to bottom in a fresh Jupyter kernel, and is committed
without outputs."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds per cell; a whole notebook takes well under a minute
CLEAR = (
    "clear it with `.venv/bin/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb` "
    "(needs jupyterlab or nbconvert) or Jupyter's 'Clear All Outputs', then save"
)


@pytest.fixture(autouse=True)
def _venv_kernel(monkeypatch):
    # ipykernel's wheel installs the kernelspec "python3" into the environment (sys.prefix); it
    # launches "python", which jupyter_client replaces with this interpreter. jupyter_core already
    # prefers the environment's specs to a user-level "python3" (~/.local/share/jupyter, maybe
    # another Python without the project) inside a venv; this makes it so outside one too.
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "1")
    # The kernel runs in tmp_path: without this it would import whichever src/ is installed in
    # the environment (an editable install of another checkout), not the one under test.
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))


def test_notebooks_found():
    assert NOTEBOOKS, "no notebooks/*.ipynb found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path):
    nb = nbformat.read(path, as_version=4)
    where = (
        f"import src\nassert src.__file__ == {str(ROOT / 'src' / '__init__.py')!r}, src.__file__"
    )
    nb.cells.insert(0, nbformat.v4.new_code_cell(where))  # the code under test is this checkout's
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # kernel cwd: files land in tmp_path
    )
    client.execute()  # raises CellExecutionError with the failing cell and its traceback


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_committed_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: code cells {dirty} hold outputs; {CLEAR}"
