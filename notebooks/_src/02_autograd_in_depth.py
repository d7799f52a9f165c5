# %% [markdown]
# # 2. Autograd in depth
#
# The graph is built as your Python runs (define-by-run): loops and `if`s shape it anew on
# every call. This notebook looks at the graph as data, hooks, higher-order gradients and
# custom differentiable functions.

# %%
import dyntorch as torch

torch.manual_seed(0)

# %% [markdown]
# ## A dynamic graph
# The number of nodes depends on the data: here on how many times the loop runs.

# %%
def f(x, n):
    y = x
    for _ in range(n):
        y = torch.sin(y) * 2
    return y.sum()


def count_nodes(t):
    seen, stack = set(), [t.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(fn for fn, _ in node.next_functions)
    return len(seen)


x = torch.randn(3, requires_grad=True)
for n in (1, 3, 5):
    print(n, "loop turns ->", count_nodes(f(x, n)), "nodes")

# %% [markdown]
# ## Nodes are plain data
# Each node carries its creation order `seq`, the module `scope` it ran in and its `source`.

# %%
y = f(x, 2)
node = y.grad_fn
while node is not None:
    where = f"line {node.source[1]}" if node.source else "(a leaf: no forward line)"
    print(f"{node.seq:4d}  {node.name():18s} {where}")
    node = next((fn for fn, _ in node.next_functions if fn is not None), None)

# %% [markdown]
# ## Hooks
# A tensor hook sees (and may replace) the gradient flowing into that tensor; `retain_grad`
# keeps an intermediate gradient.

# %%
x = torch.randn(3, requires_grad=True)
h = x * 3
h.retain_grad()
h.register_hook(lambda g: print("gradient reaching h:", g) or g * 0.5)
(h ** 2).sum().backward()
print("h.grad =", h.grad)
print("x.grad =", x.grad, "(halved by the hook)")

# %% [markdown]
# ## Higher-order gradients
# With `create_graph=True` the backward pass itself is recorded, so you can differentiate
# again. Here: the first three derivatives of tanh at 0.5.

# %%
x = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
y = torch.tanh(x)
(d1,) = torch.autograd.grad(y, x, create_graph=True)
(d2,) = torch.autograd.grad(d1, x, create_graph=True)
(d3,) = torch.autograd.grad(d2, x)
t = torch.tanh(torch.tensor(0.5, dtype=torch.float64))
print(d1.item(), (1 - t**2).item())
print(d2.item(), (-2 * t * (1 - t**2)).item())
print(d3.item(), ((-2 + 6 * t**2) * (1 - t**2)).item())

# %% [markdown]
# ## Custom differentiable functions
# `autograd.Function` lets you write forward and backward yourself. `gradcheck` compares your
# backward with finite differences.

# %%
class SmoothAbs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, eps=1e-3):
        ctx.save_for_backward(x)
        ctx.eps = eps
        return (x * x + eps).sqrt()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x / (x * x + ctx.eps).sqrt(), None


x = torch.randn(5, dtype=torch.float64, requires_grad=True)
print(torch.autograd.gradcheck(lambda t: SmoothAbs.apply(t), (x,)))
SmoothAbs.apply(x).sum().backward()
print(x.grad)

# %% [markdown]
# ## Clear errors
# Mistakes get messages that say what went wrong and how to fix it.

# %%
for bad in (lambda: torch.ones(2, 3) + torch.ones(4),
            lambda: torch.ones(2, 3) @ torch.ones(2, 3),
            lambda: torch.ones(3, requires_grad=True).mul(2).backward()):
    try:
        bad()
    except RuntimeError as err:
        print("RuntimeError:", err, "\n")
