"""PyTorch's own test samples as a peer suite: every OpInfo sample of `unfold`, `conv2d`, `max_pool2d`, `avg_pool2d` and
`conv_transpose2d` in `torch.testing._internal.common_methods_invocations.op_db`, run through our ops, forward and gradients.

A sample we don't claim to support is skipped with its reason, and counted: the counts are asserted, so nothing is skipped silently.
The expected counts are those of torch 2.14.1's op_db."""
from collections import Counter

import pytest
import torch
from torch.testing import assert_close

from miniconv.im2col import im2col, conv2d
from miniconv.pooling import max_pool2d, avg_pool2d
from miniconv.transposed import conv_transpose2d

pytest.importorskip('expecttest')  # op_db needs it; it is in the dev dependencies
pytestmark = [pytest.mark.usefixtures('one_thread'),  # see conftest.py
              pytest.mark.filterwarnings("ignore:Using padding='same'")]  # PyTorch's note that an even 'same' kernel needs a padded copy

def _one(v):
    "PyTorch accepts a 1-tuple like `(2,)` for an int; our ops take an int or a pair"
    return v[0] if isinstance(v, tuple) and len(v) == 1 else v

def unfold_call(x, ks, dilation=1, padding=0, stride=1):
    "`F.unfold`'s argument order, mapped to `im2col`'s"
    return im2col(x, ks, stride, padding, dilation), None

def conv2d_call(x, w, b=None, **kw): return conv2d(x, w, b, **kw), None

def max_pool_call(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    if return_indices: return None, 'return_indices: we return the pooled values only, not the indices of the winners'
    return max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode), None

def avg_pool_call(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    if divisor_override is not None: return None, 'divisor_override: we divide by the number of taps, as the chapter teaches'
    stride = None if stride in ((), []) else _one(stride)  # PyTorch reads an empty stride as "the kernel size"
    return avg_pool2d(x, _one(kernel_size), stride, _one(padding), ceil_mode, count_include_pad), None

def conv_transpose_call(x, w, b=None, groups=1, **kw):
    if groups != 1: return None, 'groups: conv_transpose2d has no grouped version (only conv2d does)'
    return conv_transpose2d(x, w, b, **kw), None

OPS = {  # op_db name: (our call, expected counts {outcome: number of samples} per dtype)
    'nn.functional.unfold':           (unfold_call, {'agree': 163}),
    'nn.functional.conv2d':           (conv2d_call, {'agree': 30}),
    'nn.functional.max_pool2d':       (max_pool_call, {'agree': 720, 'skipped: return_indices': 720}),
    'nn.functional.avg_pool2d':       (avg_pool_call, {'agree': 2, 'skipped: divisor_override': 5}),
    'nn.functional.conv_transpose2d': (conv_transpose_call, {'agree': 8, 'skipped: groups': 4}),
}

@pytest.fixture(scope='module')
def op_db():
    from torch.testing._internal.common_methods_invocations import op_db
    return {o.name: o for o in op_db if o.name in OPS and not o.variant_test_name}

def run_sample(op, ours, s, dtype):
    "Compare one sample: forward and the gradient of every tensor input that requires grad; returns the outcome"
    args = [s.input, *s.args]
    out, why = ours(*args, **s.kwargs)
    if why is not None: return 'skipped: ' + why.split(':')[0]
    ref = op.op(*args, **s.kwargs)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    assert out.shape == ref.shape
    assert_close(out, ref, **tol)
    leaves = [t for t in args + list(s.kwargs.values()) if isinstance(t, torch.Tensor) and t.requires_grad]
    if ref.numel() and leaves:
        go = torch.randn(ref.shape, generator=torch.Generator().manual_seed(0), dtype=dtype)
        for a, r in zip(torch.autograd.grad(out, leaves, go), torch.autograd.grad(ref, leaves, go)): assert_close(a, r, **tol)
    return 'agree'

@pytest.mark.slow
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64], ids=['float32', 'float64'])
@pytest.mark.parametrize('name', list(OPS))
def test_op_db_samples(op_db, name, dtype):
    "Every sample of the op agrees with PyTorch (output and gradients) or is skipped for a stated reason; the counts are pinned"
    ours, expected = OPS[name]
    op = op_db[name]
    seen = Counter()
    for i, s in enumerate(op.sample_inputs('cpu', dtype, requires_grad=True)):
        try: seen[run_sample(op, ours, s, dtype)] += 1
        except Exception as e:
            raise AssertionError(f"{name} sample {i}: input {tuple(s.input.shape)}, args {s.args}, kwargs {s.kwargs}: {e}") from e
    assert dict(seen) == expected, f"{name}: {dict(seen)}"
