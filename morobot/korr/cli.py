"""``morobot train korr`` / ``morobot eval korr`` (the latter through :mod:`morobot.evaluation.cli`)."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from morobot.cliutil import run_with


def train_args(parser: argparse.ArgumentParser) -> None:
    from morobot.korr.train import add_arguments

    add_arguments(parser)


def train_run(ns: argparse.Namespace) -> int:
    from morobot.korr import checkpoint as ckpt
    from morobot.korr.train import args_from_namespace, run

    try:
        return run(args_from_namespace(ns))
    except (ValueError, FileNotFoundError, ckpt.CheckpointError) as exc:
        print(f"morobot train korr: {exc}", file=sys.stderr)
        return 2


def eval_args(parser: argparse.ArgumentParser) -> None:
    from morobot.korr.evaluate import add_arguments

    add_arguments(parser)


def eval_run(ns: argparse.Namespace) -> int:
    from morobot.korr import checkpoint as ckpt
    from morobot.korr.evaluate import run

    try:
        return run(ns)
    except (ValueError, FileNotFoundError, ckpt.CheckpointError) as exc:
        print(f"morobot eval korr: {exc}", file=sys.stderr)
        return 2


def train_main(argv: Optional[Sequence[str]] = None) -> int:
    """``morobot train korr``."""
    return run_with("morobot train korr", train_args, train_run, argv)
