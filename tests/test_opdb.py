"""PyTorch's own test samples as a peer suite: every OpInfo sample of `unfold`, `conv2d`, `max_pool2d`, `avg_pool2d`,
`conv_transpose2d` and `max_unpool2d` in `torch.testing._internal.common_methods_invocations.op_db`, run through our ops,
forward (indices included) and gradients. None is skipped: the counts of samples are pinned, those of torch 2.14.1's op_db."""
from collections import Counter

import pytest
import torch
from torch.testing import assert_close
from helpers import ours_kw

from miniconv.im2col import im2col, conv2d
from miniconv.pooling import max_pool2d, max_unpool2d, avg_pool2d
from miniconv.transposed import conv_transpose2d

pytest.importorskip('expecttest')  # op_db needs it; it is in the dev dependencies
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures('one_thread'),  # see conftest.py
              pytest.mark.filterwarnings("ignore:Using padding='same'")]  # PyTorch's note that an even 'same' kernel needs a padded copy

def unfold_call(x, kernel_size, dilation=1, padding=0, stride=1):
    "`F.unfold`'s argument order, mapped to `im2col`'s"
    return im2col(x, kernel_size, stride, padding, dilation)

OPS = {  # (op_db name, variant): (our call, number of samples in float32 and in float64)
    ('nn.functional.unfold', ''):           (unfold_call, (163, 163)),
    ('nn.functional.conv2d', ''):           (conv2d, (30, 30)),
    ('nn.functional.max_pool2d', ''):       (lambda x, *a, **kw: max_pool2d(x, *a, **ours_kw(kw)), (1440, 1440)),
    ('nn.functional.avg_pool2d', ''):       (lambda x, *a, **kw: avg_pool2d(x, *a, **ours_kw(kw)), (7, 7)),
    ('nn.functional.conv_transpose2d', ''): (conv_transpose2d, (12, 12)),
    ('nn.functional.max_unpool2d', ''):     (lambda x, *a, **kw: max_unpool2d(x, *a, **ours_kw(kw)), (288, 288)),
    ('nn.functional.max_unpool2d', 'grad'): (lambda x, *a, **kw: max_unpool2d(x, *a, **ours_kw(kw)), (33, 35)),  # samples whose indices are all distinct
}

@pytest.fixture(scope='module')
def op_db():
    from torch.testing._internal.common_methods_invocations import op_db
    return {(o.name, o.variant_test_name): o for o in op_db if (o.name, o.variant_test_name) in OPS}

def outputs(r): return list(r) if isinstance(r, tuple) else [r]

def run_sample(op, ours, s, dtype):
    "Compare one sample, every output (values and indices) and the gradient of every input that requires grad; returns what was checked"
    args = [s.input, *s.args]
    out, ref = outputs(ours(*args, **s.kwargs)), outputs(op.op(*args, **s.kwargs))
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    assert [o.shape for o in out] == [r.shape for r in ref]
    for o, r in zip(out, ref): assert_close(o, r, **(tol if r.is_floating_point() else dict(rtol=0, atol=0)))
    leaves = [t for t in args + list(s.kwargs.values()) if isinstance(t, torch.Tensor) and t.requires_grad]
    if not (ref[0].numel() and leaves): return 'forward'
    if len(ref) == 2 and not (0 <= ref[1].min() and ref[1].max() < s.input.shape[-2]*s.input.shape[-1]):
        return 'forward: PyTorch backward aborts on its out-of-range index'   # TOOLCHAIN.md: a window that sees only padding
    go = torch.randn(ref[0].shape, generator=torch.Generator().manual_seed(0), dtype=dtype)
    for a, r in zip(torch.autograd.grad(out[0], leaves, go), torch.autograd.grad(ref[0], leaves, go)): assert_close(a, r, **tol)
    return 'forward and gradients'

@pytest.mark.parametrize('dtype', [torch.float32, torch.float64], ids=['float32', 'float64'])
@pytest.mark.parametrize('key', list(OPS), ids=[f"{n.split('.')[-1]}{'-' + v if v else ''}" for n, v in OPS])
def test_op_db_samples(op_db, key, dtype):
    "Every sample of the op agrees with PyTorch, outputs and gradients; the number of samples is pinned, and none is skipped"
    ours, counts = OPS[key]
    op, expected = op_db[key], counts[dtype == torch.float64]
    seen = Counter()
    for i, s in enumerate(op.sample_inputs('cpu', dtype, requires_grad=True)):
        try: seen[run_sample(op, ours, s, dtype)] += 1
        except Exception as e:
            raise AssertionError(f"{key} sample {i}: input {tuple(s.input.shape)}, args {s.args}, kwargs {s.kwargs}: {e}") from e
    assert sum(seen.values()) == expected and not seen['forward: PyTorch backward aborts on its out-of-range index'], dict(seen)
