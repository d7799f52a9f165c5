"""dyntorch.distributions against torch 2.13 (float64): values, gradients, validation, samples."""
import numpy as np
import pytest
import torch as T

import dyntorch as torch
from dyntorch.distributions import Bernoulli, Categorical, Normal, Uniform

TD = T.distributions
RNG = np.random.default_rng(0)


def pair(a, requires_grad=True):
    a = np.asarray(a, dtype=np.float64)
    return (torch.tensor(a, requires_grad=requires_grad),
            T.tensor(a, requires_grad=requires_grad))


def close(d, t, tol=1e-10):
    np.testing.assert_allclose(d.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol)


def test_categorical_probs_and_logits_against_torch():
    probs = RNG.uniform(0.1, 1.0, (3, 4))
    value = np.array([0, 3, 2])
    for kind in ("probs", "logits"):
        x, tx = pair(probs if kind == "probs" else np.log(probs) + 0.3)
        d, t = Categorical(**{kind: x}), TD.Categorical(**{kind: tx})
        close(d.probs, t.probs)
        close(d.logits, t.logits)
        lp, tlp = d.log_prob(torch.tensor(value)), t.log_prob(T.tensor(value))
        close(lp, tlp)
        ent, tent = d.entropy(), t.entropy()
        close(ent, tent)
        (lp.sum() + 0.7 * ent.sum()).backward()
        (tlp.sum() + 0.7 * tent.sum()).backward()
        close(x.grad, tx.grad)
        assert tuple(d.batch_shape) == (3,) and tuple(d.event_shape) == ()
        assert np.isnan(d.mean.numpy()).all() and np.isnan(d.variance.numpy()).all()


def test_categorical_entropy_with_zero_probability_and_broadcast_log_prob():
    p = torch.tensor([[0.0, 0.25, 0.75]], dtype=torch.float64)
    tp = T.tensor([[0.0, 0.25, 0.75]], dtype=T.float64)
    close(Categorical(p).entropy(), TD.Categorical(tp).entropy())
    v = np.array([[0], [2]])  # (2, 1) against batch (1,): broadcast to (2, 1)
    close(Categorical(p).log_prob(torch.tensor(v)), TD.Categorical(tp).log_prob(T.tensor(v)))


def test_categorical_sample_shape_dtype_and_frequencies():
    torch.manual_seed(0)
    d = Categorical(torch.tensor([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]]))
    s = d.sample((4000,))
    assert tuple(s.shape) == (4000, 2) and s.dtype == torch.int64
    freq0 = np.bincount(s.numpy()[:, 0], minlength=3) / 4000
    np.testing.assert_allclose(freq0, [0.1, 0.2, 0.7], atol=0.03)
    assert (s.numpy()[:, 1] != 2).all()  # probability 0 never drawn
    assert tuple(d.sample().shape) == (2,)
    assert d.enumerate_support().numpy().tolist() == [[0, 0], [1, 1], [2, 2]]


def test_normal_log_prob_entropy_cdf_and_rsample_gradients():
    loc, tloc = pair(RNG.normal(size=(2, 3)))
    scale, tscale = pair(RNG.uniform(0.5, 2.0, (2, 3)))
    v = RNG.normal(size=(2, 3))
    d, t = Normal(loc, scale), TD.Normal(tloc, tscale)
    out = d.log_prob(torch.tensor(v)).sum() + d.entropy().sum() + d.cdf(torch.tensor(v)).sum()
    tout = t.log_prob(T.tensor(v)).sum() + t.entropy().sum() + t.cdf(T.tensor(v)).sum()
    close(out, tout)
    out.backward()
    tout.backward()
    close(loc.grad, tloc.grad)
    close(scale.grad, tscale.grad)
    close(d.icdf(torch.tensor([[0.2, 0.5, 0.9]] * 2, dtype=torch.float64)),
          t.icdf(T.tensor([[0.2, 0.5, 0.9]] * 2, dtype=T.float64)))
    close(d.mean, t.mean)
    close(d.variance, t.variance)
    close(d.stddev, t.stddev)
    # rsample = loc + eps * scale: d/dloc = 1, d/dscale = eps = (sample - loc) / scale
    loc.grad = scale.grad = None
    s = d.rsample((5,))
    assert tuple(s.shape) == (5, 2, 3)
    s.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), np.full((2, 3), 5.0))
    eps = (s.detach().numpy() - loc.detach().numpy()) / scale.detach().numpy()
    np.testing.assert_allclose(scale.grad.numpy(), eps.sum(0), rtol=1e-10)
    assert d.sample((3,)).grad_fn is None


