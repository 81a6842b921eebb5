"""Output layers for a 30k-word language model on CPU: adaptive softmax (Grave et al. 2017) against
a full softmax and a full softmax tied to the embedding (Press & Wolf 2017).

python -m bench.bench_softmax [--embedding-dim 256 --hidden-size 512 --threads 1]
python -m bench.bench_softmax --train-steps 150 --stream data/cache/imdb/lm-<key>  # + quality

Times a training step (forward, backward, Adam) of :class:`~src.models.word_lm.WordLM` on batches
of 64 x 70 tokens drawn from a Zipf law over the vocabulary, in process CPU time (robust to other
jobs on the machine; on one thread it is the step's cost). With ``--train-steps`` each variant
also trains that many steps on the cached IMDB token stream (``train.npy``, ``val.npy`` of
:class:`~src.data.imdb.lm.IMDBLMDataModule`) from the same seed and reports the perplexity on the
first ``--val-tokens`` validation tokens: the cost of the cheaper softmax in quality per step.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from src.data.chars.source import CharStreamDataset
from src.models.word_lm import WordLM

VARIANTS = {"adaptive": (2000, 10000), "full": (), "full_tied": ()}


def build(variant: str, vocab: int, embedding_dim: int, hidden_size: int) -> nn.Module:
    net = WordLM(vocab, embedding_dim, hidden_size, cutoffs=VARIANTS[variant])
    if variant == "full_tied":  # project H -> E, then the embedding matrix scores every token
        net.head = nn.Sequential(
            nn.Linear(hidden_size, embedding_dim), nn.Linear(embedding_dim, vocab)
        )
        net.head[1].weight = net.embedding.weight
        net.target_nats = lambda x, y, s=None: _tied_nats(net, x, y, s)
    return net


def _tied_nats(net: WordLM, x, y, state):
    output, state = net.features(x, state)
    logits = net.head(output).flatten(0, 1)
    return nn.functional.cross_entropy(logits, y.flatten(), reduction="none"), state


def step_cost(net: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean process CPU seconds of a training step over ``batches`` (after one warm-up step)."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step(x, y):
        loss = net.target_nats(x, y)[0].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(*batches[0])
    start = time.process_time()
    for x, y in batches[1:]:
        step(x, y)
    return (time.process_time() - start) / (len(batches) - 1)


def quality(net: nn.Module, stream: Path, steps: int, val_tokens: int) -> float:
    """Validation perplexity after ``steps`` truncated-BPTT steps of Adam (lr 2e-3)."""
    train = CharStreamDataset(torch.from_numpy(np.load(stream / "train.npy")), 64, 70, True)
    val = CharStreamDataset(torch.from_numpy(np.load(stream / "val.npy")[:val_tokens]), 16, 70)
    opt, state = torch.optim.Adam(net.parameters(), lr=2e-3), None
    for k in range(steps):
        nats, state = net.target_nats(train[k]["x"], train[k]["y"], state)
        state = tuple(s.detach() for s in state)
        opt.zero_grad()
        nats.mean().backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
    net.eval()
    with torch.no_grad():
        total, count, state = 0.0, 0, None
        for k in range(len(val)):
            nats, state = net.target_nats(val[k]["x"], val[k]["y"], state)
            total, count = total + nats.sum().item(), count + nats.numel()
    return float(np.exp(total / count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab", type=int, default=30000)
    parser.add_argument("--embedding-dim", type=int, default=256)
    parser.add_argument("--hidden-size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per variant")
    parser.add_argument("--train-steps", type=int, default=0)
    parser.add_argument("--stream", type=Path, help="cache directory of IMDBLMDataModule")
    parser.add_argument("--val-tokens", type=int, default=100_000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    zipf = 1.0 / torch.arange(1, args.vocab + 1)
    draws = [torch.multinomial(zipf, 64 * 70, True, generator=gen).view(64, 70) for _ in range(2)]
    batches = [(draws[0], draws[1])] * (args.steps + 1)
    for variant in VARIANTS:
        torch.manual_seed(0)
        net = build(variant, args.vocab, args.embedding_dim, args.hidden_size)
        seconds = step_cost(net, batches)
        row = {"variant": variant, "cpu_ms_per_step": round(1000 * seconds),
               "tokens_per_cpu_s": round(64 * 70 / seconds)}  # fmt: skip
        if args.train_steps:
            torch.manual_seed(0)
            net = build(variant, args.vocab, args.embedding_dim, args.hidden_size)
            row["val_ppl"] = round(quality(net, args.stream, args.train_steps, args.val_tokens), 1)
        print(json.dumps({**vars(args), "stream": str(args.stream), **row}), flush=True)


if __name__ == "__main__":
    main()
