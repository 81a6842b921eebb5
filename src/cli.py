"""Command line: ``python -m src.cli {fit,validate,test,predict} --config configs/<exp>.yaml``."""

from pathlib import Path

from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor
from lightning.pytorch.cli import LightningCLI

from src.callbacks.checkpoint import ModelCheckpoint
from src.callbacks.predictions import PredictionWriter
from src.callbacks.resume import ResumeState
from src.checkpoints import VerifiedCheckpointIO, check_model, check_task, load_checkpoint
from src.cli_errors import SeqLabParser
from src.errors import exit_on_error
from src.run_dirs import ROOT_DIR, RunDirs
from src.runtime import apply_cpu_settings, settings

# (datamodule attribute, network / task argument): sizes known only once the data is prepared,
# and the data's training mode (stateful streams).
# A link whose source attribute or target argument is absent in the chosen classes is skipped.
LINKS = [
    ("data.vocab_size", "model.init_args.net.init_args.vocab_size"),
    ("data.num_classes", "model.init_args.net.init_args.num_classes"),
    ("data.num_classes", "model.init_args.num_classes"),
    ("data.input_size", "model.init_args.net.init_args.input_size"),
    ("data.input_len", "model.init_args.net.init_args.input_len"),
    ("data.output_len", "model.init_args.net.init_args.output_len"),
    ("data.n_targets", "model.init_args.net.init_args.output_size"),
    ("data.target_mean", "model.init_args.target_mean"),
    ("data.target_std", "model.init_args.target_std"),
    ("data.output_len", "model.init_args.horizon"),
    ("data.stateful", "model.init_args.stateful"),
    ("data.src_vocab_size", "model.init_args.net.init_args.src_vocab_size"),
    ("data.tgt_vocab_size", "model.init_args.net.init_args.tgt_vocab_size"),
    ("data.vocab", "model.init_args.vocab"),
    ("data.char_vocab_size", "model.init_args.net.init_args.char_vocab_size"),
    ("data.num_tags", "model.init_args.net.init_args.num_tags"),
    ("data.num_tags", "model.init_args.num_tags"),
    ("data.tag_names", "model.init_args.tag_names"),
]

# What every experiment shares, so that an experiment YAML holds only what makes it that
# experiment. Each run writes to <default_root_dir>/<experiment>/version_N/ (TensorBoard events,
# config.yaml, checkpoints/), the experiment named after its config file.
DEFAULTS = {
    "trainer.default_root_dir": ROOT_DIR,
    "trainer.log_every_n_steps": 20,
    "trainer.logger": {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": ROOT_DIR, "name": None, "default_hp_metric": False},
    },
    "checkpoint.filename": "epoch{epoch:02d}-step{step}",
    "checkpoint.auto_insert_metric_name": False,
    "checkpoint.save_last": True,
    "lr_monitor.logging_interval": "epoch",
}


class SeqLabCLI(LightningCLI):
    """LightningCLI with the shared callbacks, one folder per run, and the datamodule -> model
    size links.

    Top-level keys beside ``trainer`` / ``model`` / ``data``: ``checkpoint`` (ModelCheckpoint:
    ``monitor`` and ``mode`` name the validation metric that picks the best checkpoint),
    ``early_stopping`` (EarlyStopping on the same metric), ``lr_monitor`` and ``predictions``
    (the ``predict`` output file, see :class:`~src.callbacks.predictions.PredictionWriter`).
    """

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.add_lightning_class_args(PredictionWriter, "predictions")
        parser.link_arguments("checkpoint.monitor", "early_stopping.monitor")
        parser.link_arguments("checkpoint.mode", "early_stopping.mode")
        parser.set_defaults(DEFAULTS)
        for source, target in LINKS:
            parser.link_arguments(source, target, apply_on="instantiate")

    def parse_arguments(self, parser, args) -> None:
        super().parse_arguments(parser, args)
        # LightningCLI reads a --ckpt_path file's hyperparameters next, with torch.load: a damaged
        # or unsafe file must be refused first, with its one-line error
        config = self.config.get(self.config.get("subcommand") or "", self.config)
        path = config.get("ckpt_path")
        self._checked = (path, load_checkpoint(path)) if path and Path(path).is_file() else None
        if self._checked and config.get("model"):  # it would replace the config's task class
            check_task(self._checked[1], config.model.class_path, path)

    def __init__(self, *args, **kwargs) -> None:
        self._run_dirs: RunDirs | None = None
        try:
            super().__init__(*args, **kwargs)
        except BaseException:
            if self._run_dirs is not None:
                self._run_dirs.release()
            raise

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        self._run_dirs = RunDirs(config, self.subcommand)
        self._run_dirs.resolve()

    def after_instantiate_classes(self) -> None:
        # every checkpoint written atomically with a checksum and read back verified; random and
        # running-epoch state in each, so that a resumed fit repeats the uninterrupted one
        self.trainer.strategy.checkpoint_io = VerifiedCheckpointIO()
        self.trainer.callbacks.append(ResumeState())
        config = self.config[self.subcommand] if self.subcommand else self.config
        path = config.get("ckpt_path")
        if path and Path(path).is_file():  # refuse another model's checkpoint in one line
            checked = self._checked if self._checked and self._checked[0] == path else None
            checkpoint = checked[1] if checked else load_checkpoint(path)
            self._checked = None
            check_model(self.model, checkpoint, path, config.model.as_dict())

    def before_fit(self) -> None:
        # process-wide switches (allocator, subnormals, threads) change speed, not the model, so
        # they are environment settings; recorded with the run's hyperparameters all the same
        for logger in self.trainer.loggers:
            logger.log_hyperparams({"runtime": settings()})


def main(args: list[str] | None = None, run: bool = True) -> SeqLabCLI:
    """Entry point; ``args``/``run`` let tests drive the CLI in-process."""
    apply_cpu_settings()  # no subnormal floats (heap reuse on request), before any thread pool
    return SeqLabCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        parser_class=SeqLabParser,  # configuration errors as one line
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


if __name__ == "__main__":
    exit_on_error(main)
