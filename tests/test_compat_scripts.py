"""Typical PyTorch user scripts run unchanged on dyntorch and on torch 2.13.0.

Each script is a function of the library module (``import dyntorch as torch`` vs
``import torch``).  Randomness differs between the two libraries, so every script
draws its data and its initial weights from NumPy and copies them in; the printed
results (losses, shapes, predictions) of both runs are then compared.
"""
from __future__ import annotations

import io

import numpy as np
import pytest

import dyntorch

reference = pytest.importorskip("torch")

LIBS = {"dyntorch": dyntorch, "torch": reference}


def _init(lib, model, seed=0):
    """Overwrite every parameter (in registration order) with NumPy draws."""
    rng = np.random.default_rng(seed)
    with lib.no_grad():
        for _name, p in model.named_parameters():
            p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape)) * 0.2, dtype=p.dtype))


def _dt(dtype):
    """A dtype's name without the library prefix ('float32')."""
    return str(dtype).rsplit(".", 1)[-1]


def _close(a, b, rtol=1e-4, atol=1e-5, path="out"):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], rtol, atol, f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, rtol, atol, f"{path}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=rtol, abs=atol), path
    elif isinstance(a, np.ndarray):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=path)
    else:
        assert a == b, path


def _both(script, **kw):
    ours = script(dyntorch, **kw)
    ref = script(reference, **kw)
    return ours, ref


# --------------------------------------------------------------------- scripts

def mlp_mnist_loop(torch):
    """The classic MNIST-style loop: TensorDataset + DataLoader + MLP + SGD."""
    nn, F = torch.nn, torch.nn.functional
    from importlib import import_module

    data = import_module(torch.__name__ + ".utils.data")
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.standard_normal((64, 1, 8, 8)).astype(np.float32))
    y = torch.tensor(rng.integers(0, 10, 64))
    loader = data.DataLoader(data.TensorDataset(x, y), batch_size=16, shuffle=False)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(64, 32)
            self.fc2 = nn.Linear(32, 10)

        def forward(self, x):
            x = torch.flatten(x, 1)
            return self.fc2(F.relu(self.fc1(x)))

    model = Net()
    _init(torch, model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses, correct = [], 0
    for _epoch in range(2):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        for xb, yb in loader:
            pred = model(xb).argmax(dim=1)
            correct += (pred == yb).sum().item()
    return {"losses": losses, "correct": correct, "nbatches": len(loader),
            "batch_shape": tuple(next(iter(loader))[0].shape)}


def cnn_bn_dropout(torch):
    """CNN with BatchNorm2d and Dropout; train step then eval (dropout off, running stats)."""
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 4),
    )
    _init(torch, model)
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.standard_normal((6, 3, 12, 12)).astype(np.float32))
    y = torch.tensor(rng.integers(0, 4, 6))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    out = model(x)
    train_shape = tuple(out.shape)
    # the dropout masks differ between libraries: compare what does not depend on them
    nn.functional.cross_entropy(out, y).backward()
    model.eval()
    with torch.no_grad():
        ev = model(x)
        ev2 = model(x)
    opt.step()
    bn = model[1]
    with torch.no_grad():
        stepped = model(x)
    return {"train_shape": train_shape, "eval": ev.numpy(),
            "stepped": (tuple(stepped.shape), bool(torch.isfinite(stepped).all())),
            "eval_deterministic": bool(torch.equal(ev, ev2)),
            "running_mean": bn.running_mean.numpy(), "running_var": bn.running_var.numpy(),
            "num_batches_tracked": int(bn.num_batches_tracked), "training": model.training,
            "bn_training": bn.training}


def custom_dataset(torch):
    """A map-style Dataset with __len__/__getitem__ returning dicts, default collate."""
    from importlib import import_module

    data = import_module(torch.__name__ + ".utils.data")

    class Squares(data.Dataset):
        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            return {"x": torch.tensor([float(i), float(i) ** 2]), "y": i % 3, "name": f"s{i}"}

    ds = Squares(10)
    loader = data.DataLoader(ds, batch_size=4, drop_last=False)
    batches = []
    for b in loader:
        batches.append((tuple(b["x"].shape), b["y"].tolist(), list(b["name"]),
                        _dt(b["y"].dtype), b["x"].sum().item()))
    sub = data.Subset(ds, [1, 3])
    train, val = data.random_split(range(10), [7, 3])
    return {"batches": batches, "len": len(loader), "sub": sub[1]["y"],
            "split": (len(train), len(val))}


