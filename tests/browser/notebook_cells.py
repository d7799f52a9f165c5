"""The cells of the tutorial-like notebook the browser tests run (plain strings)."""

SETUP = '''\
import json, time
import dyntorch as torch
import dyntorch.nn as nn
import dyntorch.nn.functional as F
from dyntorch.debug import BackwardStepper
from dyntorch.viz.widget import show, stepper_widget, live

class Lin(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(o, i) * (1 / i ** 0.5))
        self.bias = nn.Parameter(torch.zeros(o))
    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = Lin(8, 16)
        self.fc2 = Lin(16, 4)
    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))

torch.manual_seed(0)
model = MLP()
x = torch.randn(5, 8)
target = torch.randn(5, 4)
loss = F.mse_loss(model(x), target)
'''

SHOW = '''\
w = show(loss, model=model)
print(json.dumps({"nodes": len(w.doc["nodes"]), "leaves": sum(n["kind"] == "leaf" for n in w.doc["nodes"])}))
w
'''

STEPPER = '''\
stepper = BackwardStepper(loss)
stepper  # a stepper displays itself as the debugger
'''

PROBE = '''\
st = stepper.current
print(json.dumps({"step": len(stepper.history), "current": f"n{st.node.seq}" if st else None,
                  "op": st.node.name() if st else None, "text": stepper.status_text(),
                  "grad_in": st.summary_in[0] if st else None}))
'''

STEP_IN_CODE = '''\
stepper.step()
print(json.dumps({"step": len(stepper.history), "current": f"n{stepper.current.node.seq}"}))
'''

BIG = '''\
h0 = torch.randn(4, 4, requires_grad=True)
v = torch.randn(4, 4, requires_grad=True)
h = h0
for _ in range(250):
    h = torch.tanh(h * v)
big = show(h.sum())
print(json.dumps({"nodes": len(big.doc["nodes"])}))
big
'''

TRANSFORMER = '''\
class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.proj = Lin(d, d), Lin(d, d), Lin(d, d), Lin(d, d)
    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        dh = q.shape[-1] // self.heads
        out = None
        for i in range(self.heads):
            sl = slice(i * dh, (i + 1) * dh)
            a = F.softmax(torch.matmul(q[:, sl], k[:, sl].transpose(0, 1)) * dh ** -0.5, dim=-1)
            o = torch.matmul(a, v)
            out = o if out is None else out + o
        return self.proj(out)

class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.attn = Attention(d, 8)
        self.fc1, self.fc2 = Lin(d, 4 * d), Lin(4 * d, d)
        self.g1, self.g2 = nn.Parameter(torch.ones(d)), nn.Parameter(torch.ones(d))
    def forward(self, x):
        x = F.layer_norm(x + self.attn(x), (x.shape[-1],), self.g1)
        return F.layer_norm(x + self.fc2(F.gelu(self.fc1(x))), (x.shape[-1],), self.g2)

class Blocks(nn.Module):
    def __init__(self, n, d):
        super().__init__()
        for i in range(n):
            setattr(self, str(i), Block(d))
    def forward(self, x):
        for i in range(len(self._modules)):
            x = getattr(self, str(i))(x)
        return x

class Transformer(nn.Module):
    def __init__(self, d=32, n=12):
        super().__init__()
        self.embed = Lin(8, d)
        self.blocks = Blocks(n, d)
        self.head = Lin(d, 4)
    def forward(self, x):
        return self.head(self.blocks(self.embed(x)))

tf = Transformer()
tloss = F.mse_loss(tf(x), target)
tw = show(tloss, model=tf)
print(json.dumps({"nodes": len(tw.doc["nodes"]), "scopes": len(tw.doc["scopes"])}))
tw
'''

LIVE = '''\
params = list(model.parameters())
with live(model=model) as view:
    for it in range(12):
        loss = F.mse_loss(model(x), target)
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= 0.05 * p.grad
        time.sleep(0.05)
print(json.dumps({"iterations": view.iteration, "loss": view.losses,
                  "modules": sorted(view.grad_norms), "redraws": view.redraws}))
'''

TF_STEPPER = '''\
ts = BackwardStepper(tloss)
ts.widget(model=tf)
ts.step(40)
ts
'''

NAN = '''\
a = torch.tensor([-1.0, 4.0, 9.0], requires_grad=True)
bad = BackwardStepper(torch.sqrt(a).sum())
bad.step(2)
bad
'''

CELLS = [SETUP, SHOW, STEPPER, PROBE, STEP_IN_CODE, PROBE, BIG, TRANSFORMER, LIVE, TF_STEPPER, NAN]

# ----------------------------------------------------------------------------- issue 12 (first minute)
RESNET = '''\
import dyntorch as torch
import dyntorch.nn as nn
import json
from dyntorch.debug import BackwardStepper
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

net = Net()
x = torch.randn(32, 8)
rloss = net(x).pow(2).mean()
'''

RES_SHOW = '''\
rv = viz.show(rloss, model=net)
print(json.dumps({"nodes": len(rv.doc["nodes"])}))
rv
'''

SEQ_STEPPER = '''\
seq = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
sloss = seq(torch.randn(16, 4)).pow(2).mean()
ss = BackwardStepper(sloss)
ss
'''

SEQ_PROBE = '''\
print(json.dumps({"step": ss.position, "scope": ss.current.node.scope if ss.current else None,
                  "scopes": [n.scope for n in ss.order]}))
'''

FOLDABLE = '''\
chain = nn.Sequential(nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6),
                      nn.Linear(6, 2))
fv = viz.show(chain(torch.randn(3, 6)).sum())
fv
'''

LIVE_ONCE = '''\
opt = torch.optim.SGD(net.parameters(), lr=0.05)
with viz.live(model=net) as lv:
    for _ in range(4):
        opt.zero_grad()
        l = net(x).pow(2).mean()
        l.backward()
        opt.step()
'''
