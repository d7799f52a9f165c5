# %% [markdown]
# # 1. Quickstart: tensors, autograd and your first live graph
#
# dyntorch speaks PyTorch. Import it under the name you already know, and ordinary tensor
# code runs. What is new is that the autograd graph is *data you can look at*.

# %%
import dyntorch as torch

torch.manual_seed(0)
x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
print(x, x.shape, x.dtype, x.device)

# %% [markdown]
# ## Tensors behave like torch's
# Broadcasting, type promotion, reductions, indexing and matrix products follow PyTorch's rules.

# %%
a = torch.arange(6).reshape(2, 3)          # int64
b = a * 0.5                                 # float32, like torch
print(b)
print(b.sum(dim=1), b.mean(), b.max())
print(b[:, 1:], b[b > 1])
print(x @ x.T)

# %% [markdown]
# ## Autograd
# Set `requires_grad=True` on the leaves, compute, call `backward()`, read `.grad`.

# %%
w = torch.randn(2, 3, requires_grad=True)
inputs = torch.randn(4, 2)
target = torch.randn(4, 3)
pred = (inputs @ w).tanh()
loss = ((pred - target) ** 2).mean()
loss.backward()
print(loss)
print(w.grad)

# %% [markdown]
# Every result remembers the op that made it. `grad_fn` is the last node of the graph and
# `next_functions` walks it backwards. Each node also knows *where in your code* it was
# created.

# %%
node = loss.grad_fn
print(node.name(), "created at line", node.source[1])
print([fn.name() for fn, _ in node.next_functions if fn is not None])

# %% [markdown]
# ## Your first live graph
# `dyntorch.viz.show(loss)` draws the graph in the notebook: click a node to inspect shapes,
# dtypes and the source line. (It needs the front end that `make lab` builds; in a plain
# terminal you would use `dyntorch.viz.to_dot(loss)` instead.)

# %%
import dyntorch.viz as viz

view = viz.show(loss)
view

# %% [markdown]
# `BackwardStepper` runs the *same* backward engine as `loss.backward()`, one node at a time.
# The view below opens at the start: press **Step** and it lights up node by node, the
# inspector on the right showing the gradients at each node.

# %%
from dyntorch.debug import BackwardStepper

w.grad = None
pred = (inputs @ w).tanh()
loss = ((pred - target) ** 2).mean()
stepper = BackwardStepper(loss)
print(len(stepper.pending), "nodes to run:", [n.name() for n in stepper.pending])
print("Press Step in the view below (or run stepper.step() in a cell).")
stepper

# %% [markdown]
# The same from code, on a second forward pass (the view above stays where you left it):

# %%
loss2 = (((inputs @ w).tanh() - target) ** 2).mean()
s2 = BackwardStepper(loss2)
step = s2.step()
print(step.node.name(), [None if g is None else tuple(g.shape) for g in step.grad_inputs])
s2.run()
print(s2.done, w.grad.shape)
s2.close()