def module_list_residual(torch):
    """nn.Module with a ModuleList of residual blocks, LayerNorm, named_parameters."""
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.norm = nn.LayerNorm(d)
            self.lin = nn.Linear(d, d)

        def forward(self, x):
            return x + F.gelu(self.lin(self.norm(x)))

    class Net(nn.Module):
        def __init__(self, d, n):
            super().__init__()
            self.blocks = nn.ModuleList([Block(d) for _ in range(n)])
            self.head = nn.Linear(d, 1)
            self.register_buffer("scale", torch.ones(1) * 2)

        def forward(self, x):
            for blk in self.blocks:
                x = blk(x)
            return self.head(x) * self.scale

    net = Net(6, 3)
    _init(torch, net)
    rng = np.random.default_rng(3)
    x = torch.tensor(rng.standard_normal((5, 6)), dtype=torch.float32, requires_grad=True)
    out = net(x)
    out.sum().backward()
    names = [n for n, _ in net.named_parameters()]
    return {"out": out.detach().numpy(), "xgrad": x.grad.numpy(), "names": names,
            "nparams": sum(p.numel() for p in net.parameters()),
            "buffers": [n for n, _ in net.named_buffers()],
            "grad0": net.blocks[0].lin.weight.grad.numpy(), "len": len(net.blocks),
            "sd_keys": list(net.state_dict().keys())}


def lstm_packed(torch):
    """Seq2seq-ish encoder: Embedding + LSTM over packed variable-length sequences."""
    nn = torch.nn
    from importlib import import_module

    rnn_utils = import_module(torch.__name__ + ".nn.utils.rnn")
    emb = nn.Embedding(20, 5, padding_idx=0)
    lstm = nn.LSTM(5, 7, num_layers=2, batch_first=True, bidirectional=True)
    _init(torch, emb)
    _init(torch, lstm, seed=5)
    seqs = [torch.tensor([3, 4, 5, 6]), torch.tensor([7, 8]), torch.tensor([9, 10, 11])]
    lengths = torch.tensor([len(s) for s in seqs])
    padded = rnn_utils.pad_sequence(seqs, batch_first=True, padding_value=0)
    packed = rnn_utils.pack_padded_sequence(emb(padded), lengths, batch_first=True,
                                            enforce_sorted=False)
    out, (h, c) = lstm(packed)
    unpacked, out_lens = rnn_utils.pad_packed_sequence(out, batch_first=True)
    loss = unpacked.pow(2).sum() + h.sum()
    loss.backward()
    return {"padded": padded.tolist(), "unpacked": unpacked.detach().numpy(),
            "lens": out_lens.tolist(), "h": h.detach().numpy(), "c_shape": tuple(c.shape),
            "emb_grad": emb.weight.grad.numpy(), "loss": loss.item()}


def transformer_classifier(torch):
    """TransformerEncoder over token embeddings, mean-pooled, with a key padding mask."""
    nn = torch.nn
    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0,
                                       batch_first=True)
    enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    emb = nn.Embedding(12, 8)
    head = nn.Linear(8, 3)
    model = nn.ModuleDict({"emb": emb, "enc": enc, "head": head})
    _init(torch, model)
    tokens = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    mask = tokens == 0
    h = model["enc"](model["emb"](tokens), src_key_padding_mask=mask)
    pooled = h.masked_fill(mask.unsqueeze(-1), 0).sum(1) / (~mask).sum(1, keepdim=True)
    logits = model["head"](pooled)
    loss = nn.functional.cross_entropy(logits, torch.tensor([0, 2]))
    loss.backward()
    return {"logits": logits.detach().numpy(), "loss": loss.item(),
            "g": model["emb"].weight.grad.numpy()}