def test_normal_with_numbers_and_sample_moments():
    d = Normal(1.0, 2.0)
    assert tuple(d.batch_shape) == ()
    torch.manual_seed(1)
    s = d.sample((20000,)).numpy()
    assert abs(s.mean() - 1.0) < 0.05 and abs(s.std() - 2.0) < 0.05
    t = TD.Normal(1.0, 2.0)
    close(d.log_prob(torch.tensor(0.3)), t.log_prob(T.tensor(0.3)), tol=1e-6)


def test_bernoulli_against_torch_with_gradients():
    for kind in ("probs", "logits"):
        raw = RNG.uniform(0.05, 0.95, 5) if kind == "probs" else RNG.normal(size=5)
        x, tx = pair(raw)
        d, t = Bernoulli(**{kind: x}), TD.Bernoulli(**{kind: tx})
        v = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
        out = d.log_prob(torch.tensor(v)).sum() + d.entropy().sum() + d.variance.sum()
        tout = t.log_prob(T.tensor(v)).sum() + t.entropy().sum() + t.variance.sum()
        close(out, tout)
        out.backward()
        tout.backward()
        close(x.grad, tx.grad)
        close(d.mean, t.mean)
        close(d.logits, t.logits)
    torch.manual_seed(0)
    s = Bernoulli(torch.tensor([0.2, 0.9])).sample((5000,))
    assert tuple(s.shape) == (5000, 2) and s.dtype == torch.float32
    np.testing.assert_allclose(s.numpy().mean(0), [0.2, 0.9], atol=0.03)


def test_uniform_against_torch_with_gradients():
    low, tlow = pair([0.0, -1.0])
    high, thigh = pair([2.0, 3.0])
    d, t = Uniform(low, high), TD.Uniform(tlow, thigh)
    v = np.array([0.5, 2.5])
    out = d.log_prob(torch.tensor(v)).sum() + d.entropy().sum() + d.variance.sum() \
        + d.mean.sum() + d.cdf(torch.tensor(v)).sum()
    tout = t.log_prob(T.tensor(v)).sum() + t.entropy().sum() + t.variance.sum() \
        + t.mean.sum() + t.cdf(T.tensor(v)).sum()
    close(out, tout)
    out.backward()
    tout.backward()
    close(low.grad, tlow.grad)
    close(high.grad, thigh.grad)
    low.grad = high.grad = None
    s = d.rsample((3,))
    s.sum().backward()  # d/dlow = 3 * (1 - u), d/dhigh = 3 * u summed over samples
    u = (s.detach().numpy() - [0.0, -1.0]) / [2.0, 4.0]
    np.testing.assert_allclose(high.grad.numpy(), u.sum(0), rtol=1e-10)
    np.testing.assert_allclose(low.grad.numpy(), (1 - u).sum(0), rtol=1e-10)
    assert ((s.detach().numpy() >= [0, -1]) & (s.detach().numpy() < [2, 3])).all()


