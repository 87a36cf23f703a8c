"""The ``morobot`` command: nested groups, pass-through commands and the old dashed names."""

import pytest

from morobot import cli


def _run(capsys, *argv):
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse exits on --help and on errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out + out.err


def test_top_level_help_lists_every_command(capsys):
    code, out = _run(capsys, "--help")
    assert code == 0
    for word in ("launch", "demo", "worlds", "collect", "convert-bag", "train", "eval", "record-demo"):
        assert word in out


@pytest.mark.parametrize("group, targets", [("train", ("fdm", "korr")),
                                            ("eval", ("fdm", "nav", "korr", "feasibility"))])
def test_groups_list_their_targets(capsys, group, targets):
    code, out = _run(capsys, group, "--help")
    assert code == 0
    for t in targets:
        assert t in out


@pytest.mark.parametrize("argv, option", [(("train", "fdm"), "--no-scan"), (("eval", "fdm"), "--no-scan-checkpoint"),
                                          (("collect",), "--worlds-per-kind"), (("eval", "nav"), "--fdm-checkpoint"),
                                          (("train", "korr"), "--task"), (("eval-nav",), "--mixes")])
def test_command_help_is_the_modules_own(capsys, argv, option):
    code, out = _run(capsys, *argv, "--help")
    assert code == 0 and option in out, out


def test_pass_through_hands_over_its_arguments(capsys):
    code, out = _run(capsys, "train", "fdm", "--data")  # the module's parser rejects the missing value
    assert code == 2 and "morobot train fdm" in out and "--data" in out


def test_unknown_command_fails(capsys):
    code, _ = _run(capsys, "train", "nothing")
    assert code == 2
