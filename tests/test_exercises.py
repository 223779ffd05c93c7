"""The exercise checkers of `miniconv.exercises`, and the chapters' Summary and Exercises sections that name them.

Every checker accepts a right answer (small reference answers below, the same ones the solutions notebooks derive),
rejects plausible wrong answers with a message naming what differs, answers bad input (None, a wrong type, a function
that raises) with False and a message instead of a traceback, never prints the right answer, and leaves the caller's
random numbers alone. The solutions notebooks themselves run under `nbdev_test` (they `assert` their checkers)."""
import contextlib, copy, io, json, re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import miniconv.exercises as ex
from miniconv.im2col import conv2d, im2col
from miniconv.kernels import top_edge, left_edge

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
CHAPTERS = ['05_kernels', '06_strides_padding', '07_im2col', '08_cnn', '09_receptive_field', '11_color', '12_pooling', '13_transposed', '14_layers']

def run(checker, answer):
    "(returned value, printed text) of `checker(answer)`; an exception fails the test"
    out = io.StringIO()
    with contextlib.redirect_stdout(out): res = checker(answer)
    return res, out.getvalue()

# ---- right answers: small versions of the solutions notebooks' answers

def corr1d(x, k):
    n = len(x) - len(k) + 1
    return sum(k[u]*x[u:u+n] for u in range(len(k)))

def fft_corr2d(img, k):
    (h, w), (kh, kw) = img.shape, k.shape
    s = (h + kh - 1, w + kw - 1)
    return torch.fft.irfft2(torch.fft.rfft2(img, s)*torch.fft.rfft2(k.flip(0, 1), s), s)[kh-1:h, kw-1:w]

def conv2d_same(x, w, dilation=1, extra_first=False):
    pads = []
    for k in (w.shape[-1], w.shape[-2]):
        t = dilation*(k - 1)
        pads += [t - t//2, t//2] if extra_first else [t//2, t - t//2]
    return F.conv2d(F.pad(x, pads), w, dilation=dilation)

def conv_to_linear(model, taps=slice(1, None), bias=True, order=False):
    last, lin = model[4], nn.Linear(64, 10)
    with torch.no_grad():
        w = last.weight[:, :, taps, taps]
        lin.weight.copy_((w.transpose(-1, -2) if order else w).reshape(10, 64))
        lin.bias.copy_(last.bias if bias else torch.zeros(10))
    return nn.Sequential(*copy.deepcopy(model[:4]), nn.Flatten(), lin)

def rf1d(model, jumps=True, dilations=True, jump_first=False):
    one = lambda v: v[0] if isinstance(v, tuple) else v
    size, jump = 1, 1
    for m in model:
        if isinstance(m, (nn.Conv1d, nn.MaxPool1d, nn.AvgPool1d)):
            ks, st, d = one(m.kernel_size), one(m.stride), one(getattr(m, 'dilation', 1)) if dilations else 1
            if jump_first: jump *= st
            size += d*(ks - 1)*(jump if jumps else 1)
            if not jump_first: jump *= st
    return size, jump

def avg_pool_as_conv(x, ks, groups=True, scale=True, stride=True):
    C = x.shape[1]
    w = torch.full((C, 1 if groups else C, ks, ks), 1/ks**2 if scale else 1., dtype=x.dtype)
    return conv2d(x, w, stride=ks if stride else 1, groups=C if groups else 1)

def conv_transpose_by_conv(x, w, stride=1, padding=0, output_padding=0, flip=True, swap=True, op_first=False, full=False):
    (N, C, H, W), (kh, kw), s = x.shape, w.shape[-2:], stride
    xs = x.new_zeros(N, C, s*(H - 1) + 1, s*(W - 1) + 1)
    xs[..., ::s, ::s] = x
    ph, pw = (kh - 1, kw - 1) if full else (kh - 1 - padding, kw - 1 - padding)
    a, b = (output_padding, 0) if op_first else (0, output_padding)
    xs = F.pad(xs, (pw + a, pw + b, ph + a, ph + b))
    w = w.transpose(0, 1) if swap else w
    return conv2d(xs, w.flip(-1, -2) if flip else w)

def im2col1d(x, ks, stride=1, padding=0, dilation=1, taps_first=False, one_side=False):
    xp = F.pad(x, (2*padding, 0) if one_side else (padding, padding))
    N, C, L = xp.shape
    n = (L - dilation*(ks - 1) - 1)//stride + 1
    sN, sC, sL = xp.stride()
    v = xp.as_strided((N, C, ks, n), (sN, sC, dilation*sL, stride*sL), xp.storage_offset())
    return (v.transpose(1, 2) if taps_first else v).reshape(N, C*ks, n)

def conv_weight_grad(x, go, ks, stride=1, padding=0, dilation=1, batch_sum=True, taps_first=False):
    cols = im2col(x, ks, stride, padding, dilation)
    gw = torch.einsum('nol,nrl->or' if batch_sum else 'nol,nrl->nor', go.flatten(2), cols)
    O, C = go.shape[1], x.shape[1]
    if not batch_sum: return gw.view(-1, O, C, *ks)
    return gw.view(O, *ks, C).permute(0, 3, 1, 2) if taps_first else gw.view(O, C, *ks)

def grouped_conv(x, w, b, groups, interleave=False, whole_bias=False):
    bs = [b]*groups if whole_bias or b is None else b.chunk(groups)
    xs = [x[:, g::groups] for g in range(groups)] if interleave else x.chunk(groups, 1)
    return torch.cat([conv2d(xg, wg, bg) for xg, wg, bg in zip(xs, w.chunk(groups), bs)], 1)

class Conv1d(nn.Conv1d):
    "The solution: nn.Conv1d on our conv2d, signals one row high"
    use_mode, both_axes, use_stride, use_bias = True, False, True, True   # the parts a wrong answer leaves out
    def _conv_forward(self, x, weight, bias):
        if self.padding_mode != 'zeros' and self.use_mode: x, pad = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode), 0
        elif isinstance(self.padding, str): pad = self.padding
        else: pad = self.padding[0] if self.both_axes else (0, self.padding[0])
        return conv2d(x[:, :, None], weight[:, :, None], bias if self.use_bias else None, (1, self.stride[0] if self.use_stride else 1), pad,
                      (1, self.dilation[0]), self.groups)[:, :, 0]

