"""Command line: ``python -m src.cli {fit,validate,test,predict} --config configs/<exp>.yaml``."""

from lightning.pytorch.cli import LightningCLI

from src.runtime import apply_cpu_settings

# (datamodule attribute, network / task argument): sizes known only once the data is prepared,
# and the data's training mode (stateful streams).
# A link whose source attribute or target argument is absent in the chosen classes is skipped.
LINKS = [
    ("data.vocab_size", "model.init_args.net.init_args.vocab_size"),
    ("data.num_classes", "model.init_args.net.init_args.num_classes"),
    ("data.num_classes", "model.init_args.num_classes"),
    ("data.input_size", "model.init_args.net.init_args.input_size"),
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


class SeqLabCLI(LightningCLI):
    """LightningCLI with the datamodule -> model size links."""

    def add_arguments_to_parser(self, parser) -> None:
        for source, target in LINKS:
            parser.link_arguments(source, target, apply_on="instantiate")


def main(args: list[str] | None = None, run: bool = True) -> SeqLabCLI:
    """Entry point; ``args``/``run`` let tests drive the CLI in-process."""
    apply_cpu_settings()  # heap reuse and no subnormal floats, before any thread pool starts
    return SeqLabCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


if __name__ == "__main__":
    main()
