"""Sample text from a character language-model checkpoint (char-rnn sampling, Karpathy 2015).

``python -m src.generate --ckpt_path lightning_logs/charlm_imdb/version_0/checkpoints/last.ckpt
--prompt "This movie" --length 300 --temperature 0.8 --top_k 20 --seed 0``
"""

import argparse
import sys
from pathlib import Path

from src.checkpoints import load_checkpoint
from src.errors import SeqLabError, exit_on_error
from src.models.char_rnn import CharRNN
from src.runtime import apply_cpu_settings
from src.tasks.language_model import LanguageModelTask


def load_language_model(ckpt_path: str | Path) -> LanguageModelTask:
    """Rebuild a :class:`LanguageModelTask` from its checkpoint alone (no data, no config).

    Raises:
        SeqLabError: the file is missing or damaged (its checksums are checked), or it is not a
            character language model's checkpoint.
    """
    path = Path(ckpt_path)
    ckpt = load_checkpoint(path)
    hparams, net_config = ckpt.get("hyper_parameters", {}), ckpt.get("net_config")
    if not hparams.get("vocab") or net_config is None:
        raise SeqLabError(
            f"{path} is not a character language-model checkpoint (no vocabulary or net config); "
            "train one with python -m src.cli fit --config configs/charlm_imdb.yaml"
        )
    task = LanguageModelTask(CharRNN(**net_config), vocab=hparams["vocab"])
    task.load_state_dict(ckpt["state_dict"])
    return task.eval()


def main(argv: list[str] | None = None) -> str:
    """Parse ``argv``, print the prompt and its sampled continuation, and return them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt_path", required=True, help="checkpoint of a LanguageModelTask")
    parser.add_argument("--prompt", default="", help="text to continue ('' starts a new review)")
    parser.add_argument("--length", type=int, default=300, help="characters to sample")
    parser.add_argument("--temperature", type=float, default=0.8, help="softmax temperature")
    parser.add_argument("--top_k", type=int, default=None, help="sample among the k most likely")
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible samples")
    args = parser.parse_args(argv)
    apply_cpu_settings()
    task = load_language_model(args.ckpt_path)
    text = task.generate(args.prompt, args.length, args.temperature, args.top_k, args.seed)
    print(text)
    return text


if __name__ == "__main__":
    exit_on_error(lambda: main(sys.argv[1:]))
