"""``morobot train korr`` / ``morobot eval korr``.

Registered into ``morobot.cli.EXTRA`` under the dashed names ``train-korr`` / ``eval-korr``,
which ``morobot.cli`` turns into the nested sub-commands.
"""

from __future__ import annotations

import argparse
import sys


def _train_args(parser: argparse.ArgumentParser) -> None:
    from morobot.korr.train import add_arguments

    add_arguments(parser)


def _train_run(ns: argparse.Namespace) -> int:
    from morobot.korr import checkpoint as ckpt
    from morobot.korr.train import args_from_namespace, run

    try:
        return run(args_from_namespace(ns))
    except (ValueError, FileNotFoundError, ckpt.CheckpointError) as exc:
        print(f"morobot train korr: {exc}", file=sys.stderr)
        return 2


def _eval_args(parser: argparse.ArgumentParser) -> None:
    from morobot.korr.evaluate import add_arguments

    add_arguments(parser)


def _eval_run(ns: argparse.Namespace) -> int:
    from morobot.korr import checkpoint as ckpt
    from morobot.korr.evaluate import run

    try:
        return run(ns)
    except (ValueError, FileNotFoundError, ckpt.CheckpointError) as exc:
        print(f"morobot eval korr: {exc}", file=sys.stderr)
        return 2


def register(extra: dict) -> None:
    """Adds ``train-korr`` and ``eval-korr`` to ``extra`` (``name -> (help, add_arguments, run)``)."""
    extra["train-korr"] = ("train the KORR policies (demos, BC base, Koopman model, PPO residuals)",
                           _train_args, _train_run)
    extra["eval-korr"] = ("evaluate KORR policies under perturbations and the Koopman predictions",
                          _eval_args, _eval_run)
