"""The exercise checkers, each defined in its chapter's module and gathered by `miniconv.exercises`, and the chapters'
Summary and Exercises sections that name them.

Every checker accepts a right answer (small reference answers below, the same ones the solutions notebooks derive),
rejects plausible wrong answers with a message naming what differs, answers bad input (None, a wrong type, a function
that raises or calls sys.exit(), an endless collection) with False and a message instead of a traceback, never prints
the right answer, and leaves the caller's random numbers alone. A build-it-yourself checker refuses the function that
would do the whole job (PyTorch's, or the chapter's own), and compares plain values, not what a tensor subclass claims.
The solutions notebooks themselves run under `nbdev_test` (they `assert` their checkers)."""
import contextlib, copy, importlib, io, itertools, json, re, signal, sys, threading, time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import miniconv.exercises as ex
from miniconv import harness
from miniconv.cnn import _smoothed_entropy
from miniconv.im2col import conv2d, im2col
from miniconv.kernels import top_edge, left_edge, corr2d
from miniconv.layers import to_ours, to_torch
from miniconv.resnet import conv_layer

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
MODULE = lambda chapter: re.sub(r'^\d+_', '', chapter)   # '05_kernels' -> 'kernels'
CHAPTERS = ['05_kernels', '06_strides_padding', '07_im2col', '08_cnn', '09_receptive_field', '11_color', '12_pooling', '13_transposed', '14_layers',
            '15_resnet']

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
class UnfoldConv1d(nn.Conv1d):
    "Right for a plain layer, by F.unfold and a matrix product: no convolution function, and not miniconv's conv2d either"
    def _conv_forward(self, x, weight, bias):
        cols = F.unfold(x[:, :, None], (1, self.kernel_size[0]))
        return (weight.flatten(1) @ cols + bias[:, None]) if bias is not None else weight.flatten(1) @ cols
class FrozenWeight(Conv1d):
    def _conv_forward(self, x, weight, bias): return super()._conv_forward(x, weight.detach(), bias)

class Bottleneck(nn.Module):
    "The solution: 1x1 to nf//4 channels, 3x3 with the stride, 1x1 back, on our Conv2d, starting as the identity"
    quarter, zero, ours = 4, True, True   # the parts a wrong answer changes
    def __init__(self, ni, nf, stride=1):
        super().__init__()
        mid = nf//self.quarter
        self.convs = nn.Sequential(conv_layer(ni, mid, 1), conv_layer(mid, mid, stride=stride), conv_layer(mid, nf, 1, act=False))
        if self.zero: nn.init.zeros_(self.convs[2][1].weight)
        if not self.ours: self.convs = to_torch(self.convs)
        self.idconv = nn.Identity() if ni == nf and stride == 1 else conv_layer(ni, nf, 1, stride, act=False)
    def forward(self, x): return F.relu(self.convs(x) + self.idconv(x))

class NotZeroed(Bottleneck): zero = False
class FullWidth(Bottleneck): quarter = 1
class TorchConvs(Bottleneck): ours = False

def two_convs(ni, nf, stride=1):
    from miniconv.resnet import ResBlock
    return ResBlock(ni, nf, stride)

