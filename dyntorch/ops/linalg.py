"""Products: matmul (``@``), mm, bmm, mv, dot, outer, einsum, tensordot, addmm, baddbmm.

``matmul`` keeps torch's rules for 1-D operands (prepended/appended dim, removed again) and
batch broadcasting; its derivative contracts the batch dims itself when one side is a plain
matrix (one large GEMM instead of a batch of small ones plus a sum) and otherwise leaves the
broadcast batch dims to the door's ``sum_to``. Zero-stride (expanded) arrays are made dense
before they reach BLAS, which otherwise falls back to a slow loop.
"""
from __future__ import annotations

import itertools
import string

from .. import _backend as B
from .._dispatch import op
from .._tensor import Tensor, _make
from ._util import method
from .index import return_type


def _dense(x):
    """``x`` with no zero strides (expanded views are copied; transposes stay views)."""
    if isinstance(x, Tensor):
        d = x._data
        if d.size and 0 in d.strides:
            return x.contiguous()
        return x
    if x.size and 0 in x.strides:
        return B.xp_of(x).ascontiguousarray(x)
    return x


def fold_matmul(a, b):
    """``a (..., n, k) @ b (k, m)`` as one 2-D GEMM, on arrays or tensors alike.

    NumPy's stacked matmul with a transposed 2-D operand falls back to a loop that is ~100x
    slower than BLAS (measured: 119 ms vs 0.4 ms for (32, 32, 64) @ (64, 256).T).
    """
    if b.ndim == 2 and a.ndim > 2:
        lead = tuple(a.shape[:-1])
        return (a.reshape(-1, a.shape[-1]) @ b).reshape(*lead, b.shape[-1])
    return a @ b


def _shape_str(s) -> str:
    return "x".join(str(n) for n in s) if len(s) else "scalar"


# ----------------------------------------------------------------------------- matmul
@op(name="matmul", backward_name="MmBackward0")
def _matmul(xp, a, b):
    return fold_matmul(_dense(a), _dense(b))


@_matmul.def_derivative
def _(ns, g, a, b, *, needs):
    a1, b1 = a.ndim == 1, b.ndim == 1
    if a1:
        a = ns.expand_dims(a, 0)
        g = ns.expand_dims(g, -2 if not b1 else 0)
    if b1:
        b = ns.expand_dims(b, -1)
        g = ns.expand_dims(g, -1)
    a, b, g = _dense(a), _dense(b), _dense(g)
    ga = gb = None
    if needs[0]:
        ga = fold_matmul(g, ns.swapaxes(b, -1, -2))
        if a1:
            ga = ns.sum_to(ga, (1,) + tuple(ga.shape[-1:])) if ga.ndim > 2 else ga
            ga = ns.reshape(ga, (ga.shape[-1],))
    if needs[1]:
        if b.ndim == 2 and a.ndim > 2:
            # (..., n, k) @ (k, m): fold the batch into the rows, one GEMM, no batch sum
            k, m = a.shape[-1], g.shape[-1]
            gb = ns.matmul(ns.swapaxes(ns.reshape(ns.contiguous(a), (-1, k)), 0, 1),
                           ns.reshape(ns.contiguous(g), (-1, m)))
        else:
            gb = ns.matmul(ns.swapaxes(a, -1, -2), g)
        if b1:
            gb = ns.sum_to(gb, (gb.shape[-2], 1)) if gb.ndim > 2 else gb
            gb = ns.reshape(gb, (gb.shape[-2],))
    return ga, gb


def _same_dtype(a, b, name):
    if a._data.dtype != b._data.dtype:
        raise RuntimeError(f"{name}(): expected both operands to have the same dtype, but got: "
                           f"{a.dtype} != {b.dtype}. Convert one, e.g. `b.to(a.dtype)`.")


def _as_tensors(a, b, name):
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"{name}(): expected Tensor arguments, got {type(a).__name__} and "
                        f"{type(b).__name__}")


def _not_dense(a, b, name):
    """A product with a sparse operand goes to ops/sparse.py; anything else is refused."""
    if getattr(a, "is_sparse", False) or getattr(b, "is_sparse", False):
        from .sparse import mm as sparse_mm

        return sparse_mm(a, b)
    _as_tensors(a, b, name)