class ZerosOnly(Conv1d): use_mode = False
class BothAxes(Conv1d): both_axes = True
class NoStride(Conv1d): use_stride = False
class NoBias(Conv1d): use_bias = False
class KernelDown(nn.Conv1d):
    "The kernel one column wide instead of one row high"
    def _conv_forward(self, x, weight, bias): return conv2d(x[:, :, None], weight[..., None], bias, (1, self.stride[0]), 0, 1, self.groups)[:, :, 0]
class FrozenWeight(Conv1d):
    def _conv_forward(self, x, weight, bias): return super()._conv_forward(x, weight.detach(), bias)

KEYS = ['0.weight', '0.bias', '3.0.weight', '3.1.weight', '3.1.bias', '3.1.running_mean', '3.1.running_var', '3.1.num_batches_tracked',
        '6.weight', '6.bias']

mix = lambda m, k=top_edge: (torch.tensor(m)[:, None, None]*k)[None]
lap5 = torch.tensor([[0., 1, 0], [1, -4, 1], [0, 1, 0]])
off_centre = torch.zeros(5, 5); off_centre[1:4, 2:5] = lap5

RIGHT = {
    'check_conv_matrix_zeros': 15*35 - 15*9,
    'check_laplacian': lap5,
    'check_corr1d': corr1d,
    'check_corr2d': fft_corr2d,
    'check_stem_size': (25, 19),
    'check_conv2d_same': conv2d_same,
    'check_im2col_shape': (128, 363, 3025),
    'check_im2col1d': im2col1d,
    'check_conv_weight_grad': conv_weight_grad,
    'check_grouped_conv': grouped_conv,
    'check_better_cnn_params': 200 + 1152 + 4608 + 18432 + 2*(8 + 16 + 32 + 64) + 64*4*4*10 + 10,
    'check_simple_cnn_sizes': range(1, 33),
    'check_conv_to_linear': conv_to_linear,
    'check_smoothing_floor': 0.867,
    'check_rf_size': 22,
    'check_rf1d': rf1d,
    'check_color_params': (32*3*25 + 32,)*2,
    'check_grey_weights': lambda w: w.sum(1, keepdim=True),
    'check_greenness': mix([-0.5, 1., -0.5]),
    'check_separable_cost': 128*9*196 + 256*128*196,
    'check_avg_pool_as_conv': avg_pool_as_conv,
    'check_upsample_sizes': [10, 20, 60, 60],
    'check_overlap_counts': {4, 6, 9},
    'check_conv_transpose': conv_transpose_by_conv,
    'check_state_dict_keys': KEYS,
    'check_conv1d_layer': Conv1d,
}