def aligned_shortcut(ni, nf, ks=3, pad=1, avg=True):
    "The solution: a 3x3 average at stride 2 with padding 1, centred like the 3x3 branch, then a 1x1 convolution"
    return nn.Sequential(nn.AvgPool2d(ks, 2, pad) if avg else nn.Identity(), conv_layer(ni, nf, 1, 1 if avg else 2, act=False))

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
    'check_fork_rf': (11, 2),
    'check_bottleneck': Bottleneck,
    'check_aligned_shortcut': aligned_shortcut,
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
    ('check_corr2d', lambda img, k: fft_corr2d(F.pad(img, (1, 1, 1, 1)), k), 'has shape'),
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
    ('check_smoothing_floor', 0.5, 'label_smoothing=0.1'), ('check_smoothing_floor', round(_smoothed_entropy(0.2, spread=9), 3), 'all ten classes'),
    ('check_smoothing_floor', 0.88, 'too high'),
    ('check_rf_size', 11, 'multiply it by the jump'), ('check_rf_size', 18, 'dilated'), ('check_rf_size', 19, 'widens the field too'),
    ('check_rf1d', lambda m: rf1d(m, jumps=False), 'the size is wrong'), ('check_rf1d', lambda m: rf1d(m, dilations=False), 'the size is wrong'),
    ('check_rf1d', lambda m: rf1d(m, jump_first=True), 'the size is wrong'), ('check_rf1d', lambda m: 7, 'what your function returns'),
    ('check_rf1d', lambda m: itertools.count(), 'yours holds more than 2'),
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
    ('check_conv1d_layer', UnfoldConv1d, "miniconv's conv2d did not compute it"), ('check_conv1d_layer', FrozenWeight, 'does not depend on weight'),
    ('check_conv1d_layer', nn.Linear, "loading the state_dict of nn.Conv1d(3, 4, 3) into your layer raised"), ('check_conv1d_layer', lambda *a, **k: 3, 'should make a layer'),
    ('check_fork_rf', (7, 2), 'dilated'), ('check_fork_rf', (16, 2), 'not chained'), ('check_fork_rf', (5, 2), 'the 5x5 branch alone'),
    ('check_fork_rf', (11, 4), 'the jump is too high'), ('check_fork_rf', (12, 2), 'the size is too high'), ('check_fork_rf', (9, 2), 'the size is too low'),
    ('check_bottleneck', NotZeroed, "start its last batchnorm's scale at 0"), ('check_bottleneck', FullWidth, 'a quarter of the'),
    ('check_bottleneck', TorchConvs, "not PyTorch's nn.Conv2d"), ('check_bottleneck', two_convs, 'three convolutions, 1x1, 3x3 and 1x1; yours has 2'),
    ('check_aligned_shortcut', lambda ni, nf: aligned_shortcut(ni, nf, 2, 0), 'centred between two pixels'),   # ResNet-D's 2x2 average
    ('check_aligned_shortcut', lambda ni, nf: aligned_shortcut(ni, nf, avg=False), 'should average'),
    ('check_aligned_shortcut', lambda ni, nf: aligned_shortcut(ni, nf, 3, 0), 'should map [2, 8, 16, 16] to [2, 16, 8, 8], got [2, 16, 7, 7]'),
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

def _exits(*args, **kwargs): sys.exit(3)

BAD = {'None': lambda: None, 'str': lambda: 'abc', 'complex': lambda: 3.5j, 'raises': lambda: _boom, 'ragged': lambda: [[1, 2], [3]],
       'exits': lambda: _exits, 'count': itertools.count, 'range': lambda: range(10**12)}

@pytest.mark.parametrize('name', sorted(RIGHT))
@pytest.mark.parametrize('bad', BAD, ids=list(BAD))
def test_bad_input_is_a_verdict(name, bad, capsys):
    "None, a wrong type, a function that raises or calls sys.exit(), an endless collection: False and a one-line message, never an exception or a traceback"
    res = getattr(ex, name)(BAD[bad]())
    out, err = capsys.readouterr()
    assert res is False and out.startswith('✗ ') and len(out.splitlines()) == 1, out
    assert 'Traceback' not in out + err and not err, err
    if isinstance(RIGHT[name], type(corr1d)):
        if bad == 'raises': assert 'your function raised RuntimeError: not written yet' in out, out
        if bad == 'exits': assert 'your function called sys.exit()' in out, out

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

# ---- build it yourself: the function that would do the whole job is refused

class SuperConv1d(nn.Conv1d):
    "nn.Conv1d's own arithmetic, through super()"
    def _conv_forward(self, x, weight, bias): return super()._conv_forward(x, weight, bias)

def _with_autograd(conv):
    "A weight gradient computed by autograd through `conv`, not by hand"
    def f(x, go, ks, stride=1, padding=0, dilation=1):
        w = torch.zeros(go.shape[1], x.shape[1], *ks, dtype=x.dtype, requires_grad=True)
        return torch.autograd.grad(conv(x, w, stride=stride, padding=padding, dilation=dilation), w, go)[0]
    return f