def clip_and_schedule(torch):
    """Gradient clipping + StepLR / ReduceLROnPlateau / OneCycle-style loop."""
    nn = torch.nn
    model = nn.Linear(4, 2)
    _init(torch, model)
    rng = np.random.default_rng(4)
    x = torch.tensor(rng.standard_normal((8, 4)).astype(np.float32))
    y = torch.tensor(rng.standard_normal((8, 2)).astype(np.float32))
    opt = torch.optim.SGD(model.parameters(), lr=0.5, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs, norms, losses = [], [], []
    for _ in range(5):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x) * 10, y)
        loss.backward()
        norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)))
        nn.utils.clip_grad_value_(model.parameters(), 0.3)
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
        losses.append(loss.item())
    opt2 = torch.optim.AdamW(model.parameters(), lr=0.1)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=4)
    plateau_opt = torch.optim.SGD(model.parameters(), lr=1.0)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(plateau_opt, patience=1, factor=0.1)
    cos_lrs, plat_lrs = [], []
    for metric in [1.0, 1.0, 1.0, 1.0, 0.5]:
        opt2.step()
        cos.step()
        cos_lrs.append(opt2.param_groups[0]["lr"])
        plateau.step(metric)
        plat_lrs.append(plateau_opt.param_groups[0]["lr"])
    return {"lrs": lrs, "norms": norms, "losses": losses, "cos": cos_lrs, "plat": plat_lrs}


def save_load_resume(torch):
    """Save model + optimizer state, reload into fresh objects, resume training identically."""
    nn = torch.nn
    rng = np.random.default_rng(6)
    x = torch.tensor(rng.standard_normal((10, 3)).astype(np.float32))
    y = torch.tensor(rng.standard_normal((10, 1)).astype(np.float32))

    def make():
        m = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))
        _init(torch, m)
        return m, torch.optim.Adam(m.parameters(), lr=0.01)

    def step(m, o):
        o.zero_grad()
        loss = nn.functional.mse_loss(m(x), y)
        loss.backward()
        o.step()
        return loss.item()

    m, o = make()
    for _ in range(3):
        step(m, o)
    buf = io.BytesIO()
    torch.save({"model": m.state_dict(), "optim": o.state_dict(), "epoch": 3}, buf)
    buf.seek(0)
    ck = torch.load(buf)
    m2, o2 = make()
    m2.load_state_dict(ck["model"])
    o2.load_state_dict(ck["optim"])
    cont = [step(m, o) for _ in range(2)]
    resumed = [step(m2, o2) for _ in range(2)]
    res = m2.load_state_dict(m.state_dict(), strict=True)
    return {"cont": cont, "resumed": resumed, "epoch": ck["epoch"],
            "keys": list(ck["model"].keys()), "state_steps": float(o.state_dict()["state"][0]["step"]),
            "pg_keys": sorted(k for k in ck["optim"]["param_groups"][0] if k != "params"),
            "missing": list(res.missing_keys), "unexpected": list(res.unexpected_keys)}


def inference_no_grad(torch):
    """Inference under no_grad / inference_mode: softmax, argmax, topk, max with indices."""
    F = torch.nn.functional
    rng = np.random.default_rng(7)
    logits = torch.tensor(rng.standard_normal((4, 6)).astype(np.float32), requires_grad=True)
    with torch.no_grad():
        probs = F.softmax(logits, dim=-1)
        top = probs.topk(3, dim=1)
        mx, idx = torch.max(probs, dim=1)
        rg = probs.requires_grad
    with torch.inference_mode():
        lp = torch.log_softmax(logits, 1)
    return {"probs": probs.numpy(), "topv": top.values.numpy(), "topi": top.indices.tolist(),
            "argmax": probs.argmax(-1).tolist(), "mx": mx.numpy(), "idx": idx.tolist(),
            "rg": rg, "lp_rg": lp.requires_grad, "sum1": probs.sum(1).numpy(),
            "enabled": torch.is_grad_enabled()}