def matmul(input: Tensor, other: Tensor, *, out=None) -> Tensor:
    """Matrix product with torch's 1-D and batch-broadcasting rules (``torch.matmul``).

    Parameters
    ----------
    input, other : Tensor
        At least 1-D, same dtype. A 1-D first operand gets a leading dim (removed again), a
        1-D second operand a trailing one; dims before the last two broadcast.
    out : Tensor, optional
        Written in place with the result.

    Returns
    -------
    Tensor
        ``(*batch, n, m)``, with the 1-D dims dropped.

    Raises
    ------
    RuntimeError
        When the inner dims differ ("mat1 and mat2 shapes cannot be multiplied (2x3 and
        4x5)"), batch dims do not broadcast, or the dtypes differ.
    """
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        return _not_dense(input, other, "matmul")
    sa, sb = input._data.shape, other._data.shape
    if not sa or not sb:
        raise RuntimeError(f"matmul(): both arguments to matmul need to be at least 1D, but "
                           f"they are {len(sa)}D and {len(sb)}D")
    ka = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if ka != kb:
        if len(sa) == 1 and len(sb) == 1:
            raise RuntimeError(f"matmul(): inconsistent tensor size, expected tensor [{sa[0]}] "
                               f"and src [{sb[0]}] to have the same number of elements, but "
                               "got different sizes")
        raise RuntimeError(f"matmul(): mat1 and mat2 shapes cannot be multiplied "
                           f"({_shape_str(sa if len(sa) > 1 else (1,) + sa)} and "
                           f"{_shape_str(sb)}). The last dim of the first operand must equal "
                           "the second-to-last dim of the second.")
    if len(sa) > 2 or len(sb) > 2:
        ba, bb = sa[:-2], sb[:-2]
        for k in range(1, min(len(ba), len(bb)) + 1):
            x, y = ba[-k], bb[-k]
            if x != y and x != 1 and y != 1:
                raise RuntimeError(
                    f"matmul(): The size of tensor a ({x}) must match the size of tensor b "
                    f"({y}) at non-singleton dimension {max(len(ba), len(bb)) - k} of the batch "
                    f"dims; shapes are {list(sa)} and {list(sb)}")
    _same_dtype(input, other, "matmul")
    r = _matmul(input, other)
    if out is not None:
        out.copy_(r)
        return out
    return r


def mm(input: Tensor, mat2: Tensor, *, out=None) -> Tensor:
    """Product of two matrices (``torch.mm``); a sparse COO operand is multiplied sparsely."""
    if not isinstance(input, Tensor) or not isinstance(mat2, Tensor):
        return _not_dense(input, mat2, "mm")
    if input._data.ndim != 2 or mat2._data.ndim != 2:
        raise RuntimeError(f"mm(): both arguments must be 2-D matrices, got shapes "
                           f"{list(input.shape)} and {list(mat2.shape)}")
    if input._data.shape[1] != mat2._data.shape[0]:
        raise RuntimeError(f"mm(): mat1 and mat2 shapes cannot be multiplied "
                           f"({_shape_str(input._data.shape)} and "
                           f"{_shape_str(mat2._data.shape)})")
    return matmul(input, mat2, out=out)


