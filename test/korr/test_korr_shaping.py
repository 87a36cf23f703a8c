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
from morobot.korr.ppo import PPO, PPOConfig
from morobot.korr.rollout import EpisodeStats
from morobot.korr.runner import collect, lr_factor
from morobot.korr.residual import ResidualAgent, ResidualConfig
from morobot.korr.tasks import (ACT_DIM, EXPERTS, INSERT_CARRY_HEIGHT, INSERT_CLEAR_HEIGHT, OBS_DIM, PERTURBATIONS,
                                POTENTIAL_LENGTH, KorrVecEnv, curriculum_factor, insert_distance, potential,
                                scale_perturbation, shaping_term)

torch.set_num_threads(1)


def test_potential_matches_formula():
    goal = np.array([0.45, 0.3, 0.025])
    # push: block 10 cm from the target, tool in contact (<= 4 cm): Phi = -1
    assert potential("push", [0.45, 0.2, 0.025], [0.45, 0.17, 0.03], goal) == pytest.approx(-1.0)
    # tool 14 cm from the block: 10 cm beyond contact, weight 0.3
    assert potential("push", [0.45, 0.2, 0.025], [0.45, 0.06, 0.03], goal) == pytest.approx(-1.3)
    assert potential("push", goal, goal + [0.03, 0, 0], goal) == pytest.approx(0.0)
    # insert, round-2 "height" kind: 5 cm in xy + 4 cm above the hole bottom + 0.5 x (3 cm - 1 cm) tool offset
    phi = potential("insert", [0.45, 0.35, 0.065], [0.45, 0.35, 0.095], goal, "height")
    assert phi == pytest.approx(-(0.05 + 0.04 + 0.5 * 0.02) / POTENTIAL_LENGTH)
    # "via" (default): 30 cm away from the hole, block on the table: lift to the clearance
    # height, carry, and come down from the carry height
    hole = np.array([0.45, -0.3, 0.025])
    far = [0.45, 0.0, 0.025]
    detour = (INSERT_CLEAR_HEIGHT - 0.025) + (INSERT_CARRY_HEIGHT - 0.025)
    assert potential("insert", far, np.add(far, [0, 0, 0.03]), hole) == pytest.approx(
        -(0.3 + detour + 0.5 * 0.02) / POTENTIAL_LENGTH)
    # over the hole (xy within 5 mm) only the height above the bottom counts
    assert insert_distance([0.45, -0.297, 0.065], hole) == pytest.approx(0.003 + 0.04)
    assert insert_distance(hole, hole) == 0.0
    with pytest.raises(ValueError):
        potential("stack", goal, goal, goal)
    with pytest.raises(ValueError):
        insert_distance(hole, hole, "straight")
    with pytest.raises(ValueError):
        KorrVecEnv("insert", 1, insert_potential="straight")


def _insert_phi(obj, kind="via"):
    """Insert potential of a grasped block at ``obj`` (tool 4 mm above its centre)."""
    hole = [0.45, -0.3, 0.025]
    return potential("insert", obj, np.add(obj, [0.0, 0.0, 0.004]), hole, kind)


def test_insert_potential_credits_lifting_over_the_walls():
    """Lifting the block away from the hole must not cost potential; the detour over the walls pays.

    The round-2 ("height") potential charged the lift and fails the first check.
    """
    lift = [[0.45, -0.1, z] for z in np.linspace(0.025, 0.09, 14)]  # 20 cm from the hole
    phis = [_insert_phi(p) for p in lift]
    assert np.all(np.diff(phis) >= -1e-12) and phis[-1] > phis[0] + 0.4
    old = [_insert_phi(p, "height") for p in lift]
    assert old[-1] < old[0] - 0.4  # the defect: lifting over the wall height cost potential
    # carrying at any height between clearance and carry height costs nothing away from the hole
    assert _insert_phi([0.45, -0.1, INSERT_CLEAR_HEIGHT]) == pytest.approx(_insert_phi([0.45, -0.1, INSERT_CARRY_HEIGHT]))
    # carry over the hole at 10 cm, then lower into it: the potential rises at every step
    carry = [[0.45, y, 0.10] for y in np.linspace(-0.1, -0.3, 21)]
    lower = [[0.45, -0.3, z] for z in np.linspace(0.10, 0.025, 16)]
    phis = [_insert_phi(p) for p in carry + lower[1:]]
    assert np.all(np.diff(phis) > 0)
    assert phis[-1] == pytest.approx(-0.5 * 0.0 / POTENTIAL_LENGTH, abs=1e-9)
    # the whole way (table -> lift -> carry -> lower) ends higher than it started, only rising
    path = lift + [[0.45, -0.1, 0.10]] + carry[1:] + lower[1:]
    phis = [_insert_phi(p) for p in path]
    assert np.all(np.diff(phis) >= -1e-12)
    # the straight line through the wall region stays worse than going over it
    assert _insert_phi([0.45, -0.25, 0.025]) < _insert_phi([0.45, -0.25, INSERT_CLEAR_HEIGHT])


