"""KORR residual-RL additions: potential-based shaping, perturbation curriculum, LR annealing, PPO
diagnostics and the residual stage end to end."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from morobot.korr import checkpoint as ckpt
from morobot.korr.bc import BCPolicy
from morobot.korr.koopman import KoopmanConfig, KoopmanModel
from morobot.korr.ppo import PPO, EpisodeStats, PPOConfig, lr_factor
from morobot.korr.residual import ResidualAgent, ResidualConfig
from morobot.korr.tasks import (ACT_DIM, OBS_DIM, PERTURBATIONS, POTENTIAL_LENGTH, KorrVecEnv, curriculum_factor,
                                potential, scale_perturbation, shaping_term)

torch.set_num_threads(1)


def test_potential_matches_formula():
    goal = np.array([0.45, 0.3, 0.025])
    # push: block 10 cm from the target, tool in contact (<= 4 cm): Phi = -1
    assert potential("push", [0.45, 0.2, 0.025], [0.45, 0.17, 0.03], goal) == pytest.approx(-1.0)
    # tool 14 cm from the block: 10 cm beyond contact, weight 0.3
    assert potential("push", [0.45, 0.2, 0.025], [0.45, 0.06, 0.03], goal) == pytest.approx(-1.3)
    assert potential("push", goal, goal + [0.03, 0, 0], goal) == pytest.approx(0.0)
    # insert: 5 cm in xy + 4 cm above the hole bottom + 0.5 x (3 cm - 1 cm) tool offset
    phi = potential("insert", [0.45, 0.35, 0.065], [0.45, 0.35, 0.095], goal)
    assert phi == pytest.approx(-(0.05 + 0.04 + 0.5 * 0.02) / POTENTIAL_LENGTH)
    with pytest.raises(ValueError):
        potential("stack", goal, goal, goal)


def test_shaping_term_is_zero_sum_over_a_closed_loop():
    rng = np.random.default_rng(0)
    phis = rng.normal(size=10)
    loop = np.append(phis, phis[0])  # s_0 ... s_9, back to s_0
    assert sum(shaping_term(a, b, False, 1.0) for a, b in zip(loop[:-1], loop[1:])) == pytest.approx(0.0)
    # episode end: Phi(s') counts as 0, so an episode's discounted sum is -Phi(s_0)
    gamma = 0.9
    total = sum(gamma ** t * shaping_term(phis[t], phis[t + 1], t == 8, gamma) for t in range(9))
    assert total == pytest.approx(-phis[0])


@pytest.mark.parametrize("task", ["push", "insert"])
def test_env_shaped_return_is_sparse_return_minus_initial_potential(task):
    """Over whole episodes (success or time-out) the shaping adds exactly -w Phi(s_0)."""
    gamma, weight = 0.97, 2.0
    env = KorrVecEnv(task, 2, "med", "high", seed=3, auto_reset=False, shaping=weight, shaping_gamma=gamma)
    sparse_env = KorrVecEnv(task, 2, "med", "high", seed=3, auto_reset=False)
    env.spec = dataclasses.replace(env.spec, max_steps=12)
    sparse_env.spec = env.spec
    obs = env.reset(seeds=[1, 2])
    np.testing.assert_allclose(sparse_env.reset(seeds=[1, 2]), obs)
    phi0 = np.array([env.potential(i) for i in range(2)])
    np.testing.assert_allclose(env.phi, phi0)
    shaped, sparse = np.zeros(2), np.zeros(2)
    rng = np.random.default_rng(0)
    for t in range(env.spec.max_steps):
        act = rng.uniform(-1, 1, (2, ACT_DIM))
        live = ~env.done
        res, res0 = env.step(act), sparse_env.step(act)
        shaped += live * gamma ** t * res.reward
        sparse += live * gamma ** t * res0.reward
        assert np.all(res0.reward[live] == res.success[live])
    assert env.done.all()
    np.testing.assert_allclose(shaped, sparse - weight * phi0, atol=1e-9)


def test_curriculum_schedule_and_scaled_perturbation():
    assert curriculum_factor(0, 0, 0.3) == 1.0  # no curriculum
    assert curriculum_factor(0, 1000, 0.3) == pytest.approx(0.3)
    assert curriculum_factor(500, 1000, 0.3) == pytest.approx(0.65)
    assert curriculum_factor(1000, 1000, 0.3) == 1.0 and curriculum_factor(5000, 1000, 0.3) == 1.0
    high = PERTURBATIONS["high"]
    half = scale_perturbation(high, 0.5)
    assert half.push_probability == pytest.approx(high.push_probability / 2)
    assert half.object_noise == pytest.approx(high.object_noise / 2)
    assert half.push_acceleration == high.push_acceleration  # push strength is kept
    assert scale_perturbation(high, 1.0).joint_noise == high.joint_noise
    assert scale_perturbation(high, 0.0).push_probability == 0.0


def test_lr_annealing():
    cfg = PPOConfig(anneal_lr=True)
    assert lr_factor(cfg, 0, 100) == 1.0 and lr_factor(cfg, 50, 100) == pytest.approx(0.5)
    assert lr_factor(cfg, 100, 100) == 0.0
    assert lr_factor(PPOConfig(), 50, 100) == 1.0
    assert lr_factor(PPOConfig(anneal_lr=True, lr_floor=0.1), 100, 100) == pytest.approx(0.1)


def test_ppo_update_reports_critic_diagnostics():
    torch.manual_seed(0)
    base = BCPolicy(OBS_DIM, ACT_DIM, hidden=16)
    agent = ResidualAgent(ResidualConfig("mlp", OBS_DIM, ACT_DIM, hidden=16), base)
    ppo = PPO(agent, PPOConfig(n_steps=4, epochs=1, minibatch_size=8))
    env = KorrVecEnv("push", 2, "low", "none", seed=0, shaping=1.0, shaping_gamma=0.999)
    batch, _, _ = ppo.collect(env, env.reset(), EpisodeStats(2), 0)
    info = ppo.update(batch)
    for key in ("explained_var", "return_mean", "log_std", "kl", "v_loss"):
        assert np.isfinite(info[key]), key
    assert info["log_std"] == pytest.approx(-0.7, abs=0.05)


def test_residual_stage_with_shaping_and_curriculum(tmp_path):
    from morobot.korr.train import main

    torch.manual_seed(0)
    task_dir = tmp_path / "push"
    base = BCPolicy(OBS_DIM, ACT_DIM, hidden=32)
    base.normalizer.fit(np.random.default_rng(0).normal(size=(50, OBS_DIM)))
    ckpt.save_bc(task_dir / "bc.pt", base, "push", 0.1)
    ckpt.save_koopman(task_dir / "koopman.pt", KoopmanModel(KoopmanConfig(OBS_DIM, ACT_DIM, 8, hidden=16)), "push")
    args = ["--task", "push", "--stage", "residual", "--variants", "korr", "--residual-steps", "48", "--n-envs", "2",
            "--out", str(tmp_path), "--no-progress", "--shaping", "1.0", "--curriculum-steps", "32",
            "--anneal-lr", "--resume-every", "2", "--alpha", "0.2"]
    assert main(args) == 0
    agent, payload = ckpt.load_agent(task_dir / "residual_korr.pt")
    metrics = payload["meta"]["metrics"]
    assert metrics["shaping"] == 1.0 and metrics["curriculum_steps"] == 32 and metrics["ppo"]["anneal_lr"]
    assert agent.config.alpha == 0.2
    assert (task_dir / "residual_korr_diag.png").is_file() and (task_dir / "residual_curves.png").is_file()
    assert not (task_dir / "residual_korr.resume.pt").exists()
    log = json.loads((task_dir / "train_log.json").read_text())
    assert log["residual"]["korr"]["history"] and "explained_var" in log["residual"]["korr"]["history"][0]


def test_evaluation_level_episodes_and_paired_difference():
    from morobot.korr.evaluate import level_episodes, markdown, paired_difference

    assert level_episodes(100, "high=400", ["none", "high"]) == {"none": 100, "high": 400}
    assert level_episodes(50, "", ["low"]) == {"low": 50}
    for bad in ("high", "medium=3", "high=0", "high=x"):
        with pytest.raises(ValueError):
            level_episodes(100, bad, ["none", "high"])
    m, lo, hi = paired_difference("1100", "1000")
    assert m == pytest.approx(0.25) and lo < m < hi
    assert paired_difference("1111", "1111") == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        paired_difference("10", "1")
    cell = {"success": 0.5, "ci95": [0.1, 0.9], "outcomes": "10"}
    results = {"randomness": "med", "episodes": 2, "level_episodes": {"high": 2}, "seed": 7,
               "tasks": {"push": {"success": {"high": {"base": {**cell, "outcomes": "00", "success": 0.0},
                                                       "mlp": cell}}}}}
    text = markdown(results)
    assert "| mlp − base | +50.0" in text and "seeds 7+k" in text