def bmm(input: Tensor, mat2: Tensor, *, out=None) -> Tensor:
    """Batched matrix product of two 3-D tensors with equal batch size (``torch.bmm``)."""
    _as_tensors(input, mat2, "bmm")
    sa, sb = input._data.shape, mat2._data.shape
    if len(sa) != 3 or len(sb) != 3:
        raise RuntimeError(f"bmm(): batch1 and batch2 must be 3-D tensors, got shapes "
                           f"{list(sa)} and {list(sb)}")
    if sa[0] != sb[0] or sa[2] != sb[1]:
        raise RuntimeError(f"bmm(): Expected size for first two dimensions of batch2 tensor to "
                           f"be: [{sa[0]}, {sa[2]}] but got: [{sb[0]}, {sb[1]}] (shapes "
                           f"{list(sa)} and {list(sb)})")
    return matmul(input, mat2, out=out)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Matrix-vector product (``torch.mv``)."""
    _as_tensors(input, vec, "mv")
    if input._data.ndim != 2 or vec._data.ndim != 1:
        raise RuntimeError(f"mv(): expected a 2-D matrix and a 1-D vector, got shapes "
                           f"{list(input.shape)} and {list(vec.shape)}")
    if input._data.shape[1] != vec._data.shape[0]:
        raise RuntimeError(f"mv(): size mismatch, got input ({input._data.shape[0]}), mat "
                           f"({_shape_str(input._data.shape)}), vec ({vec._data.shape[0]})")
    return matmul(input, vec)


def dot(input: Tensor, tensor: Tensor) -> Tensor:
    """Inner product of two 1-D tensors (``torch.dot``)."""
    other = tensor
    _as_tensors(input, other, "dot")
    if input._data.ndim != 1 or other._data.ndim != 1:
        raise RuntimeError(f"dot(): 1D tensors expected, but got {input._data.ndim}D and "
                           f"{other._data.ndim}D tensors")
    if input._data.shape[0] != other._data.shape[0]:
        raise RuntimeError(f"dot(): inconsistent tensor size, expected tensor "
                           f"[{input._data.shape[0]}] and src [{other._data.shape[0]}] to have "
                           "the same number of elements, but got different sizes")
    _same_dtype(input, other, "dot")
    return _matmul(input, other)


def vdot(input: Tensor, other: Tensor) -> Tensor:
    return dot(input, other)


def inner(input: Tensor, other: Tensor) -> Tensor:
    """Sum product over the last dims (``torch.inner``)."""
    if input._data.ndim == 0 or other._data.ndim == 0:
        return input * other
    return tensordot(input, other, dims=([-1], [-1]))


@op(name="outer", promote=True)
def _outer(xp, a, b):
    return xp.multiply.outer(a, b)


@_outer.def_derivative
def _(ns, g, a, b, *, needs):
    ga = ns.matmul(g, b) if needs[0] else None
    gb = ns.matmul(ns.swapaxes(g, 0, 1), a) if needs[1] else None
    return ga, gb


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """Outer product of two 1-D tensors (``torch.outer``)."""
    if input._data.ndim != 1 or vec2._data.ndim != 1:
        raise RuntimeError(f"outer(): expected 1-D tensors, got shapes {list(input.shape)} and "
                           f"{list(vec2.shape)}")
    return _outer(input, vec2)


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (mat1 @ mat2)`` (``torch.addmm``)."""
    p = mm(mat1, mat2)
    return _scaled_add(input, p, beta, alpha)


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:
    return _scaled_add(input, mv(mat, vec), beta, alpha)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (batch1 @ batch2)`` (``torch.baddbmm``)."""
    return _scaled_add(input, bmm(batch1, batch2), beta, alpha)


def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    return _scaled_add(input, bmm(batch1, batch2).sum(0), beta, alpha)


def addr(input: Tensor, vec1: Tensor, vec2: Tensor, *, beta=1, alpha=1) -> Tensor:
    return _scaled_add(input, outer(vec1, vec2), beta, alpha)


def _scaled_add(input, p, beta, alpha):
    if alpha != 1:
        p = p * alpha
    if beta == 0:
        return p
    return p + (input if beta == 1 else input * beta)


# ----------------------------------------------------------------------------- einsum
_LETTERS = string.ascii_letters


def _parse_einsum(eq: str, shapes) -> tuple:
    """``(inputs, output)``: each a string of single letters, ellipses spelled out."""
    eq = eq.replace(" ", "")
    if "->" in eq:
        lhs, out = eq.split("->")
    else:
        lhs, out = eq, None
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise RuntimeError(f"einsum(): more operands were provided than specified in the "
                           f"equation ({len(shapes)} operands for {len(ins)} subscripts)"
                           if len(shapes) > len(ins) else
                           f"einsum(): fewer operands were provided than specified in the "
                           f"equation ({len(shapes)} operands for {len(ins)} subscripts)")
    used = set(c for c in eq if c.isalpha())
    free = [c for c in _LETTERS if c not in used]
    n_ell = 0
    for s, shp in zip(ins, shapes):
        if "..." in s:
            n_ell = max(n_ell, len(shp) - (len(s) - 3))
    ell = "".join(free[:n_ell])
    res = []
    for k, (s, shp) in enumerate(zip(ins, shapes)):
        if "..." in s:
            n = len(shp) - (len(s) - 3)
            s = s.replace("...", ell[n_ell - n:] if n else "")
        if len(s) != len(shp):
            raise RuntimeError(f"einsum(): the number of subscripts in the equation "
                               f"({len(s)}) does not match the number of dimensions "
                               f"({len(shp)}) for operand {k}"
                               f"{' and no ellipsis was given' if '...' not in ins[k] else ''}")
        for c in s:
            if not c.isalpha():
                raise RuntimeError(f"einsum(): invalid subscript given at index {eq.index(c)} "
                                   f"in the equation string, subscripts must be in [a-zA-Z]")
        res.append(s)
    if out is None:
        counts: dict = {}
        for s in res:
            for c in s:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    _check_einsum_sizes(res, shapes, ell)
    given = set("".join(res))
    for c in out:
        if c not in given:
            raise RuntimeError(f"einsum(): output subscript {c} does not appear in the equation "
                               "for any input operand")
    return res, out


def _check_einsum_sizes(res, shapes, ell: str) -> None:
    """Raise, naming the subscript and operand, where sizes disagree: a subscript repeated
    within one operand must match exactly; across operands a size of 1 broadcasts."""
    seen: dict = {}  # subscript -> size so far (1 until some operand gives it a real size)
    for k, (s, shp) in enumerate(zip(res, shapes)):
        here: dict = {}
        for c, n in zip(s, shp):
            if c in here:
                if here[c] != n:
                    raise RuntimeError(
                        f"einsum(): subscript {c} is repeated for operand {k} but the sizes "
                        f"don't match, {n} != {here[c]} (operand {k} has shape {list(shp)}); a "
                        "repeated subscript takes a diagonal, so those dims must be equal")
                continue
            here[c] = n
            m = seen.get(c, 1)
            if n != m and n != 1 and m != 1:
                where = (f"dimension {ell.index(c)} covered by ellipsis" if c in ell else
                         f"subscript {c}")
                raise RuntimeError(
                    f"einsum(): {where} has size {n} for operand {k} which does not broadcast "
                    f"with previously seen size {m} (operand shapes: "
                    f"{[list(x) for x in shapes]}); the dims sharing a subscript must have "
                    "equal sizes (or size 1)")
            if m == 1:
                seen[c] = n


def _einsum2(xp, sa, a, sb, b, so):
    """Two-operand einsum as one batched GEMM (BLAS), or the library's einsum when the
    subscripts need more (a letter repeated within an operand, size-1 broadcasting)."""
    sizes = {}
    for s_, x in ((sa, a), (sb, b)):
        for c, n in zip(s_, x.shape):
            if sizes.setdefault(c, n) != n:
                return xp.einsum(f"{sa},{sb}->{so}", a, b)
    if len(set(sa)) != len(sa) or len(set(sb)) != len(sb):
        return xp.einsum(f"{sa},{sb}->{so}", a, b)
    # letters only one operand has and the output lacks are summed out first
    only_a = tuple(i for i, c in enumerate(sa) if c not in sb and c not in so)
    if only_a:
        a = a.sum(axis=only_a)
        sa = "".join(c for i, c in enumerate(sa) if i not in only_a)
    only_b = tuple(i for i, c in enumerate(sb) if c not in sa and c not in so)
    if only_b:
        b = b.sum(axis=only_b)
        sb = "".join(c for i, c in enumerate(sb) if i not in only_b)
    batch = [c for c in sa if c in sb and c in so]
    contract = [c for c in sa if c in sb and c not in so]
    left = [c for c in sa if c not in sb]
    right = [c for c in sb if c not in sa]

    def prod(cs):
        n = 1
        for c in cs:
            n *= sizes[c]
        return n

    at = xp.transpose(a, [sa.index(c) for c in batch + left + contract])
    bt = xp.transpose(b, [sb.index(c) for c in batch + contract + right])
    r = xp.matmul(at.reshape(prod(batch), prod(left), prod(contract)),
                  bt.reshape(prod(batch), prod(contract), prod(right)))
    have = batch + left + right
    r = r.reshape([sizes[c] for c in have])
    return xp.transpose(r, [have.index(c) for c in so])


def _einsum_xp(xp, eq, arrays):
    """einsum on arrays: pairwise, left to right, each pair as a batched GEMM."""
    ins, so = eq.split("->")
    subs = ins.split(",")
    if len(arrays) == 1:
        return xp.einsum(eq, arrays[0])
    cur_s, cur = subs[0], arrays[0]
    for k in range(1, len(arrays)):
        later = set(so).union(*subs[k + 1:]) if k + 1 < len(subs) else set(so)
        if k + 1 == len(arrays):
            target = so
        else:
            target = "".join(dict.fromkeys(c for c in cur_s + subs[k] if c in later))
        cur = _einsum2(xp, cur_s, cur, subs[k], arrays[k], target)
        cur_s = target
    return cur


def _ein(ns, eq, *ops):
    """einsum in a derivative: the GEMM path on arrays, graph-recording ops on Tensors."""
    if ns.xp is not None:
        return _einsum_xp(ns.xp, eq, [_dense(o) for o in ops])
    return ns.einsum(eq, *ops)


@op(name="einsum", promote=True)
def _einsum(xp, *arrays, eq, ins, osub):
    return _einsum_xp(xp, eq, [_dense(a) for a in arrays])


@_einsum.def_derivative
def _(ns, g, *xs, eq, ins, osub, needs):
    grads = []
    for i, target in enumerate(ins):
        if not needs[i]:
            grads.append(None)
            continue
        others = [x for k, x in enumerate(xs) if k != i]
        osubs = [s for k, s in enumerate(ins) if k != i]
        avail = set(osub).union(*osubs) if osubs else set(osub)
        uniq = "".join(dict.fromkeys(c for c in target if c in avail))
        sub = ",".join([osub] + osubs) + "->" + uniq
        gi = _ein(ns, sub, g, *others)
        # letters only this operand has were summed in the forward: broadcast them back
        shape_i = tuple(xs[i].shape)
        full = "".join(dict.fromkeys(target))
        if uniq != full:
            sizes = {c: n for c, n in zip(target, shape_i)}
            for c in full:
                if c not in uniq:
                    gi = ns.expand_dims(gi, len(uniq))
                    uniq += c
            gi = ns.broadcast_to(gi, tuple(sizes[c] if c in full else 1 for c in uniq))
        if full != target or uniq != full:
            gi = _to_target(ns, gi, uniq, target, shape_i)
        grads.append(gi)
    return grads[0] if len(grads) == 1 else tuple(grads)


def _to_target(ns, gi, have: str, target: str, shape_i):
    """Reorder letters ``have`` to ``target``; repeated letters put ``gi`` on a diagonal."""
    order = "".join(dict.fromkeys(target))
    if have != order:
        gi = ns.transpose(gi, tuple(have.index(c) for c in order))
    if order == target:
        return gi
    xp = B.xp_of(gi._data if isinstance(gi, Tensor) else gi)
    k = len(order)
    key = tuple(xp.arange(shape_i[target.index(c)]).reshape(
        [-1 if j == order.index(c) else 1 for j in range(k)]) for c in target)
    return ns.index_add(tuple(shape_i), key, gi, basic=True)


class _AllInputsUsed:
    """``OpDef.uses`` for a variable number of inputs that the derivative all reads."""

    __slots__ = ()

    def __getitem__(self, i):
        return True

    def __iter__(self):
        return itertools.repeat(True)


_einsum.uses = _AllInputsUsed()


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation over ``operands`` (``torch.einsum``).

    Parameters
    ----------
    equation : str
        Subscripts such as ``"bij,bjk->bik"``; ``...`` stands for broadcast dims, and
        without ``->`` the output is the letters seen once, in alphabetical order.
    *operands : Tensor
        One tensor per comma-separated term (a single list is accepted too).

    Returns
    -------
    Tensor
        Contracted pairwise, left to right, each pair as one batched GEMM.
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    for k, o in enumerate(operands):
        if not isinstance(o, Tensor):
            raise TypeError(f"einsum(): operand {k} is a {type(o).__name__}, expected a Tensor")
    ins, out = _parse_einsum(equation, [o._data.shape for o in operands])
    eq = ",".join(ins) + "->" + out
    return _einsum(*operands, eq=eq, ins=tuple(ins), osub=out)


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Contract ``dims`` of ``a`` with ``dims`` of ``b`` (``torch.tensordot``).

    Parameters
    ----------
    a, b : Tensor
    dims : int or (list, list)
        The last ``dims`` dims of ``a`` with the first ``dims`` of ``b``, or explicit lists.

    Returns
    -------
    Tensor
        The free dims of ``a`` followed by those of ``b``.
    """
    na, nb = a._data.ndim, b._data.ndim
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, int):
        if dims < 0 or dims > min(na, nb):
            raise RuntimeError(f"tensordot(): expects dims >= 0 and <= min(a.ndim, b.ndim), got "
                               f"{dims}")
        da, db = list(range(na - dims, na)), list(range(dims))
    else:
        da, db = dims
        da = [da] if isinstance(da, int) else list(da)
        db = [db] if isinstance(db, int) else list(db)
        if len(da) != len(db):
            raise RuntimeError(f"tensordot(): both dimension lists should have same length, got "
                               f"{da} and {db}")
    da = [d % na for d in da]
    db = [d % nb for d in db]
    for x, y in zip(da, db):
        if a._data.shape[x] != b._data.shape[y]:
            raise RuntimeError(f"tensordot(): contracted dimensions need to match, but first has "
                               f"size {a._data.shape[x]} in dim {x} and second has size "
                               f"{b._data.shape[y]} in dim {y}")
    la = list(_LETTERS[:na])
    lb = list(_LETTERS[na:na + nb])
    for x, y in zip(da, db):
        lb[y] = la[x]
    out = "".join(c for i, c in enumerate(la) if i not in da) + "".join(
        c for i, c in enumerate(lb) if i not in db)
    eq = "".join(la) + "," + "".join(lb) + "->" + out
    return einsum(eq, a, b)