def _caught(f, right):
    "`f`, made to fall back on the `right` function if the shortcut raises: the verdict must still refuse it"
    def g(*args, **kwargs):
        try: return f(*args, **kwargs)
        except Exception: return right(*args, **kwargs)
    return g

def _numpy_corr1d(x, k): return torch.from_numpy(np.correlate(x.numpy(), k.numpy(), 'valid'))

def _same_pads_conv(x, w, dilation=1):
    from miniconv.strides_padding import same_pads
    (bh, ah), (bw, aw) = same_pads(w.shape[-2], dilation), same_pads(w.shape[-1], dilation)
    return F.conv2d(F.pad(x, (bw, aw, bh, ah)), w, dilation=dilation)

def _rf1d_by_2d(model):
    "The checker's own reference: receptive_field on the model made 2-D"
    from miniconv.receptive_field import receptive_field, _to2d
    rf = receptive_field(nn.Sequential(*map(_to2d, model)), (1, 4000), axis=1)
    return int(rf['size'].iloc[-1]), int(rf['jump'].iloc[-1])

def _transpose_by_ours(x, w, stride=1, padding=0, output_padding=0):
    from miniconv.transposed import conv_transpose2d
    return conv_transpose2d(x, w, stride=stride, padding=padding, output_padding=output_padding)

def _transpose_by_grad(x, w, stride=1, padding=0, output_padding=0):
    (N, C, H, W), (kh, kw) = x.shape, w.shape[-2:]
    size = [N, w.shape[1], (H - 1)*stride - 2*padding + kh + output_padding, (W - 1)*stride - 2*padding + kw + output_padding]
    return torch.nn.grad.conv2d_input(size, w, x, stride=stride, padding=padding)

def _transpose_by_op(x, w, stride=1, padding=0, output_padding=0):
    return torch.ops.aten.convolution(x, w, None, [stride]*2, [padding]*2, [1, 1], True, [output_padding]*2, 1)

