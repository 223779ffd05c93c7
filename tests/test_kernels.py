"Property tests for miniconv.kernels over many random shapes (too many configurations for the notebook)."
import sympy, torch
import torch.nn.functional as F
from hypothesis import assume, given, settings, strategies as st
from miniconv.kernels import apply_kernel, conv_loop, convolve, conv_symbols, conv_equations

@st.composite
def img_and_kernel(draw):
    "A random image and a random kernel (odd or even, square or not) that fits inside it"
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kh, kw = draw(st.integers(1, h)), draw(st.integers(1, w))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31-1)))
    return torch.randn(h, w, generator=g), torch.randn(kh, kw, generator=g)

@settings(max_examples=25, deadline=None, derandomize=True)
@given(img_and_kernel())
def test_conv_loop_matches_conv2d(ik):
    img, k = ik
    res = conv_loop(img, k)
    ref = F.conv2d(img[None, None], k[None, None])[0, 0]
    assert res.shape == (img.shape[0]-k.shape[0]+1, img.shape[1]-k.shape[1]+1)
    torch.testing.assert_close(res, ref, atol=1e-5, rtol=1e-5)

@settings(max_examples=25, deadline=None, derandomize=True)
@given(img_and_kernel())
def test_convolve_is_flipped_conv2d(ik):
    img, k = ik
    ref = F.conv2d(img[None, None], k.flip(0, 1)[None, None])[0, 0]
    torch.testing.assert_close(convolve(img, k), ref, atol=1e-5, rtol=1e-5)

@settings(max_examples=25, deadline=None, derandomize=True)
@given(img_and_kernel(), st.data())
def test_apply_kernel_window_check(ik, data):
    "Every centre either gives the value at that position of the map, or raises a ValueError naming it"
    img, k = ik
    (h, w), (kh, kw) = img.shape, k.shape
    row, col = data.draw(st.integers(-2, h+1)), data.draw(st.integers(-2, w+1))
    i, j = row - kh//2, col - kw//2
    if 0 <= i <= h-kh and 0 <= j <= w-kw:
        torch.testing.assert_close(apply_kernel(img, row, col, k), conv_loop(img, k)[i, j])
    else:
        try: apply_kernel(img, row, col, k)
        except ValueError as e: assert f"row={row}, col={col}" in str(e)
        else: raise AssertionError(f"no error for row={row}, col={col}, img {(h, w)}, kernel {(kh, kw)}")

@settings(max_examples=10, deadline=None, derandomize=True)
@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 3), st.integers(0, 2**31-1))
def test_conv_equations_numerically(h, w, ks, seed):
    "The symbolic outputs, evaluated at random numbers, equal F.conv2d with a bias"
    h, ks = h+ks-1, min(ks, w)
    assume(h*w <= 15 and (h-ks+1)*(w-ks+1) <= 11)  # letters A..O for pixels, P..Z for outputs
    img, ker, b, out = conv_symbols(h, w, ks)
    eqs = conv_equations(img, ker, b)
    g = torch.Generator().manual_seed(seed)
    x, k, bias = torch.randn(h, w, generator=g), torch.randn(ks, ks, generator=g), torch.randn(1, generator=g)
    f = sympy.lambdify([list(img), list(ker), b], eqs)
    res = torch.tensor(f(x.flatten().tolist(), k.flatten().tolist(), bias.item()), dtype=torch.float32)
    torch.testing.assert_close(res, F.conv2d(x[None, None], k[None, None], bias=bias)[0, 0], atol=1e-5, rtol=1e-5)


# --- Issue 16 §5: empty kernels and images are refused, and each public function checks once, where the user calls in.
# (Imports inside the tests, so the older tests above still run against a version without `corr2d`.)
import pytest
import miniconv.kernels as K

EMPTY = [((5, 5), (0, 3), r'kernel must not be empty, got shape \(0, 3\)'),
         ((5, 5), (3, 0), r'kernel must not be empty, got shape \(3, 0\)'),
         ((0, 5), (1, 1), r'img must not be empty, got shape \(0, 5\)'),
         ((4, 0), (1, 1), r'img must not be empty, got shape \(4, 0\)'),
         ((0, 0), (0, 0), 'must not be empty')]

@pytest.mark.parametrize('fn', ['conv_loop', 'corr2d', 'convolve'])
@pytest.mark.parametrize('img_shape,k_shape,msg', EMPTY)
def test_empty_inputs_refused(fn, img_shape, k_shape, msg):
    "conv_loop(img, torch.ones(0, 3)) once returned a 29x26 map, and convolve the int 0"
    with pytest.raises(ValueError, match=msg): getattr(K, fn)(torch.ones(img_shape), torch.ones(k_shape))

@pytest.mark.parametrize('img_shape,k_shape,msg', EMPTY)
def test_apply_kernel_empty_refused(img_shape, k_shape, msg):
    with pytest.raises(ValueError, match=msg): K.apply_kernel(torch.ones(img_shape), 0, 0, torch.ones(k_shape))

@pytest.mark.parametrize('call', [lambda: K.conv_loop(torch.rand(6, 7), torch.rand(3, 2)),
                                  lambda: K.corr2d(torch.rand(6, 7), torch.rand(3, 2)),
                                  lambda: K.convolve(torch.rand(6, 7), torch.rand(3, 2)),
                                  lambda: K.apply_kernel(torch.rand(6, 7), 3, 3, torch.rand(3, 2))])
def test_checks_once(call, monkeypatch):
    "check_fits runs once per call, not once per window (conv_loop used to re-check in apply_kernel at all 30 positions)"
    calls, real = [], K.check_fits
    monkeypatch.setattr(K, 'check_fits', lambda *a: calls.append(a) or real(*a))
    call()
    assert len(calls) == 1

@pytest.mark.parametrize('row,col,name', [(2.5, 3, 'row=2.5'), (3, '3', "col='3'"), (None, 3, 'row=None')])
def test_apply_kernel_centre_must_be_an_integer(row, col, name):
    with pytest.raises(ValueError, match=name): K.apply_kernel(torch.rand(6, 7), row, col, torch.rand(3, 3))

@pytest.mark.parametrize('ker', [sympy.zeros(0, 0), sympy.zeros(0, 2), sympy.zeros(2, 0)])
def test_conv_equations_refuses_empty_kernels(ker):
    "An empty kernel once gave a matrix of bare biases, larger than the image"
    img, _, b, _ = conv_symbols()
    with pytest.raises(ValueError, match='must not be empty'): conv_equations(img, ker, b)

@settings(max_examples=25, deadline=None, derandomize=True)
@given(img_and_kernel())
def test_corr2d_matches_conv_loop(ik):
    img, k = ik
    torch.testing.assert_close(K.corr2d(img, k), conv_loop(img, k), atol=1e-5, rtol=1e-5)
    # the unchecked core runs over a stack of images, as the colour chapter uses it
    torch.testing.assert_close(K.corr2d_planes(torch.stack([img, -img]), k)[1], -K.corr2d(img, k), atol=1e-5, rtol=1e-5)