def kron(input: Tensor, other: Tensor) -> Tensor:
    """Kronecker product (``torch.kron``)."""
    na, nb = input._data.ndim, other._data.ndim
    n = max(na, nb)
    a = input.reshape((1,) * (n - na) + input._data.shape)
    b = other.reshape((1,) * (n - nb) + other._data.shape)
    la, lb = _LETTERS[:n], _LETTERS[n:2 * n]
    eq = la + "," + lb + "->" + "".join(x + y for x, y in zip(la, lb))
    r = einsum(eq, a, b)
    return r.reshape(tuple(x * y for x, y in zip(a._data.shape, b._data.shape)))


# ----------------------------------------------------------------------------- dense solvers
def _square(A: Tensor, name: str) -> None:
    s = A._data.shape
    if len(s) < 2 or s[-1] != s[-2]:
        raise RuntimeError(f"linalg.{name}(): A must be batches of square matrices, but they "
                           f"are {s[-2] if len(s) > 1 else '?'} by {s[-1] if s else '?'} "
                           "matrices")
    if A._data.dtype.kind != "f":
        raise RuntimeError(f"linalg.{name}(): Expected a floating point tensor as input. Got "
                           f"{A.dtype}")


def _mT(ns, x):
    return ns.swapaxes(x, -1, -2)


