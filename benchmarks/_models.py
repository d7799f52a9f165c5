"""The benchmark models, written once for both libraries (``lib`` is dyntorch or torch), and
their NumPy floors (forward, backward and optimizer step by hand, see ``_floor.py``).

Each ``make_*`` returns ``(dyntorch_step, torch_step, floor_step)`` with the same weights on
all three sides; each step is one training step (zero grads, loss, backward, update).
"""
from __future__ import annotations

import _floor as fl
import numpy as np


def checked(name: str, steps: tuple) -> tuple:
    """``steps`` after one step of each side, whose losses (same weights, same batch) must
    agree: a floor or a model that computes something else is not timed."""
    ours, ref, floor = steps
    lt = float(ref().detach())
    fl.check_loss(name + " (NumPy floor)", floor(), lt)
    fl.check_loss(name + " (dyntorch)", float(ours().detach()), lt)
    return steps


def _copy_weights(ours, ref, dyntorch) -> None:
    ours.load_state_dict({k: dyntorch.tensor(v.detach().numpy().copy())
                          for k, v in ref.state_dict().items()})


def _train_step(lib, model, opt, x, y):
    ce = lib.nn.functional.cross_entropy

    def step():
        opt.zero_grad()
        loss = ce(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def _sgd_steps(dyntorch, torch, ours, ref, x, y) -> tuple:
    """The SGD(lr=0.01, momentum=0.9) training step of each library on the same batch."""
    return tuple(_train_step(lib, m, lib.optim.SGD(m.parameters(), lr=0.01, momentum=0.9),
                             lib.tensor(x), lib.tensor(y))
                 for lib, m in ((dyntorch, ours), (torch, ref)))


# ----------------------------------------------------------------------------- MLP
def make_mlp(dyntorch, torch, batch=128, sizes=(784, 256, 256, 10)):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)

    def model(lib):
        nn = lib.nn
        return nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.ReLU(),
                             nn.Linear(sizes[1], sizes[2]), nn.ReLU(),
                             nn.Linear(sizes[2], sizes[3]))

    torch.manual_seed(0)
    ref, ours = model(torch), model(dyntorch)
    _copy_weights(ours, ref, dyntorch)
    p = fl.params_of(ref)
    ws = [p[f"{i}.weight"] for i in (0, 2, 4)]
    bs = [p[f"{i}.bias"] for i in (0, 2, 4)]
    sgd = fl.SGD(ws + bs, 0.01, 0.9)

    def floor():
        h1 = fl.linear_fwd(x, ws[0], bs[0])
        np.maximum(h1, 0, out=h1)
        h2 = fl.linear_fwd(h1, ws[1], bs[1])
        np.maximum(h2, 0, out=h2)
        out = fl.linear_fwd(h2, ws[2], bs[2])
        loss, g = fl.cross_entropy(out, y)
        g, dw2, db2 = fl.linear_bwd(g, h2, ws[2])
        g *= h2 > 0
        g, dw1, db1 = fl.linear_bwd(g, h1, ws[1])
        g *= h1 > 0
        _, dw0, db0 = fl.linear_bwd(g, x, ws[0], want_dx=False)
        sgd.step([dw0, dw1, dw2, db0, db1, db2])
        return loss

    return _sgd_steps(dyntorch, torch, ours, ref, x, y) + (floor,)