def tensor_idioms(torch):
    """Everyday tensor manipulation: views, joins, gather/scatter, masks, einsum, setitem."""
    out = {}
    a = torch.arange(24).view(2, 3, 4)
    out["permute"] = a.permute(2, 0, 1).contiguous().view(4, -1).tolist()
    out["is_contig"] = a.permute(2, 0, 1).is_contiguous()
    out["cat"] = torch.cat([a, a * 2], dim=1).shape
    out["stack"] = tuple(torch.stack([a, a], dim=-1).shape)
    out["transpose"] = a.transpose(0, 1).reshape(3, -1)[1].tolist()
    b = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    idx = torch.tensor([[2, 0], [1, 1]])
    out["gather"] = torch.gather(b, 1, idx).tolist()
    out["scatter"] = torch.zeros(2, 3).scatter(1, idx, b[:, :2]).tolist()
    out["scatter_add"] = torch.zeros(2, 3).scatter_add_(1, idx, torch.ones(2, 2)).tolist()
    out["masked_fill"] = b.masked_fill(b > 3, -1.0).tolist()
    out["where"] = torch.where(b > 2, b, torch.zeros_like(b)).tolist()
    out["where_scalar"] = torch.where(b > 2, b, 0.0).tolist()
    out["einsum"] = torch.einsum("ij,kj->ik", b, b).tolist()
    out["bmm"] = torch.einsum("bij,bjk->bik", b[None], b.T[None]).shape
    out["mask_index"] = b[b > 2].tolist()
    c = b.clone()
    c[c > 4] = 0
    c[0, 1] = 9
    c[:, 0] = torch.tensor([7.0, 8.0])
    c[torch.tensor([1])] += 1
    out["setitem"] = c.tolist()
    out["fancy"] = b[[0, 1, 1], [2, 0, 1]].tolist()
    out["ellipsis"] = tuple(a[..., None, 1:].shape)
    out["from_numpy"] = torch.from_numpy(np.arange(3, dtype=np.int32)).dtype == torch.int32
    out["tensor_np"] = torch.tensor(np.ones((2, 2))).dtype == torch.float64
    out["tensor_list_dtype"] = _dt(torch.tensor([1, 2]).dtype), _dt(torch.tensor([1.0, 2]).dtype)
    out["tensor_bool"] = _dt(torch.tensor([True, False]).dtype)
    out["item"] = b.sum().item()
    out["item_int"] = type(torch.tensor(3).item()).__name__
    out["tolist"] = torch.tensor([[1, 2]]).tolist()
    out["float"] = _dt(torch.arange(3).float().dtype), _dt(torch.arange(3.0).long().dtype)
    out["to"] = _dt(b.to(torch.int64).dtype), _dt(b.double().dtype), _dt(b.half().dtype)
    out["type"] = b.type(torch.int32).tolist()
    out["bool"] = b.bool().all().item()
    out["arange"] = torch.arange(0, 1, 0.25).tolist(), _dt(torch.arange(5).dtype)
    out["linspace"] = torch.linspace(0, 1, 5).tolist()
    torch.manual_seed(0)
    r = torch.randint(0, 10, (3, 4))
    out["randint"] = (tuple(r.shape), _dt(r.dtype), bool(((r >= 0) & (r < 10)).all()))
    out["randn"] = tuple(torch.randn(2, 3).shape), _dt(torch.rand(2).dtype)
    out["full"] = torch.full((2, 2), 7).tolist(), _dt(torch.full((2,), 7).dtype)
    out["eye"] = torch.eye(3)[1].tolist()
    out["unsqueeze"] = tuple(b.unsqueeze(0).unsqueeze(-1).squeeze().shape)
    out["chunk"] = [tuple(t.shape) for t in torch.arange(10).chunk(3)]
    out["split"] = [tuple(t.shape) for t in torch.arange(10).split([3, 7])]
    out["expand"] = tuple(torch.ones(3, 1).expand(-1, 4).shape)
    out["repeat"] = torch.tensor([1, 2]).repeat(2, 2).tolist()
    out["flip"] = torch.arange(4).flip(0).tolist()
    out["sort"] = torch.tensor([3, 1, 2]).sort(descending=True).indices.tolist()
    out["unique"] = torch.tensor([3, 1, 3, 2]).unique().tolist()
    out["nonzero"] = torch.tensor([0, 1, 0, 2]).nonzero().squeeze(1).tolist()
    out["clamp"] = torch.tensor([-2.0, 0.5, 3.0]).clamp(min=0, max=1).tolist()
    out["numel"] = a.numel(), a.dim(), a.size(1), a.size(), a.ndim
    out["div_int"] = (torch.tensor([5, 6]) / 2).tolist(), (torch.tensor([5, 6]) // 2).tolist()
    out["mean_dim"] = b.mean(dim=(0, 1)).item(), b.std().item()
    out["one_hot"] = torch.nn.functional.one_hot(torch.tensor([0, 2]), 3).tolist()
    out["cumsum"] = torch.arange(4).cumsum(0).tolist()
    out["mm"] = (b @ b.T).tolist()
    out["all_close"] = torch.allclose(b, b + 1e-9)
    out["numpy_roundtrip"] = b.numpy().sum().item() if hasattr(b.numpy().sum(), "item") else None
    return out


def autograd_basics(torch):
    """requires_grad leaves, retain_grad, detach, grad accumulation, torch.autograd.grad."""
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    y.retain_grad()
    z = (y * 3).sum()
    z.backward(retain_graph=True)
    g1 = x.grad.clone()
    z.backward()
    acc = x.grad.tolist()
    x.grad.zero_()
    w = torch.ones(3, requires_grad=True)
    (gw,) = torch.autograd.grad((w * x.detach()).pow(2).sum(), [w], create_graph=True)
    (gww,) = torch.autograd.grad(gw.sum(), [w])
    return {"g1": g1.tolist(), "acc": acc, "ygrad": y.grad.tolist(), "gw": gw.tolist(),
            "gww": gww.tolist(), "leaf": (x.is_leaf, y.is_leaf), "rg": y.requires_grad,
            "detach_rg": y.detach().requires_grad, "gf": y.grad_fn is not None}


def custom_function_and_hooks(torch):
    """A custom autograd.Function (straight-through clamp), tensor and module hooks."""
    nn = torch.nn

    class ClampST(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, lo, hi):
            ctx.save_for_backward(x)
            ctx.lo = lo
            return x.clamp(lo, hi)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (x > ctx.lo).to(g.dtype), None, None

    lin = nn.Linear(3, 2)
    _init(torch, lin)
    seen = []
    h = lin.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    x = torch.tensor([[0.5, -1.0, 2.0], [1.0, 1.0, -3.0]], requires_grad=True)
    x.register_hook(lambda g: g * 10)
    y = ClampST.apply(lin(x), -0.1, 0.3)
    y.sum().backward()
    h.remove()
    lin(x)
    return {"y": y.detach().numpy(), "xg": x.grad.numpy(), "wg": lin.weight.grad.numpy(),
            "seen": seen}


def gan_two_optimizers(torch):
    """GAN-style alternating updates with detach() and two optimizers."""
    nn, F = torch.nn, torch.nn.functional
    G = nn.Sequential(nn.Linear(2, 4), nn.LeakyReLU(0.2), nn.Linear(4, 2))
    D = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    _init(torch, G, 1)
    _init(torch, D, 2)
    og = torch.optim.Adam(G.parameters(), lr=0.01, betas=(0.5, 0.999))
    od = torch.optim.Adam(D.parameters(), lr=0.01, betas=(0.5, 0.999))
    rng = np.random.default_rng(9)
    real = torch.tensor(rng.standard_normal((8, 2)).astype(np.float32))
    z = torch.tensor(rng.standard_normal((8, 2)).astype(np.float32))
    ones, zeros = torch.ones(8, 1), torch.zeros(8, 1)
    hist = []
    for _ in range(3):
        fake = G(z)
        od.zero_grad()
        ld = F.binary_cross_entropy_with_logits(D(real), ones) + \
            F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
        ld.backward()
        od.step()
        og.zero_grad()
        lg = F.binary_cross_entropy_with_logits(D(fake), ones)
        lg.backward()
        og.step()
        hist.append((ld.item(), lg.item()))
    return {"hist": hist, "g0": G[0].weight.detach().numpy()}


def freeze_tie_accumulate(torch):
    """Frozen layers, tied embedding/output weights, gradient accumulation over micro-batches."""
    nn, F = torch.nn, torch.nn.functional

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(7, 4)
            self.mid = nn.Linear(4, 4)
            self.out = nn.Linear(4, 7, bias=False)
            self.out.weight = self.emb.weight  # weight tying

        def forward(self, t):
            return self.out(torch.relu(self.mid(self.emb(t))))

    m = LM()
    _init(torch, m)
    for p in m.mid.parameters():
        p.requires_grad_(False)
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
    toks = torch.tensor([[1, 2, 3], [4, 5, 6]])
    tgt = torch.tensor([[2, 3, 4], [5, 6, 0]])
    opt.zero_grad()
    for i in range(2):  # two micro-batches, one step
        logits = m(toks[i:i + 1])
        loss = F.cross_entropy(logits.view(-1, 7), tgt[i:i + 1].reshape(-1)) / 2
        loss.backward()
    opt.step()
    return {"n_params": len(list(m.parameters())), "n_train": len(opt.param_groups[0]["params"]),
            "tied": m.out.weight is m.emb.weight, "mid_grad": m.mid.weight.grad is None,
            "emb": m.emb.weight.detach().numpy(), "sd": sorted(m.state_dict().keys())}


SCRIPTS = [mlp_mnist_loop, cnn_bn_dropout, custom_dataset, module_list_residual, lstm_packed,
           transformer_classifier, clip_and_schedule, save_load_resume, inference_no_grad,
           tensor_idioms, autograd_basics, custom_function_and_hooks, gan_two_optimizers,
           freeze_tie_accumulate]


@pytest.mark.parametrize("lib", ["dyntorch", "torch"])
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.__name__)
def test_script_runs(script, lib):
    """The same source code runs on both libraries."""
    script(LIBS[lib])