def inv_any(ns, a):
    """Inverse on either namespace (records graph on Tensors)."""
    if isinstance(a, Tensor):
        return _inv(a)
    return ns.xp.linalg.inv(a)


@op(name="linalg_inv_ex", backward_name="LinalgInvExBackward0")
def _inv(xp, a):
    return xp.linalg.inv(a)


@_inv.def_derivative
def _(ns, g, _a, out):
    t = _mT(ns, out)
    return -ns.matmul(ns.matmul(t, g), t)


def inverse(input: Tensor) -> Tensor:
    """Inverse of (batches of) square matrices (``torch.linalg.inv``)."""
    _square(input, "inv")
    return _inv(input)


@op(name="linalg_det", backward_name="LinalgDetBackward0")
def _det(xp, a):
    return xp.linalg.det(a)


@_det.def_derivative
def _(ns, g, a, out):
    # d det(A) = det(A) A^{-T} (A invertible)
    return ns.expand_dims(ns.expand_dims(g * out, -1), -1) * _mT(ns, inv_any(ns, a))


def det(input: Tensor) -> Tensor:
    """Determinant of (batches of) square matrices (``torch.linalg.det``)."""
    _square(input, "det")
    return _det(input)


@op(name="linalg_slogdet", backward_name="LinalgSlogdetBackward0", multi=True)
def _slogdet(xp, a):
    sign, logabs = xp.linalg.slogdet(a)
    return logabs, sign