# ----------------------------------------------------------------------------- LeNet
def make_lenet(dyntorch, torch, batch=64):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)

    def model(lib):
        nn = lib.nn
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10))

    torch.manual_seed(0)
    ref, ours = model(torch), model(dyntorch)
    _copy_weights(ours, ref, dyntorch)
    p = fl.params_of(ref)
    c1 = fl.Conv(p["0.weight"], p["0.bias"], 1, 2)
    c2 = fl.Conv(p["3.weight"], p["3.bias"])
    p1, p2 = fl.MaxPool(2, 2), fl.MaxPool(2, 2)
    ws = [p[f"{i}.weight"] for i in (7, 9, 11)]
    bs = [p[f"{i}.bias"] for i in (7, 9, 11)]
    sgd = fl.SGD([c1.w, c1.b, c2.w, c2.b] + ws + bs, 0.01, 0.9)

    def floor():
        a1 = np.maximum(c1.fwd(x), 0)
        q1 = p1.fwd(a1)
        a2 = np.maximum(c2.fwd(q1), 0)
        q2 = p2.fwd(a2)
        f = q2.reshape(batch, -1)
        h1 = np.maximum(fl.linear_fwd(f, ws[0], bs[0]), 0)
        h2 = np.maximum(fl.linear_fwd(h1, ws[1], bs[1]), 0)
        loss, g = fl.cross_entropy(fl.linear_fwd(h2, ws[2], bs[2]), y)
        g, dw2, db2 = fl.linear_bwd(g, h2, ws[2])
        g *= h2 > 0
        g, dw1, db1 = fl.linear_bwd(g, h1, ws[1])
        g *= h1 > 0
        g, dw0, db0 = fl.linear_bwd(g, f, ws[0])
        g = p2.bwd(g.reshape(q2.shape)) * (a2 > 0)
        g, dcw2, dcb2 = c2.bwd(g)
        g = p1.bwd(g) * (a1 > 0)
        _, dcw1, dcb1 = c1.bwd(g, want_dx=False)
        sgd.step([dcw1, dcb1, dcw2, dcb2, dw0, dw1, dw2, db0, db1, db2])
        return loss

    return _sgd_steps(dyntorch, torch, ours, ref, x, y) + (floor,)


# ----------------------------------------------------------------------------- ResNet-18
def _resnet18(lib, classes=10):
    """torchvision's ResNet-18 (BasicBlock, [2, 2, 2, 2]), written out by hand."""
    nn = lib.nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

        def forward(self, x):
            h = self.bn1(self.conv1(x)).relu()
            h = self.bn2(self.conv2(h))
            return (h + (x if self.down is None else self.down(x))).relu()

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.pool = nn.MaxPool2d(3, 2, 1)
            chans = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
            self.layers = nn.Sequential(*[b for cin, cout, s in chans
                                          for b in (Block(cin, cout, s), Block(cout, cout, 1))])
            self.fc = nn.Linear(512, classes)

        def forward(self, x):
            x = self.pool(self.bn1(self.conv1(x)).relu())
            x = self.layers(x)
            return self.fc(x.mean((2, 3)))

    return ResNet18()


class _FloorBlock:
    def __init__(self, p, pre, stride):
        self.c1 = fl.Conv(p[pre + "conv1.weight"], None, stride, 1)
        self.b1 = fl.BatchNorm(p[pre + "bn1.weight"], p[pre + "bn1.bias"])
        self.c2 = fl.Conv(p[pre + "conv2.weight"], None, 1, 1)
        self.b2 = fl.BatchNorm(p[pre + "bn2.weight"], p[pre + "bn2.bias"])
        self.dc = self.db = None
        if pre + "down.0.weight" in p:
            self.dc = fl.Conv(p[pre + "down.0.weight"], None, stride, 0)
            self.db = fl.BatchNorm(p[pre + "down.1.weight"], p[pre + "down.1.bias"])

    def params(self):
        mods = [self.c1, self.b1, self.c2, self.b2] + ([self.dc, self.db] if self.dc else [])
        return [a for m in mods for a in ((m.w,) if isinstance(m, fl.Conv) else (m.w, m.b))]

    def fwd(self, x):
        self.h1 = np.maximum(self.b1.fwd(self.c1.fwd(x)), 0)
        h = self.b2.fwd(self.c2.fwd(self.h1))
        h += x if self.dc is None else self.db.fwd(self.dc.fwd(x))
        self.out = np.maximum(h, 0)
        return self.out

    def bwd(self, g):
        g = g * (self.out > 0)
        grads = []
        gx = g
        g2, dbw2, dbb2 = self.b2.bwd(g)
        g2, dcw2, _ = self.c2.bwd(g2)
        g2 = g2 * (self.h1 > 0)
        g2, dbw1, dbb1 = self.b1.bwd(g2)
        g2, dcw1, _ = self.c1.bwd(g2)
        grads = [dcw1, dbw1, dbb1, dcw2, dbw2, dbb2]
        if self.dc is not None:
            gd, ddbw, ddbb = self.db.bwd(gx)
            gx, ddcw, _ = self.dc.bwd(gd)
            grads += [ddcw, ddbw, ddbb]
        return g2 + gx, grads


