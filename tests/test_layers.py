"""`miniconv.layers`: our `Conv2d`, `MaxPool2d` and `AvgPool2d` are drop-in twins of PyTorch's (same arguments, parameters,
initialisation, state_dict, outputs and gradients); `to_ours`/`to_torch` swap them at any depth, keeping the weights and
drawing no random numbers; the receptive-field chapter reads converted models; `train_on` trains on either."""
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.testing import assert_close

import miniconv.layers as L
from miniconv.layers import Conv2d, MaxPool2d, AvgPool2d, to_ours, to_torch, train_on, step_times
from miniconv.cnn import simple_cnn, better_cnn, ARCHS
from miniconv.im2col import conv_specs
from miniconv.receptive_field import receptive_field, unit_fields
from miniconv.checkpoint import save_model, load_model

pytestmark = [pytest.mark.usefixtures('one_thread'), pytest.mark.filterwarnings("ignore:Using padding='same'")]
TOL = dict(rtol=1e-4, atol=1e-4)

CONV_CASES = [  # (args, kwargs) of both constructors
    ((3, 8, 3), dict(stride=2, padding=1)),
    ((4, 6, 3), dict(padding='same', groups=2, bias=False)),
    ((4, 6, (3, 2)), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2))),
    ((6, 12, 3), dict(padding=1, groups=6)),                 # depthwise, 2 kernels per channel
    ((6, 6, 5), dict(padding='same', dilation=2, groups=6, bias=False)),
    ((2, 4, 2), dict(padding='same')),                        # even kernel: the odd zero at the end
    ((3, 5, 3), dict(padding='valid', bias=False)),
    ((2, 3, 3), dict(padding=2, padding_mode='reflect')),
    ((2, 3, 3), dict(padding=(1, 2), padding_mode='circular')),
    ((2, 3, 3), dict(padding=1, padding_mode='replicate')),
]