def _normalise(v):
    """Turn tensors/sizes/dtypes into plain Python/NumPy for comparing."""
    if isinstance(v, dict):
        return {k: _normalise(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_normalise(x) for x in v) if not hasattr(v, "_fields") else tuple(v)
    if isinstance(v, (dyntorch.Size, reference.Size)):
        return tuple(v)
    return v


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.__name__)
def test_script_matches_torch(script):
    """Printed results match torch's on the same data and weights."""
    ours, ref = _both(script)
    _close(_normalise(ref), _normalise(ours))


def test_numpy_style_reduction_keywords():
    x = dyntorch.ones(2, 3)
    assert x.sum(axis=1).tolist() == [3.0, 3.0]
    assert tuple(x.mean(1, keepdims=True).shape) == (2, 1)


@pytest.mark.parametrize("expr", [
    "np.float64(2.0) * x", "x * np.float64(2.0)", "np.sqrt(4.0) * x", "x / np.sqrt(4.0)",
    "np.float32(2) + x", "np.int64(3) - x", "np.float64(2.0) / x", "x ** np.int64(2)",
])
def test_numpy_scalars_act_like_python_numbers(expr):
    """NumPy scalars (np.sqrt(d), a np.float64 read from a NumPy array) behave as Python
    numbers in torch: the result stays a float32 tensor and keeps its graph."""
    results = {}
    for name, lib in LIBS.items():
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = eval(expr, {"np": np, "x": x})
        assert type(y).__name__ == "Tensor", f"{name}: {type(y)}"
        y.sum().backward()
        results[name] = (_dt(y.dtype), y.detach().numpy(), x.grad.numpy())
    _close(results["torch"], results["dyntorch"])


