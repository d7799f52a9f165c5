"""Tensor hooks, retain_grad and Node hooks, side by side with torch 2.13."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import dyntorch


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().numpy(), rtol=tol, atol=tol)


def both(torch, arr, device="cpu"):
    return (
        (dyntorch, dyntorch.tensor(arr, dtype=dyntorch.float64, device=device,
                                   requires_grad=True)),
        (torch, torch.tensor(arr, dtype=torch.float64, requires_grad=True)),
    )


def test_hook_on_non_leaf_modifies_grad(torch, rng, device):
    arr = rng.standard_normal(4)
    res = []
    for base, x in both(torch, arr, device):
        h = x.sin()
        seen = []
        h.register_hook(lambda g: seen.append(g.clone()) or g * 3)
        (h * h).sum().backward()
        res.append((x.grad, seen[0]))
    close(res[0][0], res[1][0])
    close(res[0][1], res[1][1])


def test_hook_on_leaf_modifies_accumulated_grad(torch, rng, device):
    arr = rng.standard_normal(3)
    res = []
    for base, x in both(torch, arr, device):
        x.register_hook(lambda g: g + 1)
        (x * x).sum().backward()
        res.append(x.grad)
    close(res[0], res[1])


def test_hook_removal(torch):
    for base in (dyntorch, torch):
        x = base.tensor([1.0, 2.0], dtype=base.float64, requires_grad=True)
        h = x * 1
        calls = []
        handle = h.register_hook(lambda g: calls.append("h"))
        leaf_handle = x.register_hook(lambda g: g * 10)
        handle.remove()
        leaf_handle.remove()
        handle.remove()  # removing twice is harmless
        (h * 2).sum().backward()
        assert calls == []
        np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])
        # a hook registered after all earlier ones were removed runs exactly once
        h2 = x * 1
        h2.register_hook(lambda g: calls.append("a")).remove()
        h2.register_hook(lambda g: calls.append("b"))
        h2.sum().backward()
        assert calls == ["b"]


def test_hooks_run_in_registration_order_and_chain(torch):
    out = []
    for base in (dyntorch, torch):
        x = base.tensor([1.0, 2.0], dtype=base.float64, requires_grad=True)
        h = x * 1
        h.register_hook(lambda g: g * 2)
        h.register_hook(lambda g: g + 1)
        h.sum().backward()
        out.append(x.grad.numpy().copy())
    np.testing.assert_allclose(out[0], out[1])


def test_retain_grad_runs_after_hooks(torch, rng):
    arr = rng.standard_normal(3)
    res = []
    for base, x in both(torch, arr):
        h = x.exp()
        h.retain_grad()
        h.register_hook(lambda g: g * 5)  # registered later, still seen by retain_grad
        assert h.retains_grad and not x.retains_grad
        (h * h).sum().backward()
        res.append((h.grad, x.grad))
    close(res[0][0], res[1][0])
    close(res[0][1], res[1][1])


def test_retain_grad_accumulates_and_leaf_is_noop(torch):
    for base in (dyntorch, torch):
        x = base.tensor([1.0, 2.0], dtype=base.float64, requires_grad=True)
        x.retain_grad()
        h = x * 3
        h.retain_grad()
        y = (h * h).sum()
        y.backward(retain_graph=True)
        y.backward()
        np.testing.assert_allclose(h.grad.numpy(), 4 * h.detach().numpy())
        assert h.grad.grad_fn is None


def test_hook_errors(torch):
    for base in (dyntorch, torch):
        with pytest.raises(RuntimeError, match="doesn't require gradient"):
            base.ones(2).register_hook(lambda g: g)
        x = base.ones(2, requires_grad=True)
        h = x * 2
        h.register_hook(lambda g: base.ones(3))
        with pytest.raises(RuntimeError, match="size"):
            h.sum().backward()


def test_node_prehook_and_posthook(torch, rng):
    arr = rng.standard_normal(3)
    res = []
    for base, x in both(torch, arr):
        log = []
        h = x.exp()
        node = h.grad_fn

        def pre(grad_outputs):
            log.append(("pre", len(grad_outputs)))
            return (grad_outputs[0] * 2,)

        def post(grad_inputs, grad_outputs):
            log.append(("post", len(grad_inputs), len(grad_outputs)))
            return (grad_inputs[0] + 1,)

        hp = node.register_prehook(pre)
        hq = node.register_hook(post)
        (h * 3).sum().backward()
        res.append(x.grad.clone())
        assert log == [("pre", 1), ("post", 1, 1)]
        hp.remove()
        hq.remove()
        x.grad = None
        h2 = x.exp()
        h2.sum().backward()
        np.testing.assert_allclose(x.grad.detach().numpy(), np.exp(arr))
    close(res[0], res[1])


def test_post_accumulate_grad_hook(torch):
    for base in (dyntorch, torch):
        x = base.tensor([1.0, 2.0], dtype=base.float64, requires_grad=True)
        seen = []
        handle = x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.clone()))
        (x * x).sum().backward()
        assert len(seen) == 1
        np.testing.assert_allclose(seen[0].numpy(), [2.0, 4.0])
        handle.remove()
        (x * x).sum().backward()
        assert len(seen) == 1


def test_hook_under_create_graph_keeps_graph(torch, rng):
    arr = rng.standard_normal(3)
    res = []
    for base, x in both(torch, arr):
        h = x * x
        h.register_hook(lambda g: g * x)  # the hook's result depends on x
        (g,) = base.autograd.grad(h.sum(), x, create_graph=True)
        (gg,) = base.autograd.grad(g.sum(), x)
        res.append((g, gg))
    close(res[0][0], res[1][0])
    close(res[0][1], res[1][1])


def test_multi_grad_hook_all(torch):
    for base in (dyntorch, torch):
        a = base.tensor([1.0, 2.0], dtype=base.float64, requires_grad=True)
        b = base.tensor([3.0], dtype=base.float64, requires_grad=True)
        c = base.tensor([5.0], dtype=base.float64, requires_grad=True)
        calls = []
        base.autograd.graph.register_multi_grad_hook(
            (a, b, c), lambda gs: calls.append([None if g is None else g.tolist() for g in gs]))
        ((a * b).sum() * 2).backward()
        assert calls == [[[6.0, 6.0], [6.0], None]]


def test_tensor_hooks_apply_to_autograd_grad_results(torch):
    res = []
    for base in (dyntorch, torch):
        x = base.tensor([1.0, 2.0], dtype=base.float64, requires_grad=True)
        x.register_hook(lambda g: g * 2)
        h = x * 1
        h.register_hook(lambda g: g * 3)
        res.append((base.autograd.grad((x * x).sum(), x)[0].tolist(),
                    base.autograd.grad((h * h).sum(), h)[0].tolist()))
    assert res[0] == res[1]


def test_captured_grad_helper_applies_tensor_hooks():
    from dyntorch.autograd.hooks import captured_grad

    x = dyntorch.tensor([1.0, 2.0], dtype=dyntorch.float64, requires_grad=True)
    x.register_hook(lambda g: g * 2)
    h = x * 1
    h.register_hook(lambda g: g * 3)
    acc = h.grad_fn.next_functions[0][0]
    g = np.ones(2)
    np.testing.assert_allclose(captured_grad(acc, 0, g, False), [2.0, 2.0])
    np.testing.assert_allclose(captured_grad(h.grad_fn, 0, g, False), [3.0, 3.0])
    out = captured_grad(h.grad_fn, 0, dyntorch.ones(2, dtype=dyntorch.float64), True)
    assert isinstance(out, dyntorch.Tensor)


def test_hooks_and_retain_grad_across_in_place_ops(torch):
    res = []
    for base in (dyntorch, torch):
        x = base.tensor([1.0, 2.0], dtype=base.float64, requires_grad=True)
        h = x * 2
        h.register_hook(lambda g: g * 10)  # stays with the old version of h
        h.retain_grad()  # follows h to its newest version
        h.mul_(3)
        (h * h).sum().backward()
        res.append((x.grad.tolist(), h.grad.tolist()))
    assert res[0] == res[1]


def test_retain_grad_with_autograd_grad_and_create_graph(torch):
    out = []
    for base in (dyntorch, torch):
        x = base.tensor([1.0, 2.0], dtype=base.float64, requires_grad=True)
        h = x.exp()
        h.retain_grad()
        base.autograd.grad(h.sum(), x, retain_graph=True)
        first = h.grad.tolist()
        h.grad = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            h.sum().backward(create_graph=True)
        out.append((first, h.grad.requires_grad, x.grad.requires_grad, h.is_leaf,
                    h.retains_grad, x.retains_grad))
    assert out[0] == out[1]


def test_multi_grad_hook_leaves_the_engine_when_its_tensors_are_gone():
    """An engine observer sends every backward down the watched path: a registration whose
    tensors died (its handle kept or not) must stop observing, and a live one must stay."""
    import gc

    from dyntorch.autograd import engine as E
    from dyntorch.autograd.graph import register_multi_grad_hook

    def observing():
        return any(getattr(o, "__self__", None).__class__.__name__ == "_Multi"
                   for o in E.observers)

    a = dyntorch.tensor([1.0, 2.0], requires_grad=True)
    b = dyntorch.tensor([3.0], requires_grad=True)
    calls = []
    handle = register_multi_grad_hook((a, b), calls.append)
    assert observing()
    (a * b).sum().backward()
    assert len(calls) == 1 and observing()  # alive: still observing
    del a
    assert observing()  # b still alive
    del b
    gc.collect()
    assert not observing()  # gone with its tensors
    x = dyntorch.tensor([1.0], requires_grad=True)
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0]
    handle.remove()  # removing it late is harmless
    assert not observing()
