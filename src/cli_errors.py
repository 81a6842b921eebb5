"""Configuration errors in one line: jsonargparse's nested report (tens of lines after the usage)
condensed to the offending key, last, with the closest valid key or value."""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import re
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser

from src.errors import SeqLabError

_PARSER_KEY = re.compile(r'^-?\s*Parser key "([^"]+)":\s*(.*)$')
_CLASS_PATH = re.compile(r"^-?\s*Problem with given class_path '([^']+)':")
_STRUCTURE = ("Does not validate against", "Subtypes:", "Errors:", "Given value")
_NOT_ACCEPTED = re.compile(r"^Option '([^']+)' is not accepted")
_NO_OPTION = re.compile(r"does not accept (?:option|nested key) '([^']+)'")
_NO_ATTRIBUTE = re.compile(r"module '([\w.]+)' has no attribute '(\w+)'")
_UNRECOGNIZED = re.compile(r"nrecognized arguments: --([\w.]+)")
_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")
_LITERAL = re.compile(r"Expected a typing\.Literal\[(.*)\]\. Got value: (.*)$")


def _closest(word: str, options: list[str]) -> str | None:
    found = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return found[0] if found else None


def _parameters(class_path: str) -> list[str]:
    """The constructor arguments of ``class_path`` (empty when it cannot be imported)."""
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        return [p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs")]
    except Exception:  # a suggestion is a nicety: never let it hide the error
        return []


def _parser_keys(parser: Any) -> list[str]:
    """Every dotted key a parser (and its subcommands' parsers) accepts."""
    keys = []
    for action in getattr(parser, "_actions", []):
        if isinstance(getattr(action, "choices", None), dict):  # subcommands
            for sub in action.choices.values():
                keys += _parser_keys(sub)
        elif action.dest not in ("help", "config", "print_config"):
            keys.append(action.dest)
    return keys


def _unknown_key(key: str, candidates: list[str]) -> str:
    near = _closest(key, candidates)
    hint = f"; did you mean '{near}'?" if near else "; see --help for the valid keys"
    return f"unknown key '{key}'{hint}"


def one_line(message: str, parser: Any = None) -> str:
    """The error of a jsonargparse report ``message`` as one line.

    Nested reports (``Parser key "model": ... Problem with given class_path ...``) are walked
    down to their innermost problem, whose full dotted key is named; an unknown key gets the
    closest argument of its class, an unknown class or choice the closest valid one.
    """
    path: list[str] = []
    owner, leaf = "", ""
    for raw in message.splitlines():
        line = raw.strip()
        if match := _PARSER_KEY.match(line):
            path.append(match[1])
            if match[2]:  # 'Parser key "config": File does not exist: ...'
                leaf = match[2]
                break
        elif match := _CLASS_PATH.match(line):
            owner = match[1]
            path.append("init_args")
        elif line and not line.startswith(_STRUCTURE):
            leaf = line.removeprefix("- ")
            break
    if not path:  # a top-level problem: already short, maybe spread over a few lines
        text = " ".join(message.split())
        match = _NO_OPTION.search(text) or _UNRECOGNIZED.search(text)
        if match:
            return _unknown_key(match[1], _parser_keys(parser))
        if match := _CHOICE.search(text):
            near = _closest(match[1], re.findall(r"'([^']*)'", match[2]))
            return text + (f"; did you mean '{near}'?" if near else "")
        return text
    key = ".".join(path)
    if match := _NOT_ACCEPTED.match(leaf):
        params = _parameters(owner)
        near = _closest(match[1], params)
        hint = f"; did you mean '{near}'?" if near else f"; {owner} takes {', '.join(params[:20])}"
        return f"unknown key '{key}.{match[1]}'{hint}"
    if leaf.startswith("No module named") and path[-1] == "init_args":
        return f"{'.'.join(path[:-1] + ['class_path'])}: {leaf}"
    if match := _NO_ATTRIBUTE.search(leaf):
        names = [n for n in dir(importlib.import_module(match[1])) if not n.startswith("_")]
        near = _closest(match[2], names)
        key = ".".join(path[:-1] + ["class_path"])
        hint = f"; did you mean '{match[1]}.{near}'?" if near else ""
        return f"{key}: '{match[2]}' not found in {match[1]}{hint}"
    if match := _LITERAL.search(leaf):
        near = _closest(match[2].strip(), re.findall(r"'([^']*)'", match[1]))
        hint = f"; did you mean '{near}'?" if near else ""
        return f"{key}: {match[2].strip()!r} is not one of {match[1]}{hint}"
    return f"{key}: {leaf}"


class SeqLabParser(LightningArgumentParser):
    """LightningCLI's parser whose errors are one-line :class:`~src.errors.SeqLabError`s
    (``python -m src.cli`` prints ``error: ...``; ``SEQLAB_TRACEBACK=1`` keeps the full report)."""

    def error(self, message: str, ex: Exception | None = None):
        if not self.exit_on_error or os.environ.get("SEQLAB_TRACEBACK") == "1":
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        raise SeqLabError(" ".join(one_line(message, parser).split())) from None
