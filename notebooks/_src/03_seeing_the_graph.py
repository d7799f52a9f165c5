# %% [markdown]
# # 3. Seeing the graph
#
# `show` draws a finished graph; `live()` draws it *while* the forward pass runs. Modules fold
# into clusters so that big models stay readable, and overlays colour nodes by gradient norm.

# %%
import dyntorch as torch
import dyntorch.nn as nn
import dyntorch.viz as viz

torch.manual_seed(0)


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)

    def forward(self, x):
        return x + torch.relu(self.fc(self.norm(x)))


class Net(nn.Module):
    def __init__(self, width=16, depth=4):
        super().__init__()
        self.inp = nn.Linear(8, width)
        self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
        self.out = nn.Linear(width, 1)

    def forward(self, x):
        return self.out(self.blocks(self.inp(x)))


model = Net()
x = torch.randn(32, 8)
loss = model(x).pow(2).mean()

# %% [markdown]
# ## The whole graph, folded by module
# Every node knows the module it ran in (`node.scope`, e.g. `blocks.2.fc`). The view groups
# nodes into clusters per module and folds runs of repeated blocks ("Block × 4") so that the
# whole graph fits; click a folded box to open it, drag to pan, use the wheel to zoom.

# %%
view = viz.show(loss, model=model)
view

# %% [markdown]
# The same information is plain JSON (that is what the front end receives):

# %%
doc = viz.graph_json(loss, model=model)
print(doc["schema"], "version", doc["version"], "-", len(doc["nodes"]), "nodes,",
      len(doc["edges"]), "edges")
print(sorted({n["scope"] for n in doc["nodes"]})[:8])

# %% [markdown]
# ## Watching the forward pass
# Inside `with viz.live() as view:` the widget grows as ops run (at most ~10 redraws a
# second). In a training loop it keeps the latest iteration's graph beside the loss curve.

# %%
opt = torch.optim.SGD(model.parameters(), lr=0.05)
y = x.sum(dim=1, keepdim=True).tanh()
with viz.live(model=model) as live_view:
    for step in range(20):
        opt.zero_grad()
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        opt.step()
        live_view.log(loss=loss.item())
print(f"{live_view.iteration} iterations; the view above shows the last one")

# %% [markdown]
# ## A static picture
# `to_dot` gives a Graphviz drawing (module clusters folded below `depth`), handy for papers
# and for places without the widget; in a notebook it shows as a picture (SVG), and
# `dot.source` is its DOT text.

# %%
dot = viz.to_dot(loss, depth=1)
dot
