# %% [markdown]
# # 4. Step-debugging backprop
#
# `BackwardStepper` runs the very engine that `loss.backward()` runs, but one node at a time:
# step, continue to a breakpoint, step out of a module, step back. At every step you see the
# gradients that came in and the ones sent on.

# %%
import dyntorch as torch
import dyntorch.nn as nn
from dyntorch.debug import BackwardStepper, NonFiniteError, detect_nonfinite, summary

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
x = torch.randn(16, 4)
loss = model(x).pow(2).mean()

stepper = BackwardStepper(loss)
print(len(stepper.pending), "nodes to run:", [n.name() for n in stepper.pending][:6], "...")
stepper

# %% [markdown]
# Step three nodes. Each `Step` holds the node, the gradients flowing in (`grad_outputs`) and
# out (`grad_inputs`, aligned with `node.next_functions`), with summaries.

# %%
for _ in range(3):
    s = stepper.step()
    print(f"{s.node.name():22s} scope={s.node.scope!r:8s}",
          [None if g is None else tuple(g.shape) for g in s.grad_inputs])
print(summary(s.grad_outputs[0]))

# %% [markdown]
# ## Breakpoints
# Stop at the first matrix product inside the first layer, or whenever a gradient norm
# exceeds a threshold.

# %%
stepper.break_on(scope="0")
hit = stepper.run()
print("stopped at", hit.node.name(), "in scope", repr(hit.node.scope))

# %% [markdown]
# Step back, then forward again: the replay gives exactly the same gradients.

# %%
before = [None if g is None else g.clone() for g in stepper.current.grad_inputs]
stepper.back(2)
stepper.step(2)
after = stepper.current.grad_inputs
print(all((a is None and b is None) or bool((a == b).all()) for a, b in zip(before, after)))

# %%
stepper.clear_breakpoints()
stepper.run()
print("done:", stepper.done)
ref = [p.grad.clone() for p in model.parameters()]
model.zero_grad()
model(x).pow(2).mean().backward()
print("same gradients as backward():",
      all(bool((a == p.grad).all()) for a, p in zip(ref, model.parameters())))

# %% [markdown]
# ## Hunting a NaN to its source
# A NaN found in backward is usually a symptom. `detect_nonfinite` checks every op as it runs
# and names the *first* bad op, its module and your line of code.

# %%
class LogScore(nn.Module):
    def forward(self, h):
        return torch.log(h).sum()       # log of negative numbers -> nan


risky = nn.Sequential(nn.Linear(4, 4), LogScore())
try:
    with detect_nonfinite():
        risky(torch.randn(8, 4)).backward()
except NonFiniteError as err:
    print(err)
    print("direction:", err.direction, "| op:", err.op, "| scope:", repr(err.scope),
          "| line:", err.source[1])

# %% [markdown]
# ## Vanishing and exploding gradients, made visible
# A deep stack of sigmoids starves its first layers; `plot_grad_flow` shows the per-layer
# gradient norms.

# %%
import dyntorch.viz as viz

deep = nn.Sequential(*[m for _ in range(8) for m in (nn.Linear(16, 16), nn.Sigmoid())])
deep(torch.randn(64, 16)).sum().backward()
norms = {name: p.grad.norm().item() for name, p in deep.named_parameters()
         if name.endswith("weight")}
print({k: f"{v:.1e}" for k, v in norms.items()})
viz.plot_grad_flow(deep);
