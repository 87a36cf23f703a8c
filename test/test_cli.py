"""The ``morobot`` command: one table of commands, nested groups, the old dashed names, fast --help."""

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


@pytest.mark.parametrize("group, targets", [("train", ("fdm", "korr", "locomotion")),
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


def test_every_command_runs_its_own_parser_with_defaults_shown(capsys):
    for cmd in cli.COMMANDS:
        code, out = _run(capsys, *cmd.words, "--help")
        assert code == 0, cmd.words
        assert "default" in out or cmd.words in (("merge-data",),), (cmd.words, out[:300])


def test_top_level_help_is_fast_and_imports_no_command_module():
    import subprocess
    import sys
    import time

    code = ("import sys, time; t = time.perf_counter(); from morobot import cli; cli.build_parser().format_help(); "
            "heavy = [m for m in ('torch', 'open3d', 'pinocchio', 'mujoco') if m in sys.modules]; "
            "print(time.perf_counter() - t, heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 1)
    assert out[1].strip() == "[]"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "morobot.cli", "--help"], capture_output=True, check=True)
    assert time.perf_counter() - t0 < 1.5


def test_demo_runs_the_graphs_default_dynamics(monkeypatch):
    import morobot.demo
    from morobot.graph import GRAPHS

    seen = []
    monkeypatch.setattr(morobot.demo, "main", lambda ns: seen.append(ns) or 0)
    launched = next(a.default for a in GRAPHS["navigate"].arguments if a.name == "dynamics")
    other = next(d for d in ("kinematic", "fdm") if d != launched)
    assert cli.main(["demo"]) == 0 and cli.main(["demo", "--dynamics", other]) == 0
    assert seen[0].dynamics == launched and seen[0].fdm_checkpoint == ""
    assert seen[1].dynamics == other