def _tv_bottleneck(ni, nf, stride=1):
    "torchvision's bottleneck block, on our layers, starting as the identity"
    from torchvision.models.resnet import Bottleneck
    down = None if ni == nf and stride == 1 else nn.Sequential(nn.Conv2d(ni, nf, 1, stride, bias=False), nn.BatchNorm2d(nf))
    b = Bottleneck(ni, nf//4, stride, down)
    nn.init.zeros_(b.bn3.weight)
    return to_ours(b)

# (checker, the shortcut, what the verdict must name): the eight lambdas first, then other ways to the same end
SHORTCUTS = [
    ('check_corr1d', lambda x,k: F.conv1d(x[None,None],k[None,None])[0,0], 'F.conv1d'),
    ('check_corr2d', lambda i,k: F.conv2d(i[None,None],k[None,None])[0,0], 'F.conv2d'),
    ('check_conv2d_same', lambda x,w,dilation=1: F.conv2d(x,w,padding='same',dilation=dilation), "padding='same'"),
    ('check_im2col1d', lambda x,ks,stride=1,padding=0,dilation=1: F.unfold(x[:,:,None],(1,ks),dilation=(1,dilation),padding=(0,padding),stride=(1,stride)), 'F.unfold'),
    ('check_conv_weight_grad', lambda x,go,ks,stride=1,padding=0,dilation=1: torch.nn.grad.conv2d_weight(x,(go.shape[1],x.shape[1],*ks),go,stride,padding,dilation), 'torch.nn.grad.conv2d_weight'),
    ('check_grouped_conv', lambda x,w,b,groups: F.conv2d(x,w,b,groups=groups), 'a convolution with groups > 1'),
    ('check_avg_pool_as_conv', lambda x,ks: F.avg_pool2d(x,ks), 'F.avg_pool2d'),
    ('check_conv_transpose', lambda x,w,stride=1,padding=0,output_padding=0: F.conv_transpose2d(x,w,stride=stride,padding=padding,output_padding=output_padding), 'F.conv_transpose2d'),
    ('check_conv1d_layer', SuperConv1d, 'F.conv1d'),
    ('check_corr1d', lambda x, k: torch.conv1d(x[None, None], k[None, None])[0, 0], 'F.conv1d'),
    ('check_corr1d', lambda x, k: torch.ops.aten.convolution(x[None, None], k[None, None], None, [1], [0], [1], False, [0], 1)[0, 0], 'torch.ops.aten.convolution'),
    ('check_corr1d', lambda x, k: corr2d(x[None], k[None])[0], "miniconv's corr2d"),
    ('check_corr1d', _numpy_corr1d, 'numpy.correlate'),
    ('check_corr2d', corr2d, "miniconv's corr2d"),
    ('check_corr2d', lambda i, k: torch._C._VariableFunctions.conv2d(i[None, None], k[None, None])[0, 0], 'F.conv2d'),
    ('check_conv2d_same', lambda x, w, dilation=1: nn.Conv2d(1, 1, 1, padding='same', dilation=dilation)._conv_forward(x, w, None), "padding='same'"),
    ('check_conv2d_same', _same_pads_conv, "miniconv's same_pads"),
    ('check_im2col1d', lambda x, ks, stride=1, padding=0, dilation=1: im2col(x[:, :, None], (1, ks), (1, stride), (0, padding), (1, dilation)), "miniconv's im2col"),
    ('check_im2col1d', lambda x, ks, stride=1, padding=0, dilation=1: nn.Unfold((1, ks), (1, dilation), (0, padding), (1, stride))(x[:, :, None]), 'F.unfold'),
    ('check_conv_weight_grad', _with_autograd(F.conv2d), 'F.conv2d'),
    ('check_conv_weight_grad', _with_autograd(conv2d), "miniconv's conv2d"),
    ('check_grouped_conv', lambda x, w, b, groups: conv2d(x, w, b, groups=groups), 'a convolution with groups > 1'),
    ('check_grouped_conv', lambda x, w, b, groups: torch.convolution(x, w, b, [1, 1], [0, 0], [1, 1], False, [0, 0], groups), 'a convolution with groups > 1'),
    ('check_avg_pool_as_conv', lambda x, ks: nn.AvgPool2d(ks)(x), 'F.avg_pool2d'),
    ('check_avg_pool_as_conv', lambda x, ks: __import__('miniconv.pooling').pooling.avg_pool2d(x, ks), "miniconv's avg_pool2d"),
    ('check_conv_transpose', _transpose_by_ours, "miniconv's conv_transpose2d"),
    ('check_conv_transpose', _transpose_by_grad, 'torch.nn.grad.conv2d_input'),
    ('check_conv_transpose', _transpose_by_op, 'a transposed convolution'),
    ('check_rf1d', _rf1d_by_2d, "miniconv's receptive_field"),
    ('check_bottleneck', _tv_bottleneck, "torchvision's Bottleneck"),
]

SHORTCUT_IDS = [f"{i:02d}-{c[0]}" for i, c in enumerate(SHORTCUTS)]

@pytest.mark.parametrize('case', SHORTCUTS, ids=SHORTCUT_IDS)
def test_shortcut_is_refused(case):
    "The function that would do the whole job is refused, by name; so it is when the learner's code catches the error and falls back on a right answer"
    name, shortcut, what = case
    res, out = run(getattr(ex, name), shortcut)
    assert res is False and out == f"✗ this exercise asks you to build it without {what}\n", out
    if isinstance(shortcut, type): return
    res, out = run(getattr(ex, name), _caught(shortcut, RIGHT[name]))
    assert res is False and out == f"✗ this exercise asks you to build it without {what}\n", out

UNWATCHED = [(i, c) for i, c in zip(SHORTCUT_IDS, SHORTCUTS) if c[0] != 'check_conv1d_layer']   # nn.Conv1d's arithmetic also fails its autograd-graph check

@pytest.mark.parametrize('case', [c for _, c in UNWATCHED], ids=[i for i, _ in UNWATCHED])
def test_shortcut_would_pass_unwatched(case, monkeypatch):
    "A check of the check: with nothing forbidden, each shortcut passes, so the refusal above is what stops it"
    name, shortcut, _ = case
    watch = harness._Watch.__init__
    monkeypatch.setattr(harness._Watch, '__init__', lambda self, rules: watch(self, ()))
    res, out = run(getattr(ex, name), shortcut)
    assert res is True, out

LEGIT = [
    ('check_grouped_conv', lambda x, w, b, groups: torch.cat([F.conv2d(xg, wg, bg) for xg, wg, bg in
                                                             zip(x.chunk(groups, 1), w.chunk(groups), [None]*groups if b is None else b.chunk(groups))], 1)),
    ('check_conv_transpose', lambda *a, **k: conv_transpose_by_conv(*a, **k).detach()),
    ('check_conv_transpose', lambda x, w, stride=1, padding=0, output_padding=0:   # the direct convolution by F.conv2d
        F.conv2d(_zero_stuffed(x, w, stride, padding, output_padding), w.transpose(0, 1).flip(-1, -2))),
    ('check_corr2d', lambda img, k: fft_corr2d(img, k)),
    ('check_avg_pool_as_conv', lambda x, ks: F.conv2d(x, torch.full((x.shape[1], 1, ks, ks), 1/ks**2, dtype=x.dtype), stride=ks, groups=x.shape[1])),
]

def _zero_stuffed(x, w, s, p, op):
    "The input of the direct convolution that computes a transposed one: zeros between pixels, padded"
    (N, C, H, W), (kh, kw) = x.shape, w.shape[-2:]
    xs = x.new_zeros(N, C, s*(H - 1) + 1, s*(W - 1) + 1)
    xs[..., ::s, ::s] = x
    return F.pad(xs, (kw - 1 - p, kw - 1 - p + op, kh - 1 - p, kh - 1 - p + op))

@pytest.mark.parametrize('case', LEGIT, ids=[f"{i}-{c[0]}" for i, c in enumerate(LEGIT)])
def test_legitimate_answers_pass(case):
    "What an exercise allows still passes: F.conv2d with groups=1 in the grouped exercise, a direct F.conv2d for the transposed one, a depthwise F.conv2d for pooling"
    name, answer = case
    res, out = run(getattr(ex, name), answer)
    assert res is True, out

def test_watchers_stay_in_their_thread_and_call():
    "A forbidden call fails only in the checker's thread, only during the call, and the watchers are gone after, even when the learner's code raised"
    x, w, errs, done = torch.randn(1, 1, 5, 5), torch.randn(1, 1, 3, 3), [], threading.Event()
    want = F.conv2d(x, w)
    def other():
        while not done.is_set():
            try: assert torch.equal(F.conv2d(x, w), want)
            except Exception as e: errs.append(e)
    t = threading.Thread(target=other)
    t.start()
    try:
        for _ in range(5): run(ex.check_corr2d, SHORTCUTS[1][1])
    finally: done.set(); t.join()
    assert errs == []
    assert sys.getprofile() is None and torch._C._len_torch_function_stack() == 0
    assert torch.equal(F.conv2d(x, w), want)

class Agreeable(torch.Tensor):
    "A tensor that says it is close to anything"
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.isclose, torch.allclose, torch.equal): return torch.ones(args[0].shape, dtype=torch.bool) if func is torch.isclose else True
        return super().__torch_function__(func, types, args, kwargs or {})

