"""The residual chapter: blocks on our Conv2d, the digit ResNet, the v1 stride move against Distill's table, the blur pool, the
shift table, and the checkers' verdicts (right answers, and the hints for the usual wrong ones)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from miniconv.layers import Conv2d
from miniconv.receptive_field import receptive_field, AlignmentError
from miniconv.resnet import (conv_layer, ResBlock, digit_net, first_layer_grad, train_digits, resnet_v1, blur_kernel, BlurPool,
                             rel_change, shift_table, fork_block, check_fork_rf, check_bottleneck, check_aligned_shortcut)

pytestmark = pytest.mark.usefixtures('one_thread')  # tiny tensors: one thread is faster


def test_blocks_are_built_on_our_conv2d():
    b = ResBlock(4, 8, stride=2)
    assert all(type(m) is Conv2d for m in b.modules() if isinstance(m, nn.Conv2d)) and sum(isinstance(m, Conv2d) for m in b.modules()) == 3
    assert type(ResBlock(4, 4).idconv) is nn.Identity and ResBlock(4, 4, res=False).idconv is not None

def test_a_zero_initialised_block_starts_as_the_identity():
    x = torch.relu(torch.randn(2, 4, 6, 6, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(ResBlock(4, 4).eval()(x), x)
    assert not torch.allclose(ResBlock(4, 4, zero_init=False).eval()(x), x)
    assert not torch.allclose(ResBlock(4, 4, res=False).eval()(x), x)  # the plain block has no identity path

def test_plain_and_residual_differ_only_by_the_shortcut():
    torch.manual_seed(0); r = ResBlock(4, 4, zero_init=False)
    torch.manual_seed(0); p = ResBlock(4, 4, res=False)
    x = torch.randn(2, 4, 6, 6)
    assert torch.allclose(r.eval()(x), F.relu(p.convs.eval()(x) + x))

def test_digit_net_shapes_and_depth():
    m = digit_net(n=2, nfs=(4, 8, 8))
    assert m(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert sum(isinstance(m, Conv2d) for m in m.modules()) == 1 + 3*2*2 + 2  # stem, 6 blocks of 2, two 1x1 shortcuts
    with pytest.raises(ValueError, match='n must be a positive integer'): digit_net(n=0)

def test_first_layer_grad_is_the_stem_weights_gradient():
    torch.manual_seed(0)
    m, xb, yb = digit_net(n=1, nfs=(4,)), torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    F.cross_entropy(m(xb), yb).backward()
    assert first_layer_grad(m, xb, yb) == pytest.approx(m[0][0].weight.grad.norm().item(), rel=1e-5)

def test_receptive_field_of_the_digit_net():
    "Stage 1: a 3x3 stride-2 stem, then six 3x3 at jump 2; the stride-2 block adds 4 + 8; the shortcut adds nothing"
    rows = receptive_field(digit_net(), 28).set_index('name')
    assert rows.loc['relu_2', 'size'] == 3 + 6*4 == rows.loc['4.idconv.1', 'size']
    assert rows.loc['add_3', 'size'] == rows.loc['4.convs.1.1', 'size'] == 27 + 4 + 8 and rows.loc['add_3', 'jump'] == 4

@pytest.mark.slow
def test_resnet_v1_matches_distill():
    "Distill's table: ResNet v1 -50/-101/-152 see 483/1027/1507 pixels, 32 apart; torchvision's v1.5 sees 56 less; AlexNet 195, VGG-16 212"
    import torchvision.models as tvm
    for name, want in [('resnet50', 483), ('resnet101', 1027), ('resnet152', 1507)]:
        with torch.device('meta'): m = getattr(tvm, name)(weights=None)
        v15 = receptive_field(m, 224).set_index('name').loc['layer4.2.relu_2']
        v1 = receptive_field(resnet_v1(m), 224).set_index('name').loc['layer4.2.relu_2']
        assert (v1['size'], v1['jump'], v15['size']) == (want, 32, want - 56), name
        assert (m.layer2[0].conv1.stride, m.layer2[0].conv2.stride) == ((2, 2), (1, 1))
    with torch.device('meta'): alex, vgg = tvm.alexnet(weights=None), tvm.vgg16(weights=None)
    assert receptive_field(alex, 224).set_index('name').loc['features.12', 'size'] == 195
    assert receptive_field(vgg, 224).set_index('name').loc['features.30', 'size'] == 212

def test_blur_kernel_and_blur_pool():
    assert torch.equal(blur_kernel(3)*16, torch.tensor([[1., 2, 1], [2, 4, 2], [1, 2, 1]]))
    assert torch.equal(blur_kernel(1), torch.ones(1, 1)) and blur_kernel(4).sum().item() == pytest.approx(1)
    x = torch.rand(2, 3, 9, 10, generator=torch.Generator().manual_seed(0))
    bp = BlurPool(3)
    assert torch.allclose(bp(x), F.conv2d(x, bp.weight, stride=2, padding=1, groups=3), atol=1e-6) and bp(x).shape == (2, 3, 5, 5)
    assert BlurPool(3, ks=2)(x).shape == (2, 3, 4, 5)  # an even blur has no middle: no padding

def test_blur_pool_lowers_the_change_under_a_shift():
    "A 1-pixel stripe pattern: subsampling flips between two pictures as it moves, the blurred one barely changes"
    x = torch.zeros(4, 1, 16, 16); x[..., ::2] = 1.
    heads = {'sub': lambda t: t[..., ::2, ::2], 'blur': BlurPool(1)}
    t = shift_table(heads, x, shifts=(1,), seeds=(0,), n=4)
    sub, blur = (float(t.loc[k, 'shift 1 px'].split()[0]) for k in ('sub', 'blur'))
    assert sub == 1 and blur < 0.3, t  # subsampled, the moved stripes vanish: all of it changes
    assert rel_change(x, x) == 0

def test_checkers_accept_right_answers(capsys):
    assert check_fork_rf((11, 2))
    class Bottleneck(nn.Module):
        def __init__(self, ni, nf, stride=1):
            super().__init__()
            self.convs = nn.Sequential(conv_layer(ni, nf//4, 1), conv_layer(nf//4, nf//4, stride=stride), conv_layer(nf//4, nf, 1, act=False))
            nn.init.zeros_(self.convs[2][1].weight)
            self.idconv = nn.Identity() if ni == nf and stride == 1 else conv_layer(ni, nf, 1, stride, act=False)
        def forward(self, x): return F.relu(self.convs(x) + self.idconv(x))
    assert check_bottleneck(Bottleneck)
    assert check_aligned_shortcut(lambda ni, nf: nn.Sequential(nn.AvgPool2d(3, 2, 1), conv_layer(ni, nf, 1, act=False)))
    out = capsys.readouterr().out
    assert out.count('✓') == 3 and 'v1.5' in out and 'aligned' in out

@pytest.mark.parametrize('answer,hint', [((7, 2), 'span 5 positions'), ((16, 2), 'not chained'), ((5, 2), 'the 5x5 branch alone'),
                                         ((11, 4), 'the jump is too high'), ((12, 2), 'the size is too high')], ids=['dilation', 'sum', 'one branch', 'jump', 'other'])
def test_fork_checker_hints(answer, hint, capsys):
    assert not check_fork_rf(answer)
    assert hint in capsys.readouterr().out

def test_other_checkers_explain_what_is_wrong(capsys):
    assert not check_bottleneck(lambda ni, nf, stride=1: ResBlock(ni, nf, stride))  # two convolutions, not three
    assert not check_bottleneck(lambda ni, nf, stride=1: nn.Sequential(nn.Conv2d(ni, nf, 1), nn.Conv2d(nf, nf, 3, stride, 1), nn.Conv2d(nf, nf, 1)))
    assert not check_aligned_shortcut(lambda ni, nf: nn.Sequential(nn.AvgPool2d(2), conv_layer(ni, nf, 1, act=False)))  # ResNet-D's
    assert not check_aligned_shortcut(lambda ni, nf: conv_layer(ni, nf, 1, 2, act=False))  # no average
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith('✗') and 'three convolutions' in out[0] and 'our Conv2d' in out[1]
    assert 'centred between two pixels' in out[2] and 'should average' in out[3]

def test_checkers_leave_the_seed_alone():
    torch.manual_seed(3); a = torch.rand(1)
    torch.manual_seed(3); check_fork_rf((11, 2)); b = torch.rand(1)
    assert torch.equal(a, b)

@pytest.mark.slow
def test_train_digits_learns():
    "A short run on 512 digits (16 steps): the training loss falls, accuracy is above chance, and the returned model is in eval mode"
    from miniconv.data import load_mnist
    d = load_mnist(verbose=False)
    data = d.x_train[:512], d.y_train[:512], d.x_valid[:256], d.y_valid[:256]
    m, hist = train_digits(True, n=1, epochs=2, data=data, n_train=512)
    assert not m.training and hist[-1]['train_loss'] < hist[0]['train_loss'] - 0.05 and hist[-1]['accuracy'] > 0.15, hist
