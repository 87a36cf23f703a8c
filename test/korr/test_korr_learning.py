"""KORR learning pieces: BC, Koopman fit on a known linear system, DMDc/EDMDc, PPO on an easy task."""

import numpy as np
import pytest
import torch
from torch import nn

from morobot.korr.bc import BCPolicy, DemoData, train_bc
from morobot.korr.koopman import (DMDc, EDMDc, KoopmanConfig, KoopmanModel, fit_koopman, make_windows,
                                  rollout_error, rollout_windows)
from morobot.korr.nets import Normalizer
from morobot.korr.ppo import PPO, PPOConfig
from morobot.korr.runner import collect, train_ppo
from morobot.korr.residual import ResidualAgent, ResidualConfig
from morobot.korr.tasks import StepResult

torch.set_num_threads(1)


def _synthetic_demos(n=600, obs_dim=6, act_dim=2, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32) * 3 + 1
    w = rng.normal(size=(obs_dim, act_dim))
    expert = np.tanh(((obs - 1) / 3) @ w * 0.5).astype(np.float32)
    return DemoData(obs=obs, expert=expert, action=expert, next_obs=obs, episode=np.arange(n) // 50,
                    last=(np.arange(n) % 50) == 49)


def test_bc_lowers_the_loss():
    data = _synthetic_demos()
    policy, losses = train_bc(data, epochs=30, hidden=64, seed=0, lr=3e-3)
    assert losses[-1] < 0.2 * losses[0]
    pred = policy(torch.as_tensor(data.obs)).detach().numpy()
    assert np.mean((pred - data.expert) ** 2) < 0.03
    assert isinstance(policy, BCPolicy)


def test_demo_data_round_trip(tmp_path):
    data = _synthetic_demos(n=120)
    data.save(tmp_path / "d.npz")
    back = DemoData.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(back.obs, data.obs)
    assert back.n_episodes == 3


