"""What the property tests of conv2d, pooling and transposed convolutions share: hypothesis strategies for int-or-pair
arguments, and the comparison of an op's output and gradients with PyTorch's."""
import torch
from hypothesis import strategies as st
from torch.testing import assert_close

def pair(lo, hi): # Smallest and largest value of each half
    "A strategy for `(a, b)` pairs of ints in [lo, hi], e.g. a kernel size per axis"
    return st.tuples(st.integers(lo, hi), st.integers(lo, hi))

def as_arg(t): # A pair from `pair`
    "An equal pair as one int, so that both forms of an int-or-pair argument get tested"
    return t[0] if t[0] == t[1] else t

def ours_kw(kw): # PyTorch's keyword arguments
    "Our ops call the window size `ks`, as the course does, where PyTorch says `kernel_size`; every other argument has PyTorch's name"
    return {('ks' if k == 'kernel_size' else k): v for k, v in kw.items()}

def same_as_torch(ours, theirs, x, w, b, kw, seed, tol): # Our op and PyTorch's; input, weight, bias (or None); keyword args; seed; tolerances
    "Assert `ours(x, w, b, **kw)` equals `theirs(...)`, and so do their gradients for x, w and b under one random upstream gradient"
    leaves = [t.clone().requires_grad_() for t in (x, w) + ((b,) if b is not None else ())]
    refs = [t.clone().requires_grad_() for t in leaves]
    out = ours(*leaves[:2], leaves[2] if b is not None else None, **kw)
    ref = theirs(*refs[:2], refs[2] if b is not None else None, **kw)
    assert out.shape == ref.shape
    assert_close(out, ref, **tol)
    go = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed + 1))
    for a, r in zip(torch.autograd.grad(out, leaves, go), torch.autograd.grad(ref, refs, go)): assert_close(a, r, **tol)