@pytest.mark.parametrize('args,kw', CONV_CASES)
def test_conv_same_init_params_and_state_dict(args, kw):
    "With the same seed, our layer draws exactly nn.Conv2d's numbers: kaiming_uniform_(a=sqrt(5)) and the fan-in bias"
    torch.manual_seed(7); theirs = nn.Conv2d(*args, **kw); after_theirs = torch.random.get_rng_state()
    torch.manual_seed(7); ours = Conv2d(*args, **kw)
    assert torch.equal(torch.random.get_rng_state(), after_theirs)   # the same numbers drawn, no more, no fewer
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (n, p), (m, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert n == m and p.shape == q.shape and torch.equal(p, q)
    assert (ours.bias is None) == (theirs.bias is None) == (kw.get('bias', True) is False)

def test_init_is_pytorchs_recipe():
    "The bound of the weights and the bias follows reset_parameters: 1/sqrt(fan_in) for both (kaiming_uniform_ with a=sqrt(5))"
    m = Conv2d(16, 300, 3)
    bound = 1/(16*9)**0.5
    assert m.weight.abs().max() <= bound and m.weight.abs().max() > 0.9*bound
    assert m.bias.abs().max() <= bound and m.bias.abs().max() > 0.9*bound

@pytest.mark.parametrize('args,kw', CONV_CASES)
def test_conv_load_state_dict_same_outputs_and_grads(args, kw):
    theirs, ours = nn.Conv2d(*args, **kw), Conv2d(*args, **kw)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(3, args[0], 9, 8, generator=torch.Generator().manual_seed(1))
    xa, xt = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_o, out_t = ours(xa), theirs(xt)
    assert_close(out_o, out_t, **TOL)
    go = torch.randn(out_t.shape, generator=torch.Generator().manual_seed(2))
    out_o.backward(go); out_t.backward(go)
    assert_close(xa.grad, xt.grad, **TOL)
    for p, q in zip(ours.parameters(), theirs.parameters()): assert_close(p.grad, q.grad, **TOL)

@settings(max_examples=60, deadline=None, derandomize=True)
@given(ci=st.integers(1, 3), co=st.integers(1, 3), g=st.integers(1, 3), ks=st.integers(1, 4), stride=st.integers(1, 3),
       pad=st.integers(0, 2), dil=st.integers(1, 2), bias=st.booleans(), one=st.booleans(), seed=st.integers(0, 99))
def test_conv_random_configs_match_nn(ci, co, g, ks, stride, pad, dil, bias, one, seed):
    "Random settings, one image [C, H, W] or a batch: our layer loaded with nn.Conv2d's weights gives its outputs"
    ci, co = ci*g, co*g
    size = dil*(ks - 1) + 1 + 3
    theirs = nn.Conv2d(ci, co, ks, stride, pad, dil, g, bias)
    ours = Conv2d(ci, co, ks, stride, pad, dil, g, bias)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(*(() if one else (2,)), ci, size, size + 1, generator=torch.Generator().manual_seed(seed))
    assert_close(ours(x), theirs(x), **TOL)

@pytest.mark.parametrize('bad,msg', [(lambda: Conv2d(0, 4, 3), 'ni=0'), (lambda: Conv2d(1, 0, 3), 'nf=0'),
                                     (lambda: Conv2d(1, 4, 0), 'ks=0'), (lambda: Conv2d(1, 4, 3, stride=(1, 0)), 'stride=(1, 0)'),
                                     (lambda: Conv2d(1, 4, 3, padding=-1), 'padding=-1'), (lambda: Conv2d(1, 4, 3, dilation=0), 'dilation=0'),
                                     (lambda: Conv2d(1, 4, 3, padding='full'), "padding"), (lambda: Conv2d(4, 6, 3, groups=4), 'divisible by groups'),
                                     (lambda: MaxPool2d(0), 'ks=0'), (lambda: MaxPool2d(2, stride=0), 'stride=0'),
                                     (lambda: AvgPool2d(2, padding=-1), 'padding=-1'), (lambda: MaxPool2d(2, dilation=0), 'dilation=0'),
                                     (lambda: Conv2d(1, 4, (3, 3, 3)), 'ks=(3, 3, 3)'), (lambda: AvgPool2d(2, divisor_override=0), 'divisor_override must not be 0')])
def test_bad_arguments_fail_when_the_layer_is_made(bad, msg):
    with pytest.raises(ValueError) as e: bad()
    assert msg in str(e.value)

def test_conv_bad_input_is_conv2ds_error():
    with pytest.raises(ValueError, match='x has 2 channels'): Conv2d(3, 4, 3)(torch.zeros(1, 2, 8, 8))

POOL_CASES = [(2, {}), (3, dict(stride=2, padding=1)), ((3, 2), dict(stride=(2, 1), padding=(1, 0), ceil_mode=True)), (3, dict(stride=2, ceil_mode=True))]

@pytest.mark.parametrize('ks,kw', POOL_CASES)
def test_pooling_twins(ks, kw):
    x = torch.randn(2, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    for ours, theirs in [(MaxPool2d(ks, **kw), nn.MaxPool2d(ks, **kw)), (AvgPool2d(ks, **kw), nn.AvgPool2d(ks, **kw)),
                         (AvgPool2d(ks, **kw, count_include_pad=False), nn.AvgPool2d(ks, **kw, count_include_pad=False))]:
        xa, xt = x.clone().requires_grad_(), x.clone().requires_grad_()
        out_o, out_t = ours(xa), theirs(xt)
        assert_close(out_o, out_t, rtol=1e-6, atol=1e-6)
        go = torch.randn(out_t.shape)
        out_o.backward(go); out_t.backward(go)
        assert_close(xa.grad, xt.grad, rtol=1e-6, atol=1e-6)
        assert isinstance(ours, type(theirs)) and ours.state_dict() == theirs.state_dict() == {}
    assert_close(MaxPool2d(2, dilation=2)(x), nn.MaxPool2d(2, dilation=2)(x))

def test_repr_says_whose_arithmetic():
    assert repr(Conv2d(1, 4, 3)).startswith('miniconv.Conv2d(1, 4, kernel_size=(3, 3)')
    assert repr(MaxPool2d(2)).startswith('miniconv.MaxPool2d(kernel_size=2') and repr(AvgPool2d(2)).startswith('miniconv.AvgPool2d(')
    assert type(Conv2d(1, 4, 3)).__name__ == 'Conv2d'   # what receptive_field's table prints

class Custom(nn.Module):
    "A model that is not a Sequential, with a ModuleList and a ModuleDict inside"
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, bias=False)))
        self.blocks = nn.ModuleList([nn.Conv2d(4, 4, 3, padding='same', groups=4), nn.AvgPool2d(2, ceil_mode=True)])
        self.heads = nn.ModuleDict(dict(a=nn.Conv2d(4, 2, 1)))
    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks: x = b(x)
        return self.heads['a'](x)

