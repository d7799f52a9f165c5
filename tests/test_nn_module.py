"""nn.Module API: registration, state_dict, hooks, modes, conversion, repr, scope recording."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import dyntorch as dt
import dyntorch.nn as nn
from dyntorch.nn.module import SCOPE_TYPES

torch = pytest.importorskip("torch")


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, d)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(d, d)
        self.register_buffer("scale", dt.ones(d))
        self.register_buffer("tmp", dt.zeros(d), persistent=False)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(3, 4)
        self.blocks = nn.ModuleList([Block(4), Block(4)])
        self.head = nn.Sequential(nn.Sequential(nn.Linear(4, 4), nn.Tanh()), nn.Linear(4, 2))

    def forward(self, x):
        h = self.inp(x)
        for b in self.blocks:
            h = b(h) + h
        return self.head(h)


def _torch_net():
    """The same architecture in torch, for comparing names and orders."""

    class TBlock(torch.nn.Module):
        def __init__(self, d):
            super().__init__()
            self.fc1 = torch.nn.Linear(d, d)
            self.act = torch.nn.ReLU()
            self.fc2 = torch.nn.Linear(d, d)
            self.register_buffer("scale", torch.ones(d))
            self.register_buffer("tmp", torch.zeros(d), persistent=False)

    class TNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = torch.nn.Linear(3, 4)
            self.blocks = torch.nn.ModuleList([TBlock(4), TBlock(4)])
            self.head = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(4, 4),
                                                                torch.nn.Tanh()),
                                            torch.nn.Linear(4, 2))

    return TNet()


def test_registration_and_naming():
    m = Net()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["inp.weight", "inp.bias", "blocks.0.fc1.weight", "blocks.0.fc1.bias",
                     "blocks.0.fc2.weight", "blocks.0.fc2.bias", "blocks.1.fc1.weight",
                     "blocks.1.fc1.bias", "blocks.1.fc2.weight", "blocks.1.fc2.bias",
                     "head.0.0.weight", "head.0.0.bias", "head.1.weight", "head.1.bias"]
    assert [n for n, _ in m.named_buffers()] == ["blocks.0.scale", "blocks.0.tmp",
                                                 "blocks.1.scale", "blocks.1.tmp"]
    assert list(m.state_dict()) == list(_torch_net().state_dict())
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in _torch_net().named_parameters()]
    assert [n for n, _ in m.named_modules()][:5] == ["", "inp", "blocks", "blocks.0",
                                                     "blocks.0.fc1"]
    assert [n for n, _ in m.named_children()] == ["inp", "blocks", "head"]
    assert m.get_submodule("head.0.1").__class__ is nn.Tanh
    assert m.get_parameter("blocks.1.fc2.bias") is m.blocks[1].fc2.bias
    assert m.get_buffer("blocks.0.scale") is m.blocks[0].scale
    with pytest.raises(AttributeError):
        m.get_submodule("blocks.7")
    assert "inp" in dir(m) and "blocks" in dir(m)
    assert len(list(m.parameters(recurse=False))) == 0
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        m.nope  # noqa: B018


def test_setattr_rules():
    m = nn.Module()
    m.w = nn.Parameter(dt.zeros(2))
    assert "w" in m._parameters
    with pytest.raises(TypeError):
        m.w = dt.zeros(2)  # a plain tensor can't replace a parameter
    m.w = None
    assert m._parameters["w"] is None and list(m.parameters()) == []
    m.sub = nn.Linear(2, 2)
    del m.sub
    assert "sub" not in m._modules
    m.register_buffer("b", dt.zeros(1))
    m.b = dt.ones(1)
    assert m._buffers["b"].item() == 1
    with pytest.raises(KeyError):
        m.register_buffer("a.b", dt.zeros(1))

    class Bad(nn.Module):
        def __init__(self):
            self.lin = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Bad()
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


def test_tied_parameters_once():
    m = nn.Module()
    m.a = nn.Linear(4, 4, bias=False)
    m.b = nn.Linear(4, 4, bias=False)
    m.b.weight = m.a.weight
    assert len(list(m.parameters())) == 1
    assert len(list(m.named_parameters(remove_duplicate=False))) == 2
    assert list(m.state_dict()) == ["a.weight", "b.weight"]
    c = copy.deepcopy(m)
    assert c.a.weight is c.b.weight and c.a.weight is not m.a.weight


def test_parameter_basics():
    t = dt.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert isinstance(p, dt.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p).startswith("Parameter containing:\ntensor(")
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    p2 = pickle.loads(pickle.dumps(p))
    assert isinstance(p2, nn.Parameter) and p2.tolist() == [1.0, 2.0]
    y = (p * 2).sum()
    y.backward()
    assert p.grad.tolist() == [2.0, 2.0]
    assert type(p.detach()) is dt.Tensor


def test_state_dict_roundtrip_with_torch(rng):
    tm = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.BatchNorm1d(5), torch.nn.ReLU(),
                             torch.nn.LayerNorm(5), torch.nn.Embedding(5, 2))
    dm = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.LayerNorm(5),
                       nn.Embedding(5, 2))
    tsd = tm.state_dict()
    assert list(dm.state_dict()) == list(tsd)
    res = dm.load_state_dict({k: v.numpy() for k, v in tsd.items()})
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert repr(res) == "<All keys matched successfully>"
    for k, v in dm.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), tsd[k].numpy())
    # and back: torch loads ours
    dm[0].weight.data = dt.tensor(rng.standard_normal((5, 3)).astype(np.float32))
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in dm.state_dict().items()})
    np.testing.assert_array_equal(tm[0].weight.detach().numpy(), dm[0].weight.detach().numpy())


def test_load_state_dict_errors():
    m = nn.Linear(3, 2)
    sd = m.state_dict()
    bad = dict(sd)
    del bad["bias"]
    bad["extra"] = dt.zeros(1)
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict(bad)
    msg = str(e.value)
    assert 'Missing key(s) in state_dict: "bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra"' in msg
    assert "Error(s) in loading state_dict for Linear" in msg
    r = m.load_state_dict(bad, strict=False)
    assert r.missing_keys == ["bias"] and r.unexpected_keys == ["extra"]
    with pytest.raises(RuntimeError, match="size mismatch for weight: copying a param with "
                                           r"shape torch.Size\(\[2, 2\]\)"):
        m.load_state_dict({"weight": dt.zeros(2, 2), "bias": dt.zeros(2)})
    # torch says the same thing
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        torch.nn.Linear(3, 2).load_state_dict({"weight": torch.zeros(2, 2),
                                               "bias": torch.zeros(2)})


def test_state_dict_values_are_detached_and_loaded_in_place():
    m = nn.Linear(2, 2)
    w = m.weight
    sd = m.state_dict()
    assert not sd["weight"].requires_grad
    m.load_state_dict({"weight": np.ones((2, 2)), "bias": np.zeros(2)})
    assert m.weight is w and w.detach().numpy().sum() == 4
    sdk = m.state_dict(keep_vars=True)
    assert sdk["weight"] is w


def test_train_eval():
    m = Net()
    assert m.training and all(x.training for x in m.modules())
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    m.train()
    assert all(x.training for x in m.modules())


def test_conversion_keeps_parameter_objects():
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    p = m[0].weight
    m.double()
    assert m[0].weight is p and p.dtype == dt.float64
    assert m[1].running_mean.dtype == dt.float64
    assert m[1].num_batches_tracked.dtype == dt.int64
    m.to(dt.float32)
    assert p.dtype == dt.float32
    m.to("cpu")
    m.cpu().float()
    assert m(dt.randn(4, 2)).dtype == dt.float32
    m.half()
    assert p.dtype == dt.float16


def test_apply_zero_grad_requires_grad():
    m = Net()
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen[-1] == "Net" and seen[0] == "Linear"
    m(dt.randn(2, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(float(p.grad.abs().sum()) == 0 for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_forward_hooks():
    m = nn.Linear(2, 2)
    log = []
    h1 = m.register_forward_pre_hook(lambda mod, args: log.append(("pre", args[0].shape)))
    h2 = m.register_forward_hook(lambda mod, args, out: out * 0)
    y = m(dt.randn(3, 2))
    assert log == [("pre", (3, 2))] and float(y.abs().sum()) == 0
    h1.remove()
    h2.remove()
    assert float(m(dt.ones(1, 2)).abs().sum()) != 0
    assert len(log) == 1

    def pre_kw(mod, args, kwargs):
        return (args[0] * 2,), kwargs

    m.register_forward_pre_hook(pre_kw, with_kwargs=True)
    x = dt.ones(1, 2)
    expect = nn.functional.linear(x * 2, m.weight, m.bias)
    np.testing.assert_allclose(m(x).detach().numpy(), expect.detach().numpy())


def test_full_backward_hook_matches_torch(rng):
    x = rng.standard_normal((3, 4))
    res = []
    for lib in (torch, dt):
        lin = lib.nn.Linear(4, 2).double()
        with lib.no_grad():
            lin.weight.copy_(lib.tensor(np.arange(8.0).reshape(2, 4) / 10))
            lin.bias.copy_(lib.tensor([0.5, -0.2]))
        got = []

        def hook(mod, gin, gout, got=got):
            got.append((gin[0].detach().numpy().copy(), gout[0].detach().numpy().copy()))
            return (gin[0] * 3,)

        lin.register_full_backward_hook(hook)
        xt = lib.tensor(x, requires_grad=True)
        (lin(xt) ** 2).sum().backward()
        res.append((got, xt.grad.numpy().copy()))
    (tg, tx), (dg, dx) = res
    assert len(dg) == len(tg) == 1
    np.testing.assert_allclose(dg[0][0], tg[0][0])
    np.testing.assert_allclose(dg[0][1], tg[0][1])
    np.testing.assert_allclose(dx, tx)  # the hook's replacement grad_input reached x


def test_backward_hook_input_without_grad():
    lin = nn.Linear(2, 2)
    got = []
    lin.register_full_backward_hook(lambda m, gi, go: got.append((gi, go)))
    lin(dt.randn(3, 2)).sum().backward()
    assert len(got) == 1 and got[0][0] == (None,) and got[0][1][0].shape == (3, 2)


def test_repr_like_torch():
    tm = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(),
                             torch.nn.Sequential(torch.nn.Linear(3, 3, bias=False)),
                             torch.nn.ModuleList([torch.nn.Linear(3, 3) for _ in range(3)]),
                             torch.nn.BatchNorm2d(3), torch.nn.Embedding(10, 3, padding_idx=0))
    dm = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 3, bias=False)),
                       nn.ModuleList([nn.Linear(3, 3) for _ in range(3)]), nn.BatchNorm2d(3),
                       nn.Embedding(10, 3, padding_idx=0))
    assert repr(dm) == repr(tm)
    assert "Linear(in_features=4, out_features=3, bias=True)" in repr(dm)


def test_scope_recorded_on_nodes():
    m = Net()
    y = m(dt.randn(2, 3, requires_grad=True))
    assert y.grad_fn.scope == "head.1"
    tanh_node = y.grad_fn.next_functions[0][0]
    assert tanh_node.scope == "head.0.1"
    assert tanh_node.next_functions[0][0].scope == "head.0.0"
    add_node = tanh_node.next_functions[0][0].next_functions[0][0]
    assert add_node.scope == ""  # the residual add happens in Net.forward itself
    mul = add_node.next_functions[0][0]
    assert mul.scope == "blocks.1"
    assert mul.next_functions[0][0].scope == "blocks.1.fc2"
    assert SCOPE_TYPES["blocks.1.fc2"] == "Linear" and SCOPE_TYPES["blocks.1"] == "Block"
    import dyntorch._dispatch as D

    assert D.scope == ""


def test_scope_of_nested_sequential_and_standalone_calls():
    seq = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.Sigmoid()), nn.Linear(2, 1))
    y = seq(dt.randn(3, 2))
    x = dt.randn(3, 2, requires_grad=True)
    y = seq(x)
    assert y.grad_fn.scope == "1"
    assert y.grad_fn.next_functions[0][0].scope == "0.1"
    assert y.grad_fn.next_functions[0][0].next_functions[0][0].scope == "0.0"
    names = dict(seq.named_modules())
    assert "0.1" in names and "0.0" in names
    # a child called on its own gets the top-level scope, then its path again in the parent
    z = seq[1](x[:, :2] if False else dt.randn(3, 2, requires_grad=True))
    assert z.grad_fn.scope == ""
    assert seq(x).grad_fn.scope == "1"


def test_scope_restored_after_error():
    import dyntorch._dispatch as D

    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    m = nn.Sequential(nn.Linear(2, 2), Boom())
    with pytest.raises(ValueError):
        m(dt.randn(1, 2))
    assert D.scope == ""


def test_containers():
    ml = nn.ModuleList([nn.Linear(1, 1)])
    ml.append(nn.ReLU())
    ml.extend([nn.Tanh()])
    ml.insert(0, nn.Identity())
    assert [type(x).__name__ for x in ml] == ["Identity", "Linear", "ReLU", "Tanh"]
    assert isinstance(ml[-1], nn.Tanh) and len(ml[1:]) == 3
    del ml[0]
    assert list(ml._modules) == ["0", "1", "2"]
    md = nn.ModuleDict({"a": nn.Linear(1, 2)})
    md["b"] = nn.ReLU()
    assert list(md.keys()) == ["a", "b"] and "a" in md
    pl = nn.ParameterList([nn.Parameter(dt.zeros(2)), dt.ones(3)])
    assert len(pl) == 2 and isinstance(pl[1], nn.Parameter)
    m = nn.Module()
    m.pl = pl
    assert [n for n, _ in m.named_parameters()] == ["pl.0", "pl.1"]
    pd = nn.ParameterDict({"x": nn.Parameter(dt.zeros(1))})
    pd["y"] = dt.ones(2)
    assert list(pd.keys()) == ["x", "y"] and len(list(pd.parameters())) == 2
    s = nn.Sequential(nn.Linear(1, 1), nn.ReLU())
    s.append(nn.Tanh())
    assert len(s) == 3 and isinstance(s[-1], nn.Tanh) and isinstance(s[0:2], nn.Sequential)
    from collections import OrderedDict

    s2 = nn.Sequential(OrderedDict([("fc", nn.Linear(1, 1)), ("act", nn.ReLU())]))
    assert list(s2.state_dict()) == ["fc.weight", "fc.bias"]


def test_pickle_and_deepcopy_module():
    m = Net()
    x = dt.randn(2, 3)
    m2 = pickle.loads(pickle.dumps(m))
    m3 = copy.deepcopy(m)
    np.testing.assert_allclose(m2(x).detach().numpy(), m(x).detach().numpy())
    np.testing.assert_allclose(m3(x).detach().numpy(), m(x).detach().numpy())


def test_pickle_a_model_that_trained():
    # after a forward, backward and step each parameter has its graph's AccumulateGrad and a
    # .grad: pickling (torch users pickle models too) keeps values and user attributes, and,
    # as torch, neither the gradient nor the graph
    m = Net()
    x = dt.randn(2, 3)
    m(x).sum().backward()
    dt.optim.SGD(m.parameters(), lr=0.1).step()
    next(m.parameters()).note = "mine"
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m2(x).detach().numpy(), m(x).detach().numpy())
    p2 = next(m2.parameters())
    assert p2.note == "mine" and p2.grad is None and p2.requires_grad
    m2(x).sum().backward()  # the copy's gradients go to the copy
    assert p2.grad is not None
    assert all(a.grad is not b.grad for a, b in zip(m.parameters(), m2.parameters()))


def test_lazy_linear():
    m = nn.LazyLinear(3)
    w = m.weight
    assert isinstance(w, nn.parameter.UninitializedParameter)
    y = m(dt.randn(2, 5))
    assert type(m) is nn.Linear and m.in_features == 5 and y.shape == (2, 3)
    assert m.weight is w and type(w) is nn.Parameter and w.shape == (3, 5)
    assert repr(m) == "Linear(in_features=5, out_features=3, bias=True)"


def test_scope_cache_does_not_keep_parent_alive():
    import gc
    import weakref

    shared = nn.Linear(2, 2)
    parent = nn.Sequential(shared)
    parent(dt.randn(1, 2))
    ref = weakref.ref(parent)
    del parent
    gc.collect()
    assert ref() is None
    x = dt.randn(1, 2, requires_grad=True)
    assert shared(x).grad_fn.scope == ""  # alone again: top-level scope
    outer = nn.Sequential(nn.Identity(), shared)
    assert outer(x).grad_fn.scope == "1"
    assert SCOPE_TYPES["1"] == "Linear"


def test_load_torch_state_dict_directly():
    tm = torch.nn.Linear(3, 2)
    dm = nn.Linear(3, 2)
    dm.load_state_dict(tm.state_dict())  # torch tensors read through the array protocol
    np.testing.assert_array_equal(dm.weight.detach().numpy(), tm.weight.detach().numpy())


def _two_input_module(lib):
    class Two(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lib.nn.Linear(3, 3).double()

        def forward(self, a, b, scale=1.0):
            return self.lin(a) * b * scale, a.sum()

    return Two()


def test_backward_hooks_two_inputs_and_pre_hook_match_torch(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    res = []
    for lib in (torch, dt):
        m = _two_input_module(lib)
        with lib.no_grad():
            m.lin.weight.copy_(lib.tensor(np.eye(3) * 0.5))
            m.lin.bias.copy_(lib.tensor([0.1, 0.2, 0.3]))
        log = []

        def pre(mod, gout, log=log):
            log.append(("pre", [None if g is None else g.numpy().copy() for g in gout]))
            return (gout[0] * 2, gout[1])

        def post(mod, gin, gout, log=log):
            log.append(("post", [None if g is None else g.numpy().copy() for g in gin]))

        m.register_full_backward_pre_hook(pre)
        m.register_full_backward_hook(post)
        at = lib.tensor(a, requires_grad=True)
        bt = lib.tensor(b, requires_grad=False)
        y, s = m(at, bt, scale=3.0)
        (y.sum() + s * 2).backward()
        res.append((log, at.grad.numpy().copy()))
    (tl, tg), (dl, dg) = res
    assert [k for k, _ in dl] == [k for k, _ in tl] == ["pre", "post"]
    for (_, tv), (_, dv) in zip(tl, dl):
        assert len(tv) == len(dv)
        for x, y in zip(tv, dv):
            assert (x is None) == (y is None)
            if x is not None:
                np.testing.assert_allclose(y, x)
    np.testing.assert_allclose(dg, tg)


def test_forward_hook_kwargs_prepend_always_call():
    order = []
    m = nn.Linear(2, 2)
    m.register_forward_hook(lambda mod, args, out: order.append("a"))
    m.register_forward_hook(lambda mod, args, out: order.append("b"), prepend=True)
    m.register_forward_hook(lambda mod, args, kwargs, out: order.append(("kw", kwargs)),
                            with_kwargs=True)
    m(dt.randn(1, 2))
    assert order == ["b", "a", ("kw", {})]

    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    seen = []
    b = Boom()
    b.register_forward_hook(lambda mod, args, out: seen.append(out), always_call=True)
    with pytest.raises(ValueError):
        b(1)
    assert seen == [None]


def test_extra_state_roundtrip():
    class WithState(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(1, 1)
            self.counter = 0

        def get_extra_state(self):
            return {"counter": self.counter}

        def set_extra_state(self, state):
            self.counter = state["counter"]

    a, b = WithState(), WithState()
    a.counter = 7
    sd = a.state_dict()
    assert "_extra_state" in sd
    b.load_state_dict(sd)
    assert b.counter == 7
    with pytest.raises(RuntimeError, match="_extra_state"):
        b.load_state_dict({k: v for k, v in sd.items() if k != "_extra_state"})


def test_sync_batchnorm_and_data_parallel():
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    m(dt.randn(5, 3))
    rm = m[1].running_mean.detach().numpy().copy()
    s = nn.SyncBatchNorm.convert_sync_batchnorm(m)
    assert isinstance(s[1], nn.SyncBatchNorm)
    np.testing.assert_array_equal(s[1].running_mean.numpy(), rm)
    dp = nn.DataParallel(m)
    x = dt.randn(2, 3)
    m.eval()
    np.testing.assert_allclose(dp(x).detach().numpy(), m(x).detach().numpy())
    assert list(dp.state_dict())[0] == "module.0.weight"
    assert list(dp.state_dict()) == list(torch.nn.DataParallel(
        torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))).state_dict())


def _container_ops(lib):
    nn = lib.nn
    out = []
    s = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Tanh())
    s.insert(1, nn.Sigmoid())
    s.insert(-1, nn.Identity())
    out.append([type(m).__name__ for m in s])
    del s[1:3]
    out.append(list(s._modules))
    out.append(type(s.pop(0)).__name__)
    ml = nn.ModuleList([nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.GELU()])
    del ml[1:3]
    ml.insert(1, nn.Identity())
    out.append([type(m).__name__ for m in ml])
    md = nn.ModuleDict({"a": nn.ReLU(), "b": nn.Tanh()})
    md.pop("a")
    md.update([("c", nn.GELU())])
    out.append(list(md.keys()))
    pl = nn.ParameterList([nn.Parameter(lib.zeros(2, 3)), nn.Parameter(lib.zeros(1))])
    pd = nn.ParameterDict({"a": nn.Parameter(lib.zeros(2, 3))})
    out.append((repr(pl) + repr(pd)).replace("dyntorch", "torch"))
    return out


def test_container_operations_like_torch():
    assert _container_ops(dt) == _container_ops(torch)