def test_make_windows_respects_episode_ends():
    obs = np.arange(6, dtype=np.float32)[:, None]
    nxt = obs + 1
    act = np.ones((6, 1), np.float32)
    last = np.array([False, False, True, False, False, True])
    s, a, m = make_windows(obs, act, nxt, last, horizon=3)
    np.testing.assert_array_equal(s[0, :, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(m[1], [1, 1, 0])  # 1 -> 2 -> 3, then the episode ends
    np.testing.assert_array_equal(m[2], [1, 0, 0])
    np.testing.assert_array_equal(m[3], [1, 1, 1])


def _linear_system(n_traj=60, steps=30, seed=0):
    rng = np.random.default_rng(seed)
    theta = 0.3
    a_true = np.array([[0.9 * np.cos(theta), -0.9 * np.sin(theta), 0.0],
                       [0.9 * np.sin(theta), 0.9 * np.cos(theta), 0.0],
                       [0.0, 0.0, 0.6]])
    b_true = np.array([[0.5, 0.0], [0.0, 0.5], [0.3, 0.3]])
    xs, us, xn, last = [], [], [], []
    for _ in range(n_traj):
        x = rng.normal(size=3)
        for k in range(steps):
            u = rng.normal(size=2) * 0.5
            x1 = a_true @ x + b_true @ u
            xs.append(x), us.append(u), xn.append(x1), last.append(k == steps - 1)
            x = x1
    f32 = lambda v: np.array(v, np.float32)  # noqa: E731
    return a_true, b_true, f32(xs), f32(us), f32(xn), np.array(last)


def test_koopman_recovers_linear_system_eigenvalues():
    a_true, _, x, u, xn, last = _linear_system()
    torch.manual_seed(0)
    model = KoopmanModel(KoopmanConfig(obs_dim=3, act_dim=2, latent_dim=3, hidden=32, horizon=3))
    s, a, m = make_windows(x, u, xn, last, 3)
    history = fit_koopman(model, s, a, m, steps=900, batch_size=64, lr=3e-3, seed=0)
    assert history[-1]["state"] < 0.05 * history[0]["state"]
    eig = np.sort_complex(model.eigenvalues())
    true = np.sort_complex(np.linalg.eigvals(a_true))
    np.testing.assert_allclose(np.abs(eig), np.abs(true), atol=0.03)
    np.testing.assert_allclose(np.abs(eig.imag), np.abs(true.imag), atol=0.03)


def test_dmdc_and_edmdc_recover_linear_system():
    a_true, b_true, x, u, xn, last = _linear_system(n_traj=20)
    dmd = DMDc().fit(x.astype(float), u.astype(float), xn.astype(float))
    np.testing.assert_allclose(dmd.A, a_true, atol=1e-3)
    np.testing.assert_allclose(dmd.B, b_true, atol=1e-3)
    s, a, m = make_windows(x, u, xn, last, 5)
    err_dmd = rollout_error(dmd.rollout, s.astype(float), a.astype(float), m)
    edmd = EDMDc(64).fit(x.astype(float), u.astype(float), xn.astype(float))
    err_edmd = rollout_error(edmd.rollout, s.astype(float), a.astype(float), m)
    assert err_dmd.max() < 1e-5 and err_edmd.max() < 1e-2


# ----------------------------------------------------------------------------- PPO, easy env
class PointReach:
    """2-D point to the origin, sparse reward 1 within 0.3; a zero base policy never gets there."""

    def __init__(self, n_envs=16, seed=0, max_steps=12):
        self.n, self.max_steps = n_envs, max_steps
        self.rng = np.random.default_rng(seed)
        self.x = np.zeros((n_envs, 2))
        self.t = np.zeros(n_envs, int)

    def _start(self, i):
        ang = self.rng.uniform(0, 2 * np.pi)
        self.x[i] = 0.6 * np.array([np.cos(ang), np.sin(ang)])
        self.t[i] = 0

    def reset(self):
        for i in range(self.n):
            self._start(i)
        return self.x.copy()

    def step(self, actions):
        self.x = self.x + 0.1 * np.clip(actions, -1, 1)
        self.t += 1
        dist = np.linalg.norm(self.x, axis=1)
        succ = dist < 0.3
        trunc = ~succ & (self.t >= self.max_steps)
        final = self.x.copy()
        for i in np.flatnonzero(succ | trunc):
            self._start(i)
        return StepResult(self.x.copy(), succ.astype(float), succ, trunc, succ, final)


class ZeroBase(nn.Module):
    def __init__(self, obs_dim=2, act_dim=2):
        super().__init__()
        self.normalizer = Normalizer(obs_dim)
        self.act_dim = act_dim

    def forward(self, obs):
        return torch.zeros(obs.shape[0], self.act_dim)


@pytest.mark.parametrize("variant,koopman_training", [("mlp", "joint"), ("korr", "prediction"),
                                                      ("korr", "joint")])
def test_short_ppo_run_improves_return(variant, koopman_training):
    torch.manual_seed(0)
    koopman = KoopmanModel(KoopmanConfig(2, 2, latent_dim=4, hidden=16)) if variant == "korr" else None
    agent = ResidualAgent(ResidualConfig(variant, 2, 2, alpha=1.0, hidden=32, init_log_std=0.0,
                                         koopman_training=koopman_training), ZeroBase(), koopman)
    ppo = PPO(agent, PPOConfig(actor_lr=1e-3, critic_lr=1e-3, n_steps=32, epochs=4, minibatch_size=128, gamma=0.99,
                               target_kl=0.0))
    env = PointReach()
    stats = train_ppo(env, ppo, total_steps=16 * 32 * 16, seed=0)
    early = [f[1] for f in stats.finished if f[0] <= 16 * 32 * 3]
    late = [f[1] for f in stats.finished if f[0] > 16 * 32 * 12]
    assert np.mean(late) > np.mean(early) + 0.4, (np.mean(early), np.mean(late))
    obs = torch.as_tensor(env.reset(), dtype=torch.float32)
    act = agent.act_deterministic(obs)
    assert act.shape == (16, 2) and torch.all(act.abs() <= 1.0)


def test_residual_is_bounded_around_the_base():
    base = ZeroBase()
    agent = ResidualAgent(ResidualConfig("mlp", 2, 2, alpha=0.1, hidden=8), base)
    u = torch.tensor([[100.0, -100.0]])
    np.testing.assert_allclose(agent.env_action(torch.zeros(1, 2), u).numpy(), [[0.1, -0.1]], atol=1e-6)
    with pytest.raises(ValueError):
        ResidualAgent(ResidualConfig("korr", 2, 2), base, None)
    with pytest.raises(ValueError):
        ResidualConfig("resip", 2, 2)


def test_timeouts_are_failures_unless_bootstrapped():
    from morobot.korr.rollout import EpisodeStats

    torch.manual_seed(0)
    agent = ResidualAgent(ResidualConfig("mlp", 2, 2, alpha=1e-3, hidden=8), ZeroBase())
    with torch.no_grad():
        agent.critic[-1].weight.zero_()
        agent.critic[-1].bias.fill_(0.7)  # V = 0.7 everywhere
    for bootstrap, expected in ((False, 0.0), (True, 0.99 * 0.7)):
        ppo = PPO(agent, PPOConfig(n_steps=3, gamma=0.99, bootstrap_truncation=bootstrap))
        env = PointReach(n_envs=2, max_steps=3)
        batch, _, _ = collect(ppo, env, env.reset(), EpisodeStats(2), 0)
        np.testing.assert_allclose(batch["reward"][-1].numpy(), [expected, expected], atol=1e-5)
        assert batch["done"][-1].tolist() == [1.0, 1.0]


# ------------------------------------------------------------------ Koopman training during PPO
def test_rollout_windows_match_make_windows_per_env():
    rng = np.random.default_rng(0)
    t_len, n, h = 11, 3, 4
    obs = rng.normal(size=(t_len, n, 5)).astype(np.float32)
    act = rng.normal(size=(t_len, n, 2)).astype(np.float32)
    nxt = rng.normal(size=(t_len, n, 5)).astype(np.float32)
    done = np.zeros((t_len, n), np.float32)
    done[3, 0] = done[7, 0] = done[5, 2] = 1.0
    s, a, m = rollout_windows(*(torch.as_tensor(x) for x in (obs, act, nxt, done)), h)
    assert s.shape == (t_len * n, h + 1, 5) and a.shape == (t_len * n, h, 2) and m.shape == (t_len * n, h)
    s, a, m = (x.reshape(t_len, n, *x.shape[1:]).numpy() for x in (s, a, m))
    for i in range(n):  # one env's steps in time order; the batch's end also ends the windows
        last = done[:, i] > 0
        ws, wa, wm = make_windows(obs[:, i], act[:, i], nxt[:, i], last, h)
        np.testing.assert_array_equal(m[:, i], wm)
        np.testing.assert_allclose(s[:, i], ws)
        np.testing.assert_allclose(a[:, i] * m[:, i][..., None], wa * wm[..., None])
    assert m[3, 0].tolist() == [1, 0, 0, 0] and m[2, 0].tolist() == [1, 1, 0, 0] and m[9, 1].tolist() == [1, 1, 0, 0]


def _korr_ppo(koopman_training, model_steps=8):
    torch.manual_seed(0)
    koopman = KoopmanModel(KoopmanConfig(2, 2, latent_dim=4, hidden=16, horizon=3))
    agent = ResidualAgent(ResidualConfig("korr", 2, 2, alpha=1.0, hidden=32, init_log_std=0.0,
                                         koopman_training=koopman_training), ZeroBase(), koopman)
    ppo = PPO(agent, PPOConfig(actor_lr=1e-3, n_steps=16, epochs=2, minibatch_size=64, target_kl=0.0,
                               model_steps=model_steps, model_batch=64))
    return agent, ppo


def _koopman_params(agent):
    return [p.detach().clone() for p in agent.koopman.parameters()]


def test_prediction_mode_trains_the_koopman_model_only_by_its_own_loss():
    from morobot.korr.rollout import EpisodeStats

    env = PointReach()
    # No model steps: the PPO update (actor, critic, imitation-free) must leave phi, A, B untouched.
    agent, ppo = _korr_ppo("prediction", model_steps=0)
    assert ppo.model_optimizer is None and not any(p is q for p in agent.actor_parameters()
                                                  for q in agent.koopman.parameters())
    before = _koopman_params(agent)
    batch, _, _ = collect(ppo, env, env.reset(), EpisodeStats(16), 0)
    info = ppo.update(batch, torch.Generator().manual_seed(0))
    assert info["aux_loss"] == 0.0 and "model_loss" not in info
    assert all(torch.equal(a, b) for a, b in zip(before, _koopman_params(agent)))
    # With model steps the Koopman loss on the roll-out goes down.
    agent, ppo = _korr_ppo("prediction", model_steps=40)
    batch, _, _ = collect(ppo, env, env.reset(), EpisodeStats(16), 0)
    windows = agent.model_windows(batch)
    with torch.no_grad():
        loss0 = float(agent.model_loss(*windows))
    info = ppo.update(batch, torch.Generator().manual_seed(0))
    with torch.no_grad():
        loss1 = float(agent.model_loss(*windows))
    assert loss1 < 0.7 * loss0, (loss0, loss1)
    assert info["model_loss"] > 0


def test_joint_mode_lets_the_actor_gradient_into_the_koopman_model():
    from morobot.korr.rollout import EpisodeStats

    env = PointReach()
    agent, ppo = _korr_ppo("joint")
    assert ppo.model_optimizer is None
    koop = {id(p) for p in agent.koopman.parameters()}
    assert koop <= {id(p) for p in agent.actor_parameters()}
    obs = torch.as_tensor(env.reset(), dtype=torch.float32)
    dist, _, _ = agent(obs)
    dist.mean.sum().backward()  # the policy output alone reaches the encoder and A, B
    assert agent.koopman.A.grad is not None and float(agent.koopman.A.grad.abs().sum()) > 0
    agent.zero_grad()
    agent_p, _ = _korr_ppo("prediction")
    dist, _, _ = agent_p(obs)
    dist.mean.sum().backward()
    assert agent_p.koopman.A.grad is None