@pytest.mark.parametrize("kind, ok", [("via", True), ("xy", True), ("via_wide", False), ("height", False)])
def test_insert_potential_prefers_aligned_hover_over_a_jammed_block(kind, ok):
    """A block lowered 1 cm off the hole axis lands on the wall edge; that must not look like progress.

    ``via`` and ``xy`` get this right; ``via_wide`` (pilot A) and ``height``
    (round 2) rate the jammed block above the aligned one at carry height, and reward lowering
    a misaligned block.
    """
    jammed, hover = [0.45, -0.29, 0.05], [0.45, -0.3, 0.10]
    lower_misaligned = _insert_phi([0.45, -0.29, 0.06], kind) - _insert_phi([0.45, -0.29, 0.09], kind)
    assert (_insert_phi(jammed, kind) < _insert_phi(hover, kind)) == ok
    assert (lower_misaligned <= 1e-12) == ok
    # lowering an aligned block is progress for every kind but xy, where it is neutral
    low, high = _insert_phi([0.45, -0.298, 0.05], kind), _insert_phi([0.45, -0.298, 0.08], kind)
    assert low == pytest.approx(high) if kind == "xy" else low > high


def test_xy_insert_potential():
    """``xy``: lift (away from the hole) and carry are progress, lowering and letting go over the hole are neutral."""
    lift = [[0.45, -0.1, z] for z in np.linspace(0.025, 0.09, 14)]
    phis = [_insert_phi(p, "xy") for p in lift]
    assert np.all(np.diff(phis) >= -1e-12) and phis[-1] == pytest.approx(phis[0] + 0.45)
    carry = [_insert_phi([0.45, y, 0.10], "xy") for y in np.linspace(-0.1, -0.3, 21)]
    assert np.all(np.diff(carry) > 0) and carry[-1] == pytest.approx(0.0)
    hole = [0.45, -0.3, 0.025]
    # over the hole, the tool may leave the block (release) without losing potential
    assert potential("insert", [0.45, -0.3, 0.04], [0.45, -0.3, 0.09], hole, "xy") == pytest.approx(0.0)
    # away from it, the tool term counts as in the other kinds
    assert potential("insert", [0.45, 0.0, 0.1], [0.45, 0.0, 0.13], hole, "xy") == pytest.approx(
        -(0.3 + 0.5 * 0.02) / POTENTIAL_LENGTH)