def test_finfo_iinfo_match_torch():
    """torch.finfo(x.dtype).min is the usual fill for attention masks."""
    for name in ["float16", "float32", "float64"]:
        ours, ref = dyntorch.finfo(getattr(dyntorch, name)), reference.finfo(getattr(reference,
                                                                                      name))
        for attr in ["bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"]:
            assert getattr(ours, attr) == pytest.approx(getattr(ref, attr), rel=1e-6), attr
        assert ours.dtype == ref.dtype
    assert dyntorch.finfo().eps == reference.finfo().eps
    for name in ["uint8", "int8", "int16", "int32", "int64"]:
        ours, ref = dyntorch.iinfo(getattr(dyntorch, name)), reference.iinfo(getattr(reference,
                                                                                      name))
        assert (ours.bits, ours.min, ours.max, ours.dtype) == (ref.bits, ref.min, ref.max,
                                                               ref.dtype)
    with pytest.raises(TypeError, match="iinfo"):
        dyntorch.finfo(dyntorch.int64)
    x = dyntorch.zeros(2, 3)
    filled = x.masked_fill(dyntorch.ones(2, 3, dtype=dyntorch.bool), dyntorch.finfo(x.dtype).min)
    assert filled.min().item() == reference.finfo(reference.float32).min


def script_boilerplate(torch):
    """The lines training scripts start with, and legacy constructors."""
    nn = torch.nn
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.cuda.manual_seed_all(0)
    torch.use_deterministic_algorithms(True)
    det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)
    n = torch.get_num_threads()
    torch.set_num_threads(n)
    mps = torch.backends.mps.is_available()
    device = torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    model = torch.compile(nn.Linear(2, 1).to(device))
    _init(torch, model)

    @torch.compile
    def double(x):
        return x * 2

    with torch.autocast(device_type="cpu", enabled=False):
        out = model(torch.ones(3, 2, device=device))
    return {"det": det, "threads_int": isinstance(n, int) and n >= 1, "device": str(device),
            "out": out.detach().numpy(), "double": double(torch.ones(2)).tolist(),
            "float": torch.FloatTensor([1, 2]).tolist(), "long": _dt(torch.LongTensor([1]).dtype),
            "sized": tuple(torch.FloatTensor(2, 3).shape),
            "isinstance": (isinstance(torch.ones(1), torch.FloatTensor),
                           isinstance(torch.ones(1), torch.LongTensor)),
            "cudnn": torch.backends.cudnn.deterministic,
            "type_legacy": torch.ones(2).type(torch.LongTensor).tolist(),
            "type_str": _dt(torch.ones(2).type("torch.IntTensor").dtype)}