class AgreeableConv1d(Conv1d):
    "Every output 0, in a tensor that says it is close to anything"
    def forward(self, x): return (0*super().forward(x)).as_subclass(Agreeable)

class AgreeableBottleneck(Bottleneck):
    "Every output 0, in a tensor that says it is close to anything"
    def forward(self, x): return (0*super().forward(x)).as_subclass(Agreeable)

class AgreeableStr(str):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = str.__hash__

class AgreeableInt(int):
    def __eq__(self, other): return True
    __hash__ = int.__hash__

PLAIN = [
    ('check_laplacian', torch.zeros(3, 3).as_subclass(Agreeable)),
    ('check_greenness', torch.zeros(1, 3, 3, 3).as_subclass(Agreeable)),
    ('check_corr1d', lambda x, k: torch.zeros(len(x) - len(k) + 1).as_subclass(Agreeable)),
    ('check_conv1d_layer', AgreeableConv1d),
    ('check_state_dict_keys', [AgreeableStr('0.weight')]),
    ('check_conv_matrix_zeros', AgreeableInt(3)),
    ('check_stem_size', (AgreeableInt(1), AgreeableInt(1))),
    ('check_fork_rf', (AgreeableInt(1), AgreeableInt(1))),
    ('check_bottleneck', AgreeableBottleneck),
]