def make_resnet18(dyntorch, torch, batch=16, size=64):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    torch.manual_seed(0)
    ref, ours = _resnet18(torch), _resnet18(dyntorch)
    _copy_weights(ours, ref, dyntorch)
    p = fl.params_of(ref)
    c1 = fl.Conv(p["conv1.weight"], None, 2, 3)
    b1 = fl.BatchNorm(p["bn1.weight"], p["bn1.bias"])
    pool = fl.MaxPool(3, 2, 1)
    blocks = [_FloorBlock(p, f"layers.{i}.", 2 if i in (2, 4, 6) else 1) for i in range(8)]
    fw, fb = p["fc.weight"], p["fc.bias"]
    params = [c1.w, b1.w, b1.b] + [a for b in blocks for a in b.params()] + [fw, fb]
    sgd = fl.SGD(params, 0.01, 0.9)

    def floor():
        a = np.maximum(b1.fwd(c1.fwd(x)), 0)
        h = pool.fwd(a)
        for b in blocks:
            h = b.fwd(h)
        feat = h.mean((2, 3))
        loss, g = fl.cross_entropy(fl.linear_fwd(feat, fw, fb), y)
        g, dfw, dfb = fl.linear_bwd(g, feat, fw)
        g = np.broadcast_to((g / (h.shape[2] * h.shape[3]))[:, :, None, None], h.shape)
        grads = []
        for b in reversed(blocks):
            g, gs = b.bwd(g)
            grads = gs + grads
        g = pool.bwd(g) * (a > 0)
        g, dbw, dbb = b1.bwd(g)
        _, dcw, _ = c1.bwd(g, want_dx=False)
        sgd.step([dcw, dbw, dbb] + grads + [dfw, dfb])
        return loss

    return _sgd_steps(dyntorch, torch, ours, ref, x, y) + (floor,)


# ----------------------------------------------------------------------------- char GPT
def _char_gpt(lib, vocab, block, d, heads, layers):
    """A GPT-style character model: pre-norm blocks, causal self-attention, GELU(tanh) MLP."""
    nn, F = lib.nn, lib.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x, mask):
            b, t, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).reshape(b, t, 3, heads, d // heads).permute(
                2, 0, 3, 1, 4).unbind(0)
            att = (q @ k.transpose(-2, -1)) * (1.0 / (d // heads) ** 0.5)
            att = F.softmax(att.masked_fill(mask, float("-inf")), -1)
            a = (att @ v).transpose(1, 2).reshape(b, t, d)
            x = x + self.proj(a)
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))

    class CharGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(block, d)
            self.blocks = nn.ModuleList([Block() for _ in range(layers)])
            self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)

        def forward(self, idx):
            t = idx.shape[1]
            mask = lib.triu(lib.ones(t, t, dtype=lib.bool), diagonal=1)
            x = self.tok(idx) + self.pos(lib.arange(t))
            for blk in self.blocks:
                x = blk(x, mask)
            return self.head(self.ln(x)).reshape(-1, vocab)

    return CharGPT()


