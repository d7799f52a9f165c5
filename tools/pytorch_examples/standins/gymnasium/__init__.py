"""An offline stand-in for gymnasium's CartPole-v1 (the classic cart-pole equations).

``spec.reward_threshold`` is lowered (env STANDIN_CARTPOLE_THRESHOLD, default 15) so the
reinforcement_learning scripts, which train until "solved", finish in seconds.
"""
from __future__ import annotations

import math
import os
from types import SimpleNamespace

import numpy as np


class CartPole:
    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    theta_limit, x_limit, max_steps = 12 * 2 * math.pi / 360, 2.4, 500

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.spec = SimpleNamespace(
            id="CartPole-v1", max_episode_steps=self.max_steps,
            reward_threshold=float(os.environ.get("STANDIN_CARTPOLE_THRESHOLD", 15)))
        self.rng = np.random.default_rng()
        self.state = None
        self.steps = 0

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.state = self.rng.uniform(-0.05, 0.05, 4)
        self.steps = 0
        return self.state.astype(np.float32), {}

    def step(self, action):
        x, x_dot, th, th_dot = self.state
        force = self.force_mag if int(action) == 1 else -self.force_mag
        total = self.masscart + self.masspole
        pml = self.masspole * self.length
        cos, sin = math.cos(th), math.sin(th)
        temp = (force + pml * th_dot ** 2 * sin) / total
        th_acc = (self.gravity * sin - cos * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * cos ** 2 / total))
        x_acc = temp - pml * th_acc * cos / total
        x, x_dot = x + self.tau * x_dot, x_dot + self.tau * x_acc
        th, th_dot = th + self.tau * th_dot, th_dot + self.tau * th_acc
        self.state = np.array([x, x_dot, th, th_dot])
        self.steps += 1
        terminated = bool(abs(x) > self.x_limit or abs(th) > self.theta_limit)
        truncated = self.steps >= self.max_steps
        return self.state.astype(np.float32), 1.0, terminated, truncated, {}

    def render(self):
        return None

    def close(self):
        pass


def make(name: str, render_mode=None, **kwargs):
    if name != "CartPole-v1":
        raise NotImplementedError(f"gymnasium stand-in: only CartPole-v1, not {name!r}")
    return CartPole(render_mode)
