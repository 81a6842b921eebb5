"""One folder per run: ``<root>/<experiment>/version_N/`` holds a run's TensorBoard events, its
resolved ``config.yaml`` and its ``checkpoints/``, and ``--ckpt_path last`` names one file."""

import contextlib
import re
import sys
from pathlib import Path

from lightning.pytorch.utilities.rank_zero import rank_zero_only

from src.errors import SeqLabError

ROOT_DIR = "lightning_logs"  # where runs go unless --trainer.default_root_dir says otherwise
_VERSION = re.compile(r"version_(\d+)$")


def experiment_name(config_files: list) -> str:
    """The experiment's name: its config file's stem (the first ``--config``; presets follow)."""
    return Path(str(config_files[0])).stem if config_files else "default"


def versions(base: Path) -> dict[int, Path]:
    """``version_N`` folders under ``base`` by ``N``."""
    found = {}
    if base.is_dir():
        for path in base.iterdir():
            match = _VERSION.match(path.name)
            if match and path.is_dir():
                found[int(match.group(1))] = path
    return found


def claim_version(base: Path) -> int:
    """Create the next free ``version_N`` folder and return ``N``.

    ``mkdir`` fails if the folder exists, so two runs started together never share a folder (a
    logger that only picks ``max + 1`` would give both the same one).
    """
    base.mkdir(parents=True, exist_ok=True)
    n = max(versions(base), default=-1) + 1
    while True:
        try:
            (base / f"version_{n}").mkdir()
            return n
        except FileExistsError:
            n += 1


def last_checkpoint(base: Path, version: int | None) -> Path:
    """This experiment's ``last.ckpt``: the given version's, else the newest one written."""
    if version is not None:
        path = base / f"version_{version}" / "checkpoints" / "last.ckpt"
        if not path.is_file():
            raise SeqLabError(f"--ckpt_path last: {path} does not exist; check the version")
        return path
    found = [p / "checkpoints" / "last.ckpt" for p in versions(base).values()]
    found = [p for p in found if p.is_file()]
    if not found:
        raise SeqLabError(
            f"--ckpt_path last: no last.ckpt under {base}/version_*/checkpoints/; train first"
            " or give --ckpt_path <file>"
        )
    return max(found, key=lambda p: p.stat().st_mtime_ns)


def best_checkpoint(base: Path) -> Path:
    """The checkpoint that scored best in the newest run of the experiment folder ``base``, as
    that run's ``last.ckpt`` records it (its ``ModelCheckpoint``'s ``best_model_path``)."""
    from src.checkpoints.files import load_checkpoint  # torch-heavy: only when asked

    last = last_checkpoint(base, None)
    states = load_checkpoint(last).get("callbacks", {})
    paths = [s["best_model_path"] for k, s in states.items() if k.startswith("ModelCheckpoint")]
    found = [Path(p) if Path(p).is_file() else last.parent / Path(p).name for p in paths if p]
    found = [p for p in found if p.is_file()]
    if not found:
        raise SeqLabError(
            f"{last} records no best checkpoint that exists (monitor a metric in the config's "
            "checkpoint section), or give the checkpoint file itself"
        )
    return found[0]


class RunDirs:
    """Fills in a parsed CLI config's run folder before the classes are built.

    - the TensorBoard logger's ``name`` defaults to the experiment's config file stem and its
      ``save_dir`` follows ``trainer.default_root_dir``, so that one setting moves every output;
    - each new run claims its own ``version_N`` folder (on rank 0; other ranks write nothing);
    - ``--ckpt_path last`` becomes this experiment's newest ``last.ckpt`` (or that of
      ``--trainer.logger.init_args.version N``), and is printed;
    - ``fit`` from a checkpoint of this experiment continues in that checkpoint's folder.

    Args:
        config: The subcommand's parsed config (a jsonargparse Namespace).
        subcommand: ``fit``, ``validate``, ``test`` or ``predict`` (``None`` without one).
    """

    def __init__(self, config, subcommand: str | None) -> None:
        self.config, self.subcommand = config, subcommand
        self.claimed: Path | None = None  # the new folder this command created, if any

    def resolve(self) -> None:
        logger = self.config.trainer.get("logger")
        args = getattr(logger, "init_args", None)
        if args is None or "save_dir" not in args or "name" not in args:
            return  # no logger, or one that does not write folders of this kind
        if args.name is None:
            args.name = experiment_name(self.config.get("config") or [])
        if args.save_dir == ROOT_DIR:  # the default follows --trainer.default_root_dir
            args.save_dir = self.config.trainer.default_root_dir or ROOT_DIR
        base = Path(args.save_dir) / args.name
        ckpt_path = self.config.get("ckpt_path")
        if ckpt_path == "last":
            ckpt_path = last_checkpoint(base, args.get("version"))
            self.config.ckpt_path = str(ckpt_path)
            print(f"seqlab: --ckpt_path last -> {ckpt_path}", file=sys.stderr)
        if args.get("version") is None and rank_zero_only.rank == 0:
            resumed = self._run_folder(base, ckpt_path) if self.subcommand == "fit" else None
            if resumed is None:
                resumed = claim_version(base)
                self.claimed = base / f"version_{resumed}"
            args.version = resumed

    def release(self) -> None:
        """Remove the folder this command claimed if nothing was written in it (the command
        failed before its first output), so that a mistyped command leaves no empty run."""
        if self.claimed is not None:
            with contextlib.suppress(OSError):  # a folder with anything in it stays
                self.claimed.rmdir()

    @staticmethod
    def _run_folder(base: Path, ckpt_path) -> int | None:
        """``N`` when ``ckpt_path`` lies in ``base/version_N/checkpoints/``."""
        if ckpt_path is None or str(ckpt_path) in ("best", "hpc", "registry"):
            return None
        folder = Path(ckpt_path).resolve().parent
        if folder.name != "checkpoints" or folder.parent.parent != base.resolve():
            return None
        match = _VERSION.match(folder.parent.name)
        return int(match.group(1)) if match else None