# (checker, wrong answer, a fragment the verdict must contain): plausible mistakes, at least two per checker
WRONG = [
    ('check_conv_matrix_zeros', 15*9, 'non-zero entries'), ('check_conv_matrix_zeros', 15*35 - 15*9 + 1, 'too high'),
    ('check_conv_matrix_zeros', 9*25 - 9*9, 'too low'),
    ('check_laplacian', -lap5, 'the sign is flipped'), ('check_laplacian', torch.tensor([[1., 1, 1], [1, -8, 1], [1, 1, 1]]), '3 times'),
    ('check_laplacian', off_centre, 'on img[r, c] ='), ('check_laplacian', lap5 + torch.eye(3)/10, 'image of ones'),
    ('check_laplacian', torch.ones(2, 2), 'odd sides'),
    ('check_corr1d', lambda x, k: corr1d(x, k.flip(0)), 'differs at index'), ('check_corr1d', lambda x, k: corr1d(x, k)[:-1], 'has shape'),
    ('check_corr2d', lambda img, k: fft_corr2d(img, k.flip(0, 1)), 'differs at index'),
    ('check_corr2d', lambda img, k: F.conv2d(img[None, None], k[None, None], padding=1)[0, 0], 'has shape'),
    ('check_stem_size', (50, 38), 'after the convolution'), ('check_stem_size', (25, 18), 'the width is too low (the height is right)'),
    ('check_stem_size', (24, 19), 'the height is too low'),
    ('check_conv2d_same', lambda x, w, dilation=1: F.conv2d(x, w, padding=(w.shape[-2]//2, w.shape[-1]//2), dilation=dilation), 'has shape'),
    ('check_conv2d_same', lambda x, w, dilation=1: conv2d_same(x, w, dilation, extra_first=True), 'differs at index'),
    ('check_conv2d_same', lambda x, w, dilation=1: F.conv2d(F.pad(x, [(w.shape[-1]-1)//2, w.shape[-1]//2, (w.shape[-2]-1)//2, w.shape[-2]//2]), w, dilation=dilation), 'has shape'),
    ('check_im2col_shape', (128, 3025, 363), 'swapped'), ('check_im2col_shape', (128, 363, 54*54), 'left out the padding'),
    ('check_im2col_shape', (128, 363, 218*218), 'move 4 pixels at a time'), ('check_im2col_shape', (128, 363, 56*56), 'rounds down'),
    ('check_im2col_shape', (128, 121, 3025), 'each of the input channels (the batch size and the number of columns are right)'),
    ('check_im2col_shape', (1, 363, 3025), 'the batch axis stays'), ('check_im2col_shape', (128, 363), 'should hold 3'),
    ('check_im2col1d', lambda x, ks, **kw: im2col1d(x, ks, **kw, taps_first=True), 'differs at index'),
    ('check_im2col1d', lambda x, ks, **kw: im2col1d(x, ks, **kw, one_side=True), 'ks=4, stride=2, padding=1, dilation=1 differs at index'),
    ('check_im2col1d', lambda x, ks, stride=1, padding=0, dilation=1: im2col1d(x, ks, stride, padding), 'dilation=2 has shape'),
    ('check_im2col1d', lambda x, ks, stride=1, padding=0, dilation=1: im2col1d(x, ks, 1, padding, dilation), 'stride=2, padding=1, dilation=1 has shape'),
    ('check_conv_weight_grad', lambda *a, **k: conv_weight_grad(*a, **k, batch_sum=False), 'has shape'),
    ('check_conv_weight_grad', lambda x, go, ks, **k: conv_weight_grad(x, go, ks, **k)/x.shape[0], 'times what it should be'),
    ('check_conv_weight_grad', lambda *a, **k: conv_weight_grad(*a, **k, taps_first=True), 'differs at index'),
    ('check_conv_weight_grad', lambda x, go, ks, stride=1, padding=0, dilation=1: conv_weight_grad(x, go, ks, 1, padding, dilation), 'your function raised'),
    ('check_grouped_conv', lambda *a: grouped_conv(*a, interleave=True), 'differs at index'),
    ('check_grouped_conv', lambda x, w, b, g: grouped_conv(x, w, None, g), 'differs at index'),
    ('check_grouped_conv', lambda *a: grouped_conv(*a, whole_bias=True), 'your function raised ValueError'),
    ('check_grouped_conv', lambda x, w, b, g: torch.cat([conv2d(xg, w, b) for xg in x.chunk(g, 1)], 1), 'has shape'),
    ('check_better_cnn_params', RIGHT['check_better_cnn_params'] + 120, 'a bias for every convolution'),
    ('check_better_cnn_params', RIGHT['check_better_cnn_params'] + 240, 'running mean and variance'),
    ('check_better_cnn_params', RIGHT['check_better_cnn_params'] - 240, 'scale and a shift'),
    ('check_better_cnn_params', RIGHT['check_better_cnn_params'] - 64*7*10, 'rounding up'),
    ('check_simple_cnn_sizes', [28], 'you left out'), ('check_simple_cnn_sizes', range(17, 33), 'you left out'),
    ('check_simple_cnn_sizes', range(1, 34), 'n=33 gives [1, 40]'), ('check_simple_cnn_sizes', [0, 5], 'from 1 to 64'),
    ('check_conv_to_linear', lambda m: conv_to_linear(m, taps=slice(None, 2)), 'differs at index'),
    ('check_conv_to_linear', lambda m: conv_to_linear(m, bias=False), "off by the last convolution's bias"),
    ('check_conv_to_linear', lambda m: conv_to_linear(m, order=True), 'differs at index'),
    ('check_conv_to_linear', lambda m: m, 'no nn.Linear(64, 10)'),
    ('check_smoothing_floor', 0.5, 'label_smoothing=0.1'), ('check_smoothing_floor', round(ex._smoothed_entropy(0.2, spread=9), 3), 'all ten classes'),
    ('check_smoothing_floor', 0.88, 'too high'),
    ('check_rf_size', 11, 'multiply it by the jump'), ('check_rf_size', 18, 'dilated'), ('check_rf_size', 19, 'widens the field too'),
    ('check_rf1d', lambda m: rf1d(m, jumps=False), 'the size is wrong'), ('check_rf1d', lambda m: rf1d(m, dilations=False), 'the size is wrong'),
    ('check_rf1d', lambda m: rf1d(m, jump_first=True), 'the size is wrong'), ('check_rf1d', lambda m: 7, 'what your function returns'),
    ('check_color_params', (2432*49, 2432), 'your two counts differ'), ('check_color_params', (2400, 2400), 'biases'),
    ('check_color_params', (832, 832), 'one 5x5 grid per input channel'),
    ('check_grey_weights', lambda w: w.mean(1, keepdim=True), 'differs at index'), ('check_grey_weights', lambda w: w[:, :1], 'differs at index'),
    ('check_grey_weights', lambda w: w.sum(1), 'needs (4, 1, 3, 3)'),
    ('check_greenness', mix([1., -0.5, -0.5]), 'where green grows going down'), ('check_greenness', mix([-0.5, 1., -0.5], top_edge.flip(0)), 'where green grows'),
    ('check_greenness', mix([-0.5, 1., -0.5], left_edge), 'rows are all alike'), ('check_greenness', mix([1/3, 1/3, 1/3]), 'grey image'),
    ('check_greenness', mix([-1., 1., 0.]), 'where blue grows'), ('check_greenness', mix([-0.5, 1., -0.5])[0], '4 axes'),
    ('check_separable_cost', 256*128*9*196, 'standard 3x3'), ('check_separable_cost', 256*128*196, '1x1 step alone'),
    ('check_separable_cost', 128*128*9*196 + 256*128*196, 'one input channel'),
    ('check_avg_pool_as_conv', lambda x, ks: avg_pool_as_conv(x, ks, groups=False), 'differs at index'),
    ('check_avg_pool_as_conv', lambda x, ks: avg_pool_as_conv(x, ks, scale=False), 'times what it should be'),
    ('check_avg_pool_as_conv', lambda x, ks: avg_pool_as_conv(x, ks, stride=False), 'has shape'),
    ('check_upsample_sizes', [10, 19, 57, 57], 'the first size is right; the size after layer 2 is too low'),
    ('check_upsample_sizes', [8, 16, 48, 48], 'the size after layer 1 is too low'), ('check_upsample_sizes', [10, 20, 60], 'should hold 4'),
    ('check_overlap_counts', {1, 2, 4}, 'never occur'), ('check_overlap_counts', {4, 9}, 'missing'),
    ('check_conv_transpose', lambda *a, **k: conv_transpose_by_conv(*a, **k, flip=False), 'differs at index'),
    ('check_conv_transpose', lambda *a, **k: conv_transpose_by_conv(*a, **k, swap=False), 'your function raised'),
    ('check_conv_transpose', lambda *a, **k: conv_transpose_by_conv(*a, **k, full=True), 'has shape'),
    ('check_conv_transpose', lambda *a, **k: conv_transpose_by_conv(*a, **k, op_first=True), 'differs at index'),
    ('check_state_dict_keys', KEYS[:-2], '2 keys are missing, of a Linear'),
    ('check_state_dict_keys', KEYS + ['2.weight'], "'2.weight': a MaxPool2d has no parameters or buffers"),
    ('check_state_dict_keys', KEYS[:7] + KEYS[8:], 'a count of the batches'),
    ('check_state_dict_keys', KEYS[:5] + KEYS[8:], 'holds the buffers too'),
    ('check_state_dict_keys', KEYS + ['3.0.bias'], 'how that Conv2d was made'),
    ('check_state_dict_keys', ['0.weight', '0.bias', '3.weight', '4.weight', '4.bias', '6.weight', '6.bias'], 'holds other layers'),
    ('check_state_dict_keys', KEYS + KEYS[:1], 'appears twice'), ('check_state_dict_keys', [0, 1], 'should all be strings'),
    ('check_conv1d_layer', ZerosOnly, "padding_mode='reflect', bias=False) on x of shape (2, 3, 11) differs at index"),
    ('check_conv1d_layer', BothAxes, 'differs at index'), ('check_conv1d_layer', NoStride, 'has shape'),
    ('check_conv1d_layer', NoBias, 'differs at index'), ('check_conv1d_layer', KernelDown, 'your layer raised ValueError'),
    ('check_conv1d_layer', nn.Conv1d, "miniconv's conv2d did not compute it"), ('check_conv1d_layer', FrozenWeight, 'does not depend on weight'),
    ('check_conv1d_layer', nn.Linear, "can't load the state_dict"), ('check_conv1d_layer', lambda *a, **k: 3, 'should make a layer'),
]

def checkers(): return sorted(n for n in ex.__all__ if n.startswith('check_'))

def test_every_checker_has_cases():
    "Each exported checker has a right answer here and at least two wrong ones"
    assert checkers() == sorted(RIGHT), set(checkers()) ^ set(RIGHT)
    counts = {n: sum(w[0] == n for w in WRONG) for n in RIGHT}
    assert all(v >= 2 for v in counts.values()), counts

@pytest.mark.parametrize('name', sorted(RIGHT))
def test_accepts_right_answer(name):
    res, out = run(getattr(ex, name), RIGHT[name])
    assert res is True and out.startswith('✓ '), out

@pytest.mark.parametrize('case', WRONG, ids=lambda c: f"{c[0]}-{c[2][:25]}")
def test_rejects_wrong_answer(case):
    name, answer, says = case
    res, out = run(getattr(ex, name), answer)
    assert res is False and out.startswith('✗ '), out
    assert says in out, out
    assert len(out.splitlines()) == 1, out

def _numbers(v):
    "The numbers a right answer is made of, as they could be printed"
    if isinstance(v, (int, float)): vals = [v]
    elif isinstance(v, (tuple, list, set, range)): vals = list(v)
    else: return []
    return [f"{x:,}" if isinstance(x, int) else f"{x}" for x in vals] + [str(x) for x in vals]

NUMBER_CHECKERS = [n for n, v in RIGHT.items() if _numbers(v)]

@pytest.mark.parametrize('case', [w for w in WRONG if w[0] in NUMBER_CHECKERS], ids=lambda c: f"{c[0]}-{c[2][:25]}")
def test_verdict_hides_the_answer(case):
    "A wrong number (or collection of numbers) gets a verdict that does not print the right one"
    name, answer, _ = case
    _, out = run(getattr(ex, name), answer)
    mine = set(_numbers(answer)) if not isinstance(answer, range) else set()
    leaked = [s for s in _numbers(RIGHT[name]) if s not in mine and re.search(rf'(?<![\d.,]){re.escape(s)}(?![\d.,])', out)]
    if name == 'check_simple_cnn_sizes': leaked = [s for s in leaked if s not in ('1', '10')]   # "[1, 40]" and "[N, 10]" are shapes
    assert not leaked, (leaked, out)
    assert 'range(1, 33)' not in out

def test_function_verdict_reports_the_learners_value():
    "For a function answer, the value a verdict prints at the differing index is the learner's, not the reference's"
    wrong = lambda x, k: corr1d(x, k.flip(0))
    _, out = run(ex.check_corr1d, wrong)
    m = re.search(r'for a signal of length (\d+) and a kernel of length (\d+) differs at index \[(\d+)\], where it is (\S+) ', out)
    assert m, out
    n, k, i, v = int(m[1]), int(m[2]), int(m[3]), float(m[4])
    g = torch.Generator().manual_seed(0)
    x, kk = torch.randn(n, generator=g), torch.randn(k, generator=g)
    assert abs(wrong(x, kk)[i].item() - v) < 1e-3 and abs(corr1d(x, kk)[i].item() - v) > 1e-3

def test_im2col1d_verdict_reports_the_learners_value():
    "check_im2col1d, like check_corr1d, prints the learner's value at the first differing index, not F.unfold's"
    wrong = lambda x, ks, **kw: im2col1d(x, ks, **kw, taps_first=True)
    _, out = run(ex.check_im2col1d, wrong)
    m = re.search(r'differs at index \[(\d+), (\d+), (\d+)\], where it is (\S+) ', out)
    assert m and 'x of shape (2, 3, 12), ks=3,' in out, out
    i, v = tuple(int(m[j]) for j in (1, 2, 3)), float(m[4])
    x = torch.randn(2, 3, 12, generator=torch.Generator().manual_seed(0))
    assert abs(wrong(x, 3)[i].item() - v) < 1e-3 and abs(im2col1d(x, 3)[i].item() - v) > 1e-3

def test_layer_checker_reports_a_raising_class():
    class Broken(nn.Conv1d):
        def __init__(self, *args, **kwargs): raise RuntimeError("not written yet")
    res, out = run(ex.check_conv1d_layer, Broken)
    assert res is False and 'making your layer raised RuntimeError: not written yet (for Conv1d(3, 4, 3))' in out, out

def _boom(*args, **kwargs): raise RuntimeError("not written yet")

@pytest.mark.parametrize('name', sorted(RIGHT))
@pytest.mark.parametrize('bad', [None, 'abc', 3.5j, _boom, [[1, 2], [3]]], ids=['None', 'str', 'complex', 'raises', 'ragged'])
def test_bad_input_is_a_verdict(name, bad, capsys):
    "None, a wrong type or a function that raises: False and a one-line message, never an exception or a traceback"
    res = getattr(ex, name)(bad)
    out, err = capsys.readouterr()
    assert res is False and out.startswith('✗ ') and len(out.splitlines()) == 1, out
    assert 'Traceback' not in out + err and not err, err
    if bad is _boom and isinstance(RIGHT[name], type(corr1d)): assert 'your function raised RuntimeError: not written yet' in out, out

def test_checkers_leave_random_numbers_alone():
    "Checking an answer (which builds models and random inputs, on one thread) leaves the caller's random numbers and thread count alone"
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    want = torch.rand(3)
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        for name, answer in RIGHT.items(): getattr(ex, name)(answer)
    assert torch.equal(torch.rand(3), want)
    assert torch.get_num_threads() == threads

# ---- the chapters' Summary and Exercises, and the solutions that answer them

def md_cells(nb): # A notebook's path relative to nbs/
    return [''.join(c['source']) for c in json.loads((NBS/nb).read_text(encoding='utf-8'))['cells'] if c['cell_type'] == 'markdown']

def ending(chapter): # A chapter's name
    "(summary, exercises): the last two markdown cells of the chapter"
    return md_cells(f'{chapter}.ipynb')[-2:]

@pytest.mark.parametrize('chapter', CHAPTERS)
def test_chapter_ends_with_summary_and_exercises(chapter):
    summary, exercises = ending(chapter)
    assert summary.startswith('## Summary\n') and exercises.startswith('## Exercises\n'), (summary[:40], exercises[:40])
    assert 3 <= len(re.findall(r'(?m)^- ', summary)) <= 6, summary
    items = re.findall(r'(?ms)^(\d+)\. (.*?)(?=^\d+\. |^\s*$|\Z)', exercises)
    assert [int(n) for n, _ in items] == list(range(1, len(items) + 1)) and len(items) >= 4, items
    kinds = ' '.join(t.split('**')[1].lower() for _, t in items)
    for kind in ('predict', 'implement', 'explain', 'stretch'): assert kind in kinds, (chapter, kind, kinds)
    stretch = [t for _, t in items if t.startswith('**Stretch')]
    assert len(stretch) == 1 and 'Why:' in stretch[0], stretch
    named = {n for _, t in items for n in re.findall(r'`(check_\w+)\(', t)}
    assert len(named) >= 2 and named <= set(checkers()), named
    for n in named: assert re.search(rf'`{n}\([^`]+\)`', exercises), n   # an example call, with its argument

def test_every_checker_is_named_in_a_chapter():
    named = {n for c in CHAPTERS for n in re.findall(r'`(check_\w+)\(', ending(c)[1])}
    assert named == set(checkers()), set(checkers()) - named

def test_stretch_ideas():
    "The three ideas the course doesn't cover appear as stretch exercises"
    text = ' '.join(ending(c)[1] for c in CHAPTERS)
    for idea in ('WaveNet', 'deformable convolution', 'FFT'): assert re.search(rf'\*\*Stretch[^\n]*{idea}', text, re.I), idea

@pytest.mark.parametrize('chapter', CHAPTERS)
def test_solutions_answer_every_exercise(chapter):
    "The chapter links its solutions page; that notebook has a section per exercise and asserts every checker the exercises name"
    sol = f'solutions/{chapter}_solutions.ipynb'
    assert (NBS/sol).exists(), sol
    exercises = ending(chapter)[1]
    page = re.sub(r'^\d+_', '', chapter) + '_solutions.html'
    assert f'](solutions/{page})' in exercises, f"{chapter} does not link solutions/{page}"
    n = len(re.findall(r'(?m)^\d+\. ', exercises))
    text = '\n'.join(md_cells(sol))
    assert re.findall(r'(?m)^## (\d+)\. ', text) == [str(i) for i in range(1, n + 1)], text[:200]
    code = '\n'.join(''.join(c['source']) for c in json.loads((NBS/sol).read_text(encoding='utf-8'))['cells'] if c['cell_type'] == 'code')
    for name in set(re.findall(r'`(check_\w+)\(', exercises)): assert re.search(rf'assert {name}\(', code), (sol, name)
    assert '#| export' not in code and 'default_exp' not in code, f"{sol} must export nothing"