@pytest.mark.parametrize("make, match", [
    (lambda: Categorical(), "Either `probs` or `logits`"),
    (lambda: Categorical(torch.tensor([0.5, 0.5]), torch.tensor([0.0, 0.0])), "not both"),
    (lambda: Categorical(torch.tensor(0.5)), "at least one-dimensional"),
    (lambda: Categorical(torch.tensor([-0.1, 1.1])), r"probs .* constraint Simplex\(\)"),
    (lambda: Normal(0.0, -1.0), r"scale .* GreaterThan\(lower_bound=0.0\)"),
    (lambda: Bernoulli(torch.tensor(1.5)), r"probs .* Interval\(lower_bound=0.0, upper_bound=1.0\)"),
    (lambda: Uniform(1.0, 0.0), r"parameter low .* LessThan"),
    (lambda: Normal(0.0, 1.0).log_prob(1.0), "must be a Tensor"),
    (lambda: Categorical(torch.tensor([0.5, 0.5])).log_prob(torch.tensor(2)),
     r"within the support \(IntegerInterval\(lower_bound=0, upper_bound=1\)\)"),
    (lambda: Bernoulli(0.3).log_prob(torch.tensor(0.5)), r"support \(Boolean\(\)\)"),
    (lambda: Uniform(0.0, 1.0).log_prob(torch.tensor(2.0)), "within the support"),
])
def test_validation_errors_like_torch(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_validate_args_false_skips_checks():
    d = Normal(0.0, -1.0, validate_args=False)
    with np.errstate(invalid="ignore"):  # log of the negative scale, NaN as in torch
        assert np.isnan(d.log_prob(torch.tensor(0.0)).item())
    assert tuple(Categorical(torch.tensor([-1.0, 2.0]), validate_args=False).probs.shape) == (2,)


def test_reinforce_loss_gradient_matches_torch():
    w = RNG.normal(size=(4, 2))
    x = RNG.normal(size=(3, 4))
    dw, tw = pair(w)
    a = np.array([1, 0, 1])
    probs = torch.softmax(torch.tensor(x) @ dw, dim=1)
    tprobs = T.softmax(T.tensor(x) @ tw, dim=1)
    loss = -(Categorical(probs).log_prob(torch.tensor(a)) * torch.tensor([1.0, -0.5, 2.0],
                                                                         dtype=torch.float64)).sum()
    tloss = -(TD.Categorical(tprobs).log_prob(T.tensor(a)) * T.tensor([1.0, -0.5, 2.0],
                                                                    dtype=T.float64)).sum()
    loss.backward()
    tloss.backward()
    close(dw.grad, tw.grad)


def test_kl_divergence_against_torch_with_gradients():
    from dyntorch.distributions import kl_divergence

    a, ta = pair(RNG.normal(size=3))
    b, tb = pair(RNG.uniform(0.5, 2.0, 3))
    out = kl_divergence(Normal(a, b), Normal(torch.tensor(0.3, dtype=torch.float64), b * 1.5))
    tout = TD.kl_divergence(TD.Normal(ta, tb), TD.Normal(T.tensor(0.3, dtype=T.float64), tb * 1.5))
    pl, tpl = pair(RNG.normal(size=(2, 4)))
    ql = np.array([[0.1, 0.2, 0.3, 0.4], [0.0, 0.5, 0.25, 0.25]])
    out2 = kl_divergence(Categorical(logits=pl), Categorical(torch.tensor(ql)))
    tout2 = TD.kl_divergence(TD.Categorical(logits=tpl), TD.Categorical(T.tensor(ql)))
    close(out2, tout2)  # inf where q has no mass
    pb, tpb = pair(RNG.uniform(0.1, 0.9, 3))
    qb = np.array([0.3, 0.0, 1.0])
    close(kl_divergence(Bernoulli(pb), Bernoulli(torch.tensor(qb))),
          TD.kl_divergence(TD.Bernoulli(tpb), TD.Bernoulli(T.tensor(qb))))
    lo, hi = np.array([0.0, -1.0]), np.array([1.0, 3.0])
    close(kl_divergence(Uniform(torch.tensor(lo), torch.tensor(hi)),
                        Uniform(torch.tensor([-0.5, 0.0], dtype=torch.float64),
                                torch.tensor([2.0, 5.0], dtype=torch.float64))),
          TD.kl_divergence(TD.Uniform(T.tensor(lo), T.tensor(hi)),
                           TD.Uniform(T.tensor([-0.5, 0.0], dtype=T.float64),
                                      T.tensor([2.0, 5.0], dtype=T.float64))))
    close(out, tout)
    (out.sum() + out2[0]).backward()
    (tout.sum() + tout2[0]).backward()
    close(a.grad, ta.grad)
    close(b.grad, tb.grad)
    close(pl.grad, tpl.grad)
    with pytest.raises(NotImplementedError, match="No KL"):
        kl_divergence(Normal(0.0, 1.0), Uniform(0.0, 1.0))