def kinds(m): return [type(c) for c in m.modules() if isinstance(c, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))]

@pytest.mark.parametrize('make', [simple_cnn, better_cnn, Custom, lambda: nn.Conv2d(2, 3, 3), lambda: nn.Sequential(nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3))))])
def test_to_ours_and_back(make):
    torch.manual_seed(0)
    m = make().eval()
    state = torch.random.get_rng_state()
    o = to_ours(m)
    assert torch.equal(torch.random.get_rng_state(), state)                      # no random numbers drawn
    ours_kinds = {nn.Conv2d: Conv2d, nn.MaxPool2d: MaxPool2d, nn.AvgPool2d: AvgPool2d}
    assert kinds(o) == [ours_kinds[k] for k in kinds(m)] and kinds(m) == [k for k in kinds(m) if k in ours_kinds]  # the original is unchanged
    assert o.state_dict().keys() == m.state_dict().keys()
    for (n, p), q in zip(o.state_dict().items(), m.state_dict().values()): assert torch.equal(p, q), n
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(o.parameters(), m.parameters()))   # a copy: nothing shared
    assert [c.training for c in o.modules()] == [c.training for c in m.modules()]
    x = torch.rand(3, next(m.parameters()).shape[1], 28, 28)
    with torch.no_grad(): assert_close(o(x), m(x), **TOL)
    back = to_torch(o)
    assert kinds(back) == kinds(m)
    with torch.no_grad(): assert_close(back(x), m(x), rtol=0, atol=0)

def test_conversion_keeps_flags_and_settings():
    m = nn.Sequential(nn.Conv2d(2, 4, 3, stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2, bias=False, padding_mode='reflect'), nn.MaxPool2d(3, 2, 1, 2, ceil_mode=True),
                      nn.AvgPool2d(2, 1, 1, ceil_mode=True, count_include_pad=False)).double()
    m[0].weight.requires_grad_(False); m.train(); m[1].eval()
    o = to_ours(m)
    c, p, a = o
    assert (c.stride, c.padding, c.dilation, c.groups, c.bias, c.padding_mode) == ((2, 1), (1, 0), (1, 2), 2, None, 'reflect')
    assert c.weight.dtype == torch.float64 and not c.weight.requires_grad and c.training and not p.training
    assert (p.kernel_size, p.stride, p.padding, p.dilation, p.ceil_mode) == (3, 2, 1, 2, True)
    assert (a.kernel_size, a.stride, a.padding, a.ceil_mode, a.count_include_pad) == (2, 1, 1, True, False)

def test_every_pooling_option_converts():
    "return_indices and divisor_override convert too, and give PyTorch's answers (refusals are tested in test_dropin.py)"
    x = torch.randn(2, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    m = nn.Sequential(nn.ReLU(), nn.Sequential(nn.MaxPool2d(3, 2, 1, return_indices=True)))
    o = to_ours(m)
    assert type(o[1][0]) is MaxPool2d and o[1][0].return_indices
    for a, r in zip(o(x), m(x)): assert torch.equal(a, r)
    a = nn.AvgPool2d(3, 2, 1, ceil_mode=True, divisor_override=2)
    assert_close(to_ours(a)(x), a(x), rtol=1e-6, atol=1e-6)
    assert_close(AvgPool2d(2, divisor_override=3)(x), nn.AvgPool2d(2, divisor_override=3)(x), rtol=1e-6, atol=1e-6)

@pytest.mark.parametrize('make', [simple_cnn, better_cnn, lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 8, 3, dilation=2),
                                                                                 nn.AvgPool2d(3, 2, 1, ceil_mode=True), nn.Conv2d(8, 8, 2, padding='same'))])