@_slogdet.def_derivative
def _(ns, g, a):
    return ns.expand_dims(ns.expand_dims(g, -1), -1) * _mT(ns, inv_any(ns, a))


_slogdet_rt = return_type("slogdet", ("sign", "logabsdet"))


def slogdet(input: Tensor):
    """``(sign, logabsdet)`` of the determinant (``torch.linalg.slogdet``)."""
    _square(input, "slogdet")
    logabs, sign = _slogdet(input)
    if logabs._requires_grad:  # torch's sign takes part in the graph (with a zero gradient)
        from .elementwise import sign as _sign

        sign = _sign(_det(input))
    return _slogdet_rt(sign, logabs)


def logdet(input: Tensor) -> Tensor:
    """log(det(input)); nan for a negative determinant (``torch.logdet``)."""
    sign, logabs = slogdet(input)
    from .elementwise import where

    return where(sign < 0, float("nan"), logabs)


@op(name="linalg_solve", backward_name="LinalgSolveExBackward0")
def _solve(xp, a, b):
    return xp.linalg.solve(a, b)


@_solve.def_derivative
def _(ns, g, a, _b, out, *, needs):
    # X = A^{-1} B:  gB = A^{-T} g,  gA = -gB X^T
    at = _mT(ns, a)
    gb = _solve(at.contiguous(), g) if isinstance(at, Tensor) else ns.xp.linalg.solve(at, g)
    ga = -ns.matmul(gb, _mT(ns, out)) if needs[0] else None
    return ga, gb if needs[1] else None


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """Solve ``A X = B`` for square ``A`` (``torch.linalg.solve``)."""
    _square(A, "solve")
    if not left:
        return solve(A.mT, B.mT).mT
    if B._data.ndim == 1 or (B._data.ndim == A._data.ndim - 1 and
                             B._data.shape == A._data.shape[:-1]):
        return _solve(A, B.unsqueeze(-1)).squeeze(-1)
    if B._data.shape[-2] != A._data.shape[-1]:
        raise RuntimeError(f"linalg.solve(): Incompatible shapes of A and B for the equation "
                           f"AX = B ({A._data.shape[-2]}x{A._data.shape[-1]} and "
                           f"{B._data.shape[-2]}x{B._data.shape[-1]})")
    return _solve(A, B)


@op(name="linalg_cholesky", backward_name="LinalgCholeskyExBackward0")
def _cholesky(xp, a):
    return xp.linalg.cholesky(a)


@_cholesky.def_derivative
def _(ns, g, _a, out):
    # A = L L^T:  gA = sym(L^{-T} Phi(L^T tril(gL)) L^{-1}), Phi = lower triangle, half diagonal
    n = out.shape[-1]
    lt = _mT(ns, out)
    p = ns.matmul(lt, ns.tril(g, 0))
    eye = ns.asarray(_eye(n), out)
    p = ns.tril(p, 0) - p * eye * 0.5
    li = inv_any(ns, out)
    s = ns.matmul(ns.matmul(_mT(ns, li), p), li)
    return (s + _mT(ns, s)) * 0.5


def _eye(n):
    import numpy as np

    return np.eye(n)


def cholesky(input: Tensor, upper: bool = False) -> Tensor:
    """Cholesky factor of a symmetric positive-definite matrix (``torch.linalg.cholesky``)."""
    _square(input, "cholesky")
    try:
        L = _cholesky(input)
    except RuntimeError as e:
        raise RuntimeError(f"linalg.cholesky(): The factorization could not be completed "
                           f"because the input is not positive-definite ({e}).") from None
    return L.mT if upper else L


def matrix_power(input: Tensor, n: int) -> Tensor:
    """``input`` multiplied by itself ``n`` times; negative ``n`` uses the inverse."""
    if n < 0:
        _square(input, "matrix_power")
    s = input._data.shape
    if len(s) < 2 or s[-1] != s[-2]:
        raise RuntimeError(f"linalg.matrix_power(): A must be batches of square matrices, got "
                           f"{list(s)}")
    if n == 0:
        from .creation import eye

        e = eye(s[-1], dtype=input.dtype, device=input.device)
        e = e.expand(*s).contiguous() if len(s) > 2 else e
        if input._requires_grad:  # like torch, stay in the graph with a zero gradient
            from .elementwise import where

            e = where(e == e, e, input)
        return e
    x = inverse(input) if n < 0 else input
    n = abs(n)
    result = None
    while n:
        if n & 1:
            result = x if result is None else matmul(result, x)
        n >>= 1
        if n:
            x = matmul(x, x)
    return result