def make_char_gpt(dyntorch, torch, vocab=65, block=32, batch=32, d=64, heads=4, layers=2):
    rng = np.random.default_rng(0)
    idx = rng.integers(0, vocab, (batch, block))
    y = rng.integers(0, vocab, batch * block)
    torch.manual_seed(0)
    ref = _char_gpt(torch, vocab, block, d, heads, layers)
    ours = _char_gpt(dyntorch, vocab, block, d, heads, layers)
    _copy_weights(ours, ref, dyntorch)
    p = fl.params_of(ref)
    names = [k for k, _ in ref.named_parameters()]
    params = [p[k] for k in names]
    adamw = fl.AdamW(params, lr=3e-3)
    hd = d // heads
    mask = np.where(np.triu(np.ones((block, block), bool), 1), -np.inf, 0).astype(np.float32)
    scale = 1.0 / hd ** 0.5
    onehot = np.zeros((batch * block, vocab), np.float32)
    onehot[np.arange(batch * block), idx.reshape(-1)] = 1

    def floor():
        grads = {}
        x = p["tok.weight"][idx] + p["pos.weight"][:block]
        saved = []
        for i in range(layers):
            pre = f"blocks.{i}."
            h, ln1 = fl.layer_norm_fwd(x, p[pre + "ln1.weight"], p[pre + "ln1.bias"])
            qkv = fl.linear_fwd(h, p[pre + "qkv.weight"], p[pre + "qkv.bias"])
            q, k, v = qkv.reshape(batch, block, 3, heads, hd).transpose(2, 0, 3, 1, 4)
            s = q @ k.transpose(0, 1, 3, 2)
            s *= scale
            s += mask
            s -= s.max(-1, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(-1, keepdims=True)
            a = (s @ v).transpose(0, 2, 1, 3).reshape(batch, block, d)
            x1 = x + fl.linear_fwd(a, p[pre + "proj.weight"], p[pre + "proj.bias"])
            h2, ln2 = fl.layer_norm_fwd(x1, p[pre + "ln2.weight"], p[pre + "ln2.bias"])
            f1 = fl.linear_fwd(h2, p[pre + "fc1.weight"], p[pre + "fc1.bias"])
            gl, t = fl.gelu_tanh_fwd(f1)
            x = x1 + fl.linear_fwd(gl, p[pre + "fc2.weight"], p[pre + "fc2.bias"])
            saved.append((h, ln1, q, k, v, s, a, h2, ln2, f1, gl, t))
        hf, lnf = fl.layer_norm_fwd(x, p["ln.weight"], p["ln.bias"])
        logits = fl.linear_fwd(hf, p["head.weight"], p["head.bias"]).reshape(-1, vocab)
        loss, g = fl.cross_entropy(logits, y)
        g, grads["head.weight"], grads["head.bias"] = fl.linear_bwd(
            g.reshape(batch, block, vocab), hf, p["head.weight"])
        gx, grads["ln.weight"], grads["ln.bias"] = fl.layer_norm_bwd(g, p["ln.weight"], lnf)
        for i in reversed(range(layers)):
            pre = f"blocks.{i}."
            h, ln1, q, k, v, s, a, h2, ln2, f1, gl, t = saved[i]
            g, grads[pre + "fc2.weight"], grads[pre + "fc2.bias"] = fl.linear_bwd(
                gx, gl, p[pre + "fc2.weight"])
            g = fl.gelu_tanh_bwd(g, f1, t)
            g, grads[pre + "fc1.weight"], grads[pre + "fc1.bias"] = fl.linear_bwd(
                g, h2, p[pre + "fc1.weight"])
            g, grads[pre + "ln2.weight"], grads[pre + "ln2.bias"] = fl.layer_norm_bwd(
                g, p[pre + "ln2.weight"], ln2)
            gx = gx + g
            g, grads[pre + "proj.weight"], grads[pre + "proj.bias"] = fl.linear_bwd(
                gx, a, p[pre + "proj.weight"])
            ga = g.reshape(batch, block, heads, hd).transpose(0, 2, 1, 3)
            gs = ga @ v.transpose(0, 1, 3, 2)
            gv = s.transpose(0, 1, 3, 2) @ ga
            gs = s * (gs - (gs * s).sum(-1, keepdims=True)) * scale
            gq = gs @ k
            gk = gs.transpose(0, 1, 3, 2) @ q
            gqkv = np.stack([gq, gk, gv]).transpose(1, 3, 0, 2, 4).reshape(batch, block, 3 * d)
            g, grads[pre + "qkv.weight"], grads[pre + "qkv.bias"] = fl.linear_bwd(
                gqkv, h, p[pre + "qkv.weight"])
            g, grads[pre + "ln1.weight"], grads[pre + "ln1.bias"] = fl.layer_norm_bwd(
                g, p[pre + "ln1.weight"], ln1)
            gx = gx + g
        grads["tok.weight"] = onehot.T @ gx.reshape(-1, d)
        grads["pos.weight"] = gx.sum(0)
        adamw.step([grads[k] for k in names])
        return loss

    def lib_step(lib, model, x, yy):
        return _train_step(lib, model, lib.optim.AdamW(model.parameters(), lr=3e-3), x, yy)

    return (lib_step(dyntorch, ours, dyntorch.tensor(idx), dyntorch.tensor(y)),
            lib_step(torch, ref, torch.tensor(idx), torch.tensor(y)),
            floor)