def test_insert_potential_along_an_expert_episode():
    """On a real expert insertion the via potential never drops by more than small grasp jitter."""
    env = KorrVecEnv("insert", 1, "low", "none", seed=0, auto_reset=False)
    env.reset(seeds=[5])
    via, old, lifted = [], [], False
    for _ in range(env.spec.max_steps):
        st, obj = env.states[0], env.true_object_position(0)
        via.append(potential("insert", obj, st.tool, env.goal, "via"))
        old.append(potential("insert", obj, st.tool, env.goal, "height"))
        lifted |= obj[2] > INSERT_CLEAR_HEIGHT
        res = env.step(EXPERTS["insert"](st)[None])
        if env.done[0]:
            break
    assert res.success[0] and lifted
    assert np.diff(via).min() > -0.1  # ~-0.04 around the grasp
    assert np.diff(old).min() < -0.2  # the round-2 potential charged each lift step


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
    batch, _, _ = collect(ppo, env, env.reset(), EpisodeStats(2), 0)
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
    koopman = KoopmanModel(KoopmanConfig(OBS_DIM, ACT_DIM, 8, hidden=16))
    ckpt.save_koopman(task_dir / "koopman.pt", koopman, "push")
    from morobot.korr.bc import DemoData

    rng = np.random.default_rng(1)
    obs = rng.normal(size=(64, OBS_DIM)).astype(np.float32)
    act = np.tanh(rng.normal(size=(64, ACT_DIM))).astype(np.float32)
    DemoData(obs, act, act, obs, np.arange(64) // 16, (np.arange(64) % 16) == 15).save(task_dir / "demos.npz")
    args = ["--task", "push", "--stage", "residual", "--variants", "korr", "--residual-steps", "48", "--n-envs", "2",
            "--out", str(tmp_path), "--no-progress", "--shaping", "1.0", "--curriculum-steps", "32",
            "--anneal-lr", "--resume-every", "2", "--alpha", "0.2", "--alpha-gripper", "0.8",
            "--koopman-training", "prediction", "--latent-norm"]
    assert main(args) == 0
    agent, payload = ckpt.load_agent(task_dir / "residual_korr.pt")
    metrics = payload["meta"]["metrics"]
    assert metrics["shaping"] == 1.0 and metrics["curriculum_steps"] == 32 and metrics["ppo"]["anneal_lr"]
    assert agent.config.alpha == 0.2 and agent.config.alpha_gripper == 0.8 and metrics["alpha_gripper"] == 0.8
    assert metrics["insert_potential"] == "via"
    assert payload["config"]["residual"]["alpha_gripper"] == 0.8
    # the predicted latent of the pre-trained Koopman model is standardised with the statistics of
    # its training data (the demos here); the statistics stay fixed while the model trains on
    assert agent.config.latent_norm and agent.config.koopman_training == "prediction"
    assert not torch.allclose(agent.latent_std, torch.ones_like(agent.latent_std))
    with torch.no_grad():
        s = agent.normalizer(torch.as_tensor(obs))
        z = koopman.step(koopman.encode(s), agent.base_action(torch.as_tensor(obs)))
        zn = (z - agent.latent_mean) / agent.latent_std
    assert float(zn.mean(0).abs().max()) < 0.02 and float((zn.std(0) - 1).abs().max()) < 0.02
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


# ------------------------------------------------------------------- per-dimension residual bound
def _agent(alpha_gripper=None, variant="mlp"):
    torch.manual_seed(0)
    base = BCPolicy(OBS_DIM, ACT_DIM, hidden=16)
    koop = KoopmanModel(KoopmanConfig(OBS_DIM, ACT_DIM, 8, hidden=16)) if variant != "mlp" else None
    return ResidualAgent(ResidualConfig(variant, OBS_DIM, ACT_DIM, alpha=0.1, alpha_gripper=alpha_gripper,
                                        hidden=16), base, koop)


def test_alpha_gripper_bounds_only_the_gripper_dimension():
    a_base = torch.zeros(3, ACT_DIM)
    u = torch.full((3, ACT_DIM), 50.0)  # tanh(u) = 1: the residual at its bound
    np.testing.assert_allclose(_agent().env_action(a_base, u).numpy(), 0.1, rtol=1e-6)  # default: alpha everywhere
    act = _agent(1.0).env_action(a_base - 0.5, u).numpy()
    np.testing.assert_allclose(act[:, :4], -0.4, rtol=1e-5)
    np.testing.assert_allclose(act[:, 4], 0.5, rtol=1e-5)  # a closed-ish gripper can be opened
    assert _agent(1.0).env_action(torch.ones(1, ACT_DIM), u)[0, 4] == 1.0  # still clipped to [-1, 1]
    assert ResidualConfig("mlp", OBS_DIM, ACT_DIM).bounds() == [0.1] * ACT_DIM
    assert ResidualConfig("mlp", OBS_DIM, ACT_DIM, alpha_gripper=0.5).bounds() == [0.1] * 4 + [0.5]
    with pytest.raises(ValueError):
        ResidualConfig("mlp", OBS_DIM, ACT_DIM, alpha_gripper=0.0)
    # the bound is derived from the config, not stored with the weights: old state dicts still load
    assert "alpha_vec" not in _agent(1.0).state_dict()


def test_alpha_gripper_checkpoint_round_trip_and_runtime_policy(tmp_path):
    from morobot.korr.kinematics import ArmKinematics
    from morobot.korr.policy import KorrPolicy

    agent = _agent(1.0, "korr")
    with torch.no_grad():  # push the residual's mean to its bound on every dimension
        agent.actor[-1].bias.fill_(50.0)
    path = ckpt.save_agent(tmp_path / "residual_korr.pt", agent.eval(), "insert", 0.1)
    loaded, payload = ckpt.load_agent(path)
    assert loaded.config.alpha_gripper == 1.0 and payload["config"]["residual"]["alpha_gripper"] == 1.0
    obs = torch.as_tensor(np.random.default_rng(0).normal(size=(4, OBS_DIM)), dtype=torch.float32)
    a_base = agent.base_action(obs)
    delta = (loaded.act_deterministic(obs) - a_base).numpy()
    bounds = np.array([0.1] * 4 + [1.0])
    np.testing.assert_allclose(delta, np.minimum(a_base.numpy() + bounds, 1.0) - a_base.numpy(), atol=1e-5)
    # a config written before alpha_gripper existed loads with the old behaviour (alpha everywhere)
    old = {k: v for k, v in agent.config.to_dict().items() if k != "alpha_gripper"}
    assert ResidualConfig(**old).bounds() == [0.1] * ACT_DIM
    # the runtime policy applies the gripper bound too
    policy = KorrPolicy(path)
    q7 = ArmKinematics().solve(np.array([0.45, 0.0, 0.15]))
    pose = (np.array([0.5, 0.0, 0.025]), np.array([1.0, 0.0, 0.0, 0.0]))
    policy.act(np.concatenate([q7, [0.04, 0.04]]), np.zeros(9), pose)
    obs1 = torch.as_tensor(policy.last_observation, dtype=torch.float32)[None]
    base_grip = float(agent.base_action(obs1)[0, 4])
    assert policy.last_action[4] == pytest.approx(min(1.0, base_grip + 1.0), abs=1e-5)