def cross(input: Tensor, other: Tensor, dim=None) -> Tensor:
    """Cross product of 3-vectors along ``dim`` (``torch.cross``; default: first size-3 dim)."""
    from .shape import broadcast_tensors, stack

    a, b = broadcast_tensors(input, other)
    if dim is None:
        dim = next((i for i, n in enumerate(a._data.shape) if n == 3), None)
        if dim is None:
            raise RuntimeError("cross(): no dimension of size 3 in input")
    d = dim % a._data.ndim
    if a._data.shape[d] != 3:
        raise RuntimeError(f"linalg.cross(): inputs dimension {d} must have length 3. Got "
                           f"{a._data.shape[d]} and {b._data.shape[d]}")
    a0, a1, a2 = a.unbind(d)
    b0, b1, b2 = b.unbind(d)
    return stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0,
          compute_mode="use_mm_for_euclid_dist_if_necessary") -> Tensor:
    """Pairwise p-norm distances between the rows of ``x1`` and ``x2`` (``torch.cdist``).

    ``compute_mode`` picks torch's kernel; every mode gives these same distances here."""
    if compute_mode not in (None, "use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                            "donot_use_mm_for_euclid_dist"):
        raise ValueError(f"cdist(): {compute_mode} is not a valid value for compute_mode")
    from .reduce import vector_norm

    if x1._data.ndim < 2 or x2._data.ndim < 2 or x1._data.shape[-1] != x2._data.shape[-1]:
        raise RuntimeError(f"cdist(): X1 and X2 must have the same number of columns and at "
                           f"least 2 dims; got shapes {list(x1.shape)} and {list(x2.shape)}")
    return vector_norm(x1.unsqueeze(-2) - x2.unsqueeze(-3), p, -1)


def chain_matmul(*matrices) -> Tensor:
    """Product of a chain of matrices, left to right (``torch.chain_matmul``)."""
    if len(matrices) == 1 and isinstance(matrices[0], (list, tuple)):
        matrices = tuple(matrices[0])
    r = matrices[0]
    for m in matrices[1:]:
        r = mm(r, m)
    return r


# ----------------------------------------------------------------------------- decompositions
def _sym_check(A, name):
    _square(A, name)


@op(name="linalg_eigvalsh", backward_name="LinalgEighBackward0")
def _eigvalsh(xp, a, uplo="L"):
    return xp.linalg.eigvalsh(a, UPLO=uplo)


@_eigvalsh.def_derivative
def _(ns, g, a, *, uplo="L"):
    # dw_i = v_i^T dA v_i  ->  gA = V diag(g) V^T
    v = _eigvecs(ns, a, uplo)
    return ns.matmul(v * ns.expand_dims(g, -2), _mT(ns, v))


@op(name="linalg_eigh_vectors", backward_name="LinalgEighBackward0")
def _eigh_vectors(xp, a, uplo="L"):
    return xp.linalg.eigh(a, UPLO=uplo)[1]


@_eigh_vectors.def_derivative
def _(ns, g, a, out, *, uplo="L"):
    # gA = V (F * (V^T gV)) V^T, F_ij = 1 / (w_j - w_i) off the diagonal (distinct w)
    w = _eigvals(ns, a, uplo)
    diff = ns.expand_dims(w, -2) - ns.expand_dims(w, -1)
    off = diff != 0
    f = ns.where(off, 1.0, 0.0) / ns.where(off, diff, 1.0)
    inner = ns.matmul(_mT(ns, out), g) * f
    ga = ns.matmul(ns.matmul(out, inner), _mT(ns, out))
    return (ga + _mT(ns, ga)) * 0.5  # A is symmetric: torch returns the symmetric part


def _eigvecs(ns, a, uplo):
    if isinstance(a, Tensor):
        return _eigh_vectors(a, uplo=uplo)
    return ns.xp.linalg.eigh(a, UPLO=uplo)[1]


def _eigvals(ns, a, uplo):
    if isinstance(a, Tensor):
        return _eigvalsh(a, uplo=uplo)
    return ns.xp.linalg.eigvalsh(a, UPLO=uplo)


_eigh_rt = return_type("eigh", ("eigenvalues", "eigenvectors"))


def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:
    """Eigenvalues (ascending) of symmetric matrices (``torch.linalg.eigvalsh``)."""
    _sym_check(A, "eigvalsh")
    return _eigvalsh(A, uplo=UPLO)


def eigh(A: Tensor, UPLO: str = "L"):
    """Eigenvalues (ascending) and eigenvectors of symmetric matrices (``torch.linalg.eigh``).

    Both outputs are differentiable; eigenvector gradients need distinct eigenvalues.
    """
    _sym_check(A, "eigh")
    return _eigh_rt(_eigvalsh(A, uplo=UPLO), _eigh_vectors(A, uplo=UPLO))


@op(name="linalg_svdvals", backward_name="LinalgSvdBackward0")
def _svdvals(xp, a):
    return xp.linalg.svd(a, compute_uv=False)


@_svdvals.def_derivative
def _(ns, g, a):
    # ds_i = u_i^T dA v_i  ->  gA = U diag(g) Vh (reduced SVD)
    if isinstance(a, Tensor):
        u, _s, vh = _svd_factors(a, full_matrices=False)
    else:
        u, _s, vh = ns.xp.linalg.svd(a, full_matrices=False)
    return ns.matmul(u * ns.expand_dims(g, -2), vh)


def _no_grad_factor(name, what):
    """An op for one factor of a decomposition whose gradient dyntorch does not implement:
    backward raises instead of silently dropping the contribution."""
    def fwd(xp, a, **kw):
        return what(xp, a, **kw)

    f = op(name=name)(fwd)

    @f.def_derivative
    def _(ns, g, _a, **kw):
        raise NotImplementedError(
            f"{name}: gradients through this factor are not implemented in dyntorch (the "
            "singular/eigen values are differentiable). Detach it if it should be constant.")

    return f


_svd_u = _no_grad_factor("linalg_svd_u", lambda xp, a, full_matrices=True: xp.linalg.svd(
    a, full_matrices=full_matrices)[0])
_svd_vh = _no_grad_factor("linalg_svd_vh", lambda xp, a, full_matrices=True: xp.linalg.svd(
    a, full_matrices=full_matrices)[2])
_qr_q = _no_grad_factor("linalg_qr_q", lambda xp, a, mode="reduced": xp.linalg.qr(a, mode)[0])
_qr_r = _no_grad_factor("linalg_qr_r", lambda xp, a, mode="reduced": xp.linalg.qr(a, mode)[1])


def _svd_factors(A, full_matrices):
    if A._requires_grad:
        return (_svd_u(A, full_matrices=full_matrices), _svdvals(A),
                _svd_vh(A, full_matrices=full_matrices))
    xp = B.xp_of(A._data)
    u, s, vh = xp.linalg.svd(A._data, full_matrices=full_matrices)
    return _make(u), _make(s), _make(vh)


_svd_rt = return_type("svd", ("U", "S", "Vh"))


def svd(A: Tensor, full_matrices: bool = True):
    """``(U, S, Vh)`` with ``A = U diag(S) Vh`` (``torch.linalg.svd``).

    S is differentiable; gradients through U or Vh raise NotImplementedError (not silently
    dropped).
    """
    if A._data.ndim < 2:
        raise RuntimeError(f"linalg.svd(): The input tensor A must have at least 2 dimensions, "
                           f"got {A._data.ndim}")
    return _svd_rt(*_svd_factors(A, full_matrices))


def svdvals(A: Tensor) -> Tensor:
    """Singular values, descending (``torch.linalg.svdvals``)."""
    if A._data.ndim < 2:
        raise RuntimeError("linalg.svdvals(): The input tensor A must have at least 2 "
                           "dimensions")
    return _svdvals(A)


_qr_rt = return_type("qr", ("Q", "R"))


def qr(A: Tensor, mode: str = "reduced"):
    """``(Q, R)`` with ``A = Q R`` (``torch.linalg.qr``); backward raises NotImplementedError."""
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of "
                           "'reduced' (default), 'r', or 'complete'")
    m = "reduced" if mode == "r" else mode
    if A._requires_grad:
        q, r = _qr_q(A, mode=m), _qr_r(A, mode=m)
    else:
        q, r = (_make(x) for x in B.xp_of(A._data).linalg.qr(A._data, m))
    return _qr_rt(A.new_zeros(0) if mode == "r" else q, r)