@pytest.mark.parametrize('case', PLAIN, ids=[f"{i}-{c[0]}" for i, c in enumerate(PLAIN)])
def test_answers_are_plain_values(case):
    "A value whose class says it equals anything is read as the plain number, string or tensor it holds, and fails; the verdict is never a bare ✗"
    name, answer = case
    res, out = run(getattr(ex, name), answer)
    assert res is False and out.startswith('✗ ') and len(out.strip()) > 2, out

def test_agreeable_tensor_fools_isclose():
    "A check of the check: the subclass above does make isclose say True"
    assert torch.isclose(torch.zeros(3).as_subclass(Agreeable), torch.ones(3)).all()

def test_no_bare_cross():
    with contextlib.redirect_stdout(io.StringIO()) as out: harness.verdict(False, '')
    assert out.getvalue().startswith('✗ ') and len(out.getvalue().strip()) > 2

def test_keyboard_interrupt_still_stops():
    def stop(*args): raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): ex.check_corr1d(stop)

def test_separable_cost_verdict_states_the_fractions():
    "The ✓ gives the depthwise step's share of the pair (about 1/29) and of a standard 3x3 layer (1/256), computed, not guessed"
    dw, pw, full = 128*3*3*14*14, 256*128*14*14, 256*128*3*3*14*14
    res, out = run(ex.check_separable_cost, dw + pw)
    assert res is True and f"about 1/{round((dw + pw)/dw)} of the pair" in out and f"1/{full//dw} of a standard 3x3 layer" in out, out
    assert (round((dw + pw)/dw), full//dw) == (29, 256)

@pytest.mark.slow
def test_time_limit():
    "An endless loop in the learner's function, or in an answer's __iter__, gets a verdict after the time limit; the timer is put back"
    def endless(*args, **kwargs):
        while True:
            try: pass
            except Exception: pass
    class Endless:
        def __iter__(self): endless()
    for checker, answer in ((ex.check_corr1d, endless), (ex.check_stem_size, Endless()), (ex.check_corr2d, lambda *a: time.sleep(60))):
        t = time.perf_counter()
        res, out = run(lambda a: checker(a, time_limit=0.3), answer)
        assert res is False and 'took more than 0.3 s' in out and time.perf_counter() - t < 2, out
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0) and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None)

# ---- where the checkers live

@pytest.mark.parametrize('chapter', CHAPTERS)
def test_checkers_live_in_their_chapter(chapter):
    "A chapter's exercises name checkers of its own module or of an earlier chapter, and say from which module to import them"
    exercises, mod = ending(chapter)[1], importlib.import_module(f'miniconv.{MODULE(chapter)}')
    own = {n for n in mod.__all__ if n.startswith('check_')}
    assert all(getattr(mod, n).__module__ == mod.__name__ for n in own), own
    named = set(re.findall(r'`(check_\w+)\(', exercises))
    assert own <= named, own - named
    for n in named - own:
        home = getattr(ex, n).__module__.split('.')[-1]
        assert [c for c in CHAPTERS if MODULE(c) == home][0] < chapter, f"{chapter} names {n}, from the later module {home}"
        assert f'from miniconv.{home} import {n}' in exercises, n
    m = re.search(rf'from miniconv\.{MODULE(chapter)} import ([\w, ]+)', exercises)
    assert m and set(m[1].replace(' ', '').split(',')) == own, (chapter, m and m[0])

def test_index_gathers_every_checker():
    "miniconv.exercises re-exports every chapter's checkers, and only those"
    mods = [importlib.import_module(f'miniconv.{MODULE(c)}') for c in CHAPTERS]
    assert sorted(ex.__all__) == sorted(n for m in mods for n in m.__all__ if n.startswith('check_'))
    assert all(getattr(ex, n) is getattr(importlib.import_module(getattr(ex, n).__module__), n) for n in ex.__all__)

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