def test_receptive_field_understands_converted_models(make):
    m = make()
    for axis in (0, 1):
        assert receptive_field(to_ours(m), 28, axis).equals(receptive_field(m, 28, axis))
    assert conv_specs(to_ours(m), 28) == conv_specs(m, 28)

def test_unit_fields_on_a_converted_model():
    assert unit_fields(to_ours(simple_cnn()), 28, '2.0', 2, 1) == unit_fields(simple_cnn(), 28, '2.0', 2, 1)

def test_train_on_same_run_on_either_layers():
    "Same seed, data and schedule: the first epoch's loss agrees, and the model is built from our layers"
    from miniconv.data import load_mnist
    d = load_mnist('subset', verbose=False)
    data = (d.x_train[:256], d.y_train[:256], d.x_valid[:128], d.y_valid[:128])
    runs = {c: train_on(c, 'simple', epochs=1, bs=32, data=data, seed=3, progress='none') for c in ('torch', 'ours')}
    assert type(runs['ours'][0][0][0]) is Conv2d and type(runs['torch'][0][0][0]) is nn.Conv2d
    assert abs(runs['ours'][1][0]['train_loss'] - runs['torch'][1][0]['train_loss']) < 1e-4
    assert ARCHS['simple'] is simple_cnn and ARCHS['better'] is better_cnn

def test_train_on_restores_the_table_after_an_error(monkeypatch):
    def boom(*a, **k): raise RuntimeError('out of memory')
    monkeypatch.setattr(L, 'train', boom)
    with pytest.raises(RuntimeError): train_on('ours', 'simple')
    assert ARCHS['simple'] is simple_cnn and ARCHS['better'] is better_cnn
    with pytest.raises(ValueError, match="conv must be one of"): train_on('jax', 'simple')

def test_checkpoint_of_a_model_on_our_layers(tmp_path):
    "save_model takes our model (its state_dict is PyTorch's); load_model rebuilds PyTorch's layers, to_ours swaps ours back in"
    torch.manual_seed(0)
    m = to_ours(better_cnn()).eval()
    save_model(m, tmp_path/'m.pt', 'better', accuracy=0.5)
    back = load_model(tmp_path/'m.pt')
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert_close(back(x), m(x), **TOL)
        assert_close(to_ours(back)(x), m(x), rtol=0, atol=0)

def test_step_times():
    t = step_times('simple', bs=4, repeats=1, threads=1)
    assert set(t) == {'torch', 'ours'} and all(v > 0 for v in t.values())
    for kw, msg in [(dict(arch='huge'), "'huge'"), (dict(bs=0), 'bs=0'), (dict(repeats=0), 'repeats=0'), (dict(threads=-1), 'threads=-1'), (dict(clock='sundial'), 'sundial')]:
        with pytest.raises(ValueError, match=msg): step_times(**{'arch': 'simple', 'bs': 2, 'repeats': 1, **kw})

def test_layers_inside_a_channels_last_model():
    "Our layers hand on the layout PyTorch's would: the usual one in a usual model, channels-last in a channels-last one; the same answers in both"
    torch.manual_seed(0)
    m = better_cnn().eval()
    o = to_ours(m)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert o[0][0](x).is_contiguous() and o[1][0](torch.rand(3, 16, 28, 28)).is_contiguous()
        ocl, xcl = to_ours(m).to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        assert ocl[1][0](o[0](x).contiguous(memory_format=torch.channels_last)).is_contiguous(memory_format=torch.channels_last)
        assert_close(ocl(xcl), m(x), **TOL)
