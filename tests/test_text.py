"""Tests for the text helpers: cleaning, tables, tokenizers, id encoding, GloVe loading."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from src.data.errors import DataError
from src.data.text import (
    PAD_ID,
    UNK_ID,
    build_tokenizer,
    clean_text,
    encode_ids,
    load_glove,
    load_tokenizer,
    read_labeled_table,
    reverse_each,
    save_tokenizer,
)

FIXTURES = Path(__file__).parent / "fixtures"
TEXTS = [
    "A great movie.<br /><br />Great acting, GREAT music!",
    "A terrible movie... terrible acting.",
    "great fun, a great cast",
    "terrible plot and terrible music",
]


def test_clean_text_removes_br_and_collapses_whitespace():
    assert clean_text("Good.<br /><br />Bad.<BR>Ugly<br/>end") == "Good. Bad. Ugly end"
    assert clean_text("  a \t b\n\nc  ") == "a b c"


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_special_token_ids_and_size_cap(kind):
    tok = build_tokenizer(TEXTS, kind, max_size=25, min_freq=1)
    assert tok.token_to_id("<pad>") == PAD_ID == 0
    assert tok.token_to_id("<unk>") == UNK_ID == 1
    assert tok.get_vocab_size() <= 25


def test_word_tokenizer_lowercases_splits_punctuation_and_drops_rare_words():
    tok = build_tokenizer(TEXTS, "word", max_size=100, min_freq=2)
    vocab = tok.get_vocab()
    assert "great" in vocab and "Great" not in vocab and "GREAT" not in vocab
    assert "br" not in vocab and "<" not in vocab  # HTML breaks were cleaned before training
    assert "plot" not in vocab  # seen once < min_freq
    assert tok.encode("GREAT movie,").tokens == ["great", "movie", ","]
    assert tok.encode("zebra").ids == [UNK_ID]


def test_truncation_and_flat_encoding():
    tok = build_tokenizer(TEXTS, "word", max_size=100, min_freq=1, max_len=4)
    ids, offsets = encode_ids(tok, TEXTS)
    assert ids.dtype == np.int32 and offsets.dtype == np.int64
    assert len(offsets) == len(TEXTS) + 1 and offsets[0] == 0 and offsets[-1] == len(ids)
    assert np.diff(offsets).tolist() == [4, 4, 4, 4]
    assert ids[offsets[2] : offsets[3]].tolist() == tok.encode(TEXTS[2]).ids
    short_ids, short_offsets = encode_ids(tok, TEXTS, max_len=2)  # stricter than the tokenizer
    assert np.diff(short_offsets).tolist() == [2, 2, 2, 2]
    assert short_ids[:2].tolist() == ids[:2].tolist()


def test_tokenizer_json_roundtrip(tmp_path):
    tok = build_tokenizer(TEXTS, "word", max_size=100, min_freq=1, max_len=8)
    save_tokenizer(tok, tmp_path / "tokenizer.json")
    assert json.loads((tmp_path / "tokenizer.json").read_text())["model"]["type"] == "WordLevel"
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer.json"]  # no temp file left
    again = load_tokenizer(tmp_path / "tokenizer.json")
    assert again.encode(TEXTS[0]).ids == tok.encode(TEXTS[0]).ids
    assert len(again.encode(" ".join(TEXTS)).ids) == 8  # truncation is saved too


def test_load_tokenizer_rejects_wrong_specials(tmp_path):
    from tokenizers import Tokenizer, models

    Tokenizer(models.WordLevel({"a": 0, "<unk>": 1}, unk_token="<unk>")).save(
        str(tmp_path / "t.json")
    )
    with pytest.raises(ValueError, match="<pad>=0"):
        load_tokenizer(tmp_path / "t.json")


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_read_labeled_table_formats(tmp_path, suffix):
    df = pd.DataFrame({"text": ["fine film", "NA", "bad, bad"], "label": [1, 0, 0]})
    path = tmp_path / f"train{suffix}"
    df.to_parquet(path) if suffix == ".parquet" else df.to_csv(path, index=False)
    texts, labels = read_labeled_table(path)
    assert texts == ["fine film", "NA", "bad, bad"]  # "NA" stays a review, not a missing value
    assert labels.tolist() == [1, 0, 0] and labels.dtype == np.int64


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"review,label\nok,1\n", "no column 'text'; the header is 'review,label'; rename"),
        (b"Text,Label\nok,1\n", "no column 'text' or 'label'; the header is 'Text,Label'; .*lower"),
        (b"text,label\nok,1\nmeh,2\n", "label 2 at row 1 is not 0 or 1"),
        (b"text,label\nok,pos\n", "label 'pos' at row 0 is not 0 or 1"),
        (b"text,label\n", "no rows"),
        (b"text,label\nok,1\n,0\n", "empty or missing text at row 1"),
        (b"text,label\ncaf\xe9,1\n", "not valid UTF-8"),
        (b"text,label\nok,1\nsay, what,1\n", "not a readable CSV: .*line 3"),
        (b"", "is empty"),
    ],
)
def test_read_labeled_table_errors(tmp_path, content, match):
    path = tmp_path / "train.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=match) as err:
        read_labeled_table(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_load_glove_rows(tmp_path):
    tok = build_tokenizer(["the movie was great", "the film was terrible"], "word", 100, 1)
    weight = load_glove(FIXTURES / "glove.txt", tok, seed=3)
    vocab = tok.get_vocab()
    assert weight.shape == (tok.get_vocab_size(), 4) and weight.dtype == torch.float32
    assert torch.equal(weight[PAD_ID], torch.zeros(4))
    torch.testing.assert_close(weight[vocab["movie"]], torch.tensor([0.5, -0.1, 0.0, 0.25]))
    missing = weight[vocab["was"]]  # not in the file: small seeded random values
    assert 0 < missing.abs().max() < 1
    assert torch.equal(load_glove(FIXTURES / "glove.txt", tok, seed=3), weight)
    assert not torch.equal(load_glove(FIXTURES / "glove.txt", tok, seed=4)[vocab["was"]], missing)


@pytest.mark.parametrize(
    ("content", "dim", "match"),
    [
        ("movie 0.1 0.2\nfilm 0.3\n", None, r"glove.txt:2: malformed GloVe line"),
        ("movie 0.1 abc\n", None, r"glove.txt:1: non-numeric value"),
        ("movie 0.1 0.2\n", 3, "2-d vectors but dim=3 was asked"),
        ("", None, "empty"),
        ("zebra 0.1 0.2\n", None, "none of the"),
    ],
)
def test_load_glove_errors(tmp_path, content, dim, match):
    tok = build_tokenizer(["the movie", "the film"], "word", 100, 1)
    path = tmp_path / "glove.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        load_glove(path, tok, dim=dim)


def test_reverse_each_reverses_every_sequence_in_place_of_its_own():
    ids = np.arange(10, dtype=np.int32)
    offsets = np.array([0, 3, 3, 7, 10])  # one empty sequence
    out = reverse_each(ids, offsets)
    assert out.tolist() == [2, 1, 0, 6, 5, 4, 3, 9, 8, 7] and out.dtype == np.int32
    assert ids.tolist() == list(range(10))  # a copy: the input is left as it was
    assert np.array_equal(reverse_each(out, offsets), ids)