def _rmatmul(self, other):
    return matmul(other, self)


method("matmul", matmul)
method("__matmul__", matmul)
method("__rmatmul__", _rmatmul)
method("mm", mm)
method("bmm", bmm)
method("mv", mv)
method("dot", dot)
method("vdot", vdot)
method("inner", inner)
method("outer", outer)
method("ger", outer)
method("addmm", lambda self, mat1, mat2, *, beta=1, alpha=1: addmm(self, mat1, mat2,
                                                                   beta=beta, alpha=alpha))
method("addmv", lambda self, mat, vec, *, beta=1, alpha=1: addmv(self, mat, vec, beta=beta,
                                                                 alpha=alpha))
method("baddbmm", lambda self, batch1, batch2, *, beta=1, alpha=1: baddbmm(
    self, batch1, batch2, beta=beta, alpha=alpha))
method("addbmm", lambda self, batch1, batch2, *, beta=1, alpha=1: addbmm(
    self, batch1, batch2, beta=beta, alpha=alpha))
method("addr", lambda self, vec1, vec2, *, beta=1, alpha=1: addr(
    self, vec1, vec2, beta=beta, alpha=alpha))
method("kron", kron)
method("inverse", inverse)
method("det", det)
method("logdet", logdet)
method("slogdet", slogdet)
method("cholesky", cholesky)
method("matrix_power", matrix_power)
method("cross", lambda self, other, dim=None: cross(self, other, dim))

PUBLIC = {
    "matmul": matmul, "mm": mm, "bmm": bmm, "mv": mv, "dot": dot, "vdot": vdot,
    "inner": inner, "outer": outer, "ger": outer, "einsum": einsum, "tensordot": tensordot,
    "addmm": addmm, "addmv": addmv, "baddbmm": baddbmm, "addbmm": addbmm, "addr": addr,
    "kron": kron, "inverse": inverse, "det": det, "logdet": logdet, "slogdet": slogdet,
    "cholesky": cholesky, "matrix_power": matrix_power, "cross": cross, "cdist": cdist,
    "chain_matmul": chain_matmul,
}