def grad_scaler_loop(torch):
    """A mixed-precision style loop with GradScaler on the CPU, including an inf step."""
    nn = torch.nn
    model = nn.Linear(3, 1)
    _init(torch, model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0, growth_interval=2)
    rng = np.random.default_rng(8)
    x = torch.tensor(rng.standard_normal((4, 3)).astype(np.float32))
    scales, weights = [], []
    for i in range(5):
        opt.zero_grad()
        with torch.autocast("cpu", enabled=False):
            loss = model(x).pow(2).mean()
        if i == 2:
            loss = loss * float("inf")
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
        weights.append(model.weight.detach().numpy().copy())
    sd = scaler.state_dict()
    s2 = torch.amp.GradScaler("cpu")
    s2.load_state_dict(sd)
    return {"scales": scales, "weights": weights, "loaded": s2.get_scale(),
            "sd": sorted(sd)}


@pytest.mark.parametrize("script", [script_boilerplate, grad_scaler_loop],
                         ids=lambda s: s.__name__)
def test_boilerplate_matches_torch(script):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, ref = _both(script)
    _close(_normalise(ref), _normalise(ours))


def test_cuda_grad_scaler_without_cuda_disables_like_torch():
    if dyntorch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.warns(UserWarning, match="CUDA is not available"):
        s = dyntorch.cuda.amp.GradScaler()
    assert not s.is_enabled() and s.get_scale() == 1.0
    loss = dyntorch.ones(1, requires_grad=True)
    assert s.scale(loss) is loss


def test_feature_probe_of_missing_submodule_is_false():
    """hasattr(torch, 'fft') is how libraries probe features: it must answer, not raise."""
    assert hasattr(dyntorch, "nn") and hasattr(dyntorch, "backends")
    for name in ["fft", "special", "distributions"]:
        if (__import__("importlib").util.find_spec(f"dyntorch.{name}")) is None:
            assert not hasattr(dyntorch, name)
            with pytest.raises(AttributeError, match=f"torch.{name} is not implemented"):
                getattr(dyntorch, name)
