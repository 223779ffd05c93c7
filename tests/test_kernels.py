"Property tests for miniconv.kernels over many random shapes (too many configurations for the notebook)."
import sympy, torch
import torch.nn.functional as F
import pytest
from hypothesis import assume, given, settings, strategies as st
import miniconv.kernels as K
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


@settings(max_examples=25, deadline=None, derandomize=True)
@given(img_and_kernel())
def test_corr2d_matches_conv_loop(ik):
    img, k = ik
    torch.testing.assert_close(K.corr2d(img, k), conv_loop(img, k), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('call', [lambda: K.conv_loop(torch.rand(6, 7), torch.rand(3, 2)),
                                  lambda: K.corr2d(torch.rand(6, 7), torch.rand(3, 2)),
                                  lambda: K.convolve(torch.rand(6, 7), torch.rand(3, 2)),
                                  lambda: K.apply_kernel(torch.rand(6, 7), 3, 3, torch.rand(3, 2))],
                         ids=['conv_loop', 'corr2d', 'convolve', 'apply_kernel'])
def test_checks_once(call, monkeypatch):
    "check_fits runs once per call, not once per window"
    calls, real = [], K.check_fits
    monkeypatch.setattr(K, 'check_fits', lambda *a, **k: calls.append(a) or real(*a, **k))
    call()
    assert len(calls) == 1

@settings(max_examples=25, deadline=None, derandomize=True)
@given(img_and_kernel(), st.integers(0, 3), st.integers(0, 3))
def test_corr2d_stacks_broadcast(ik, ni, nk):
    "A stack of images and a stack of kernels give every pairing that broadcasting makes, each what conv_loop gives"
    img, k = ik
    imgs = (img * torch.arange(1., ni+1)[:, None, None])[:, None]   # [ni, 1, h, w]
    ks = k - torch.arange(float(nk))[:, None, None]                  # [nk, kh, kw]
    res = K.corr2d(imgs, ks)
    assert res.shape == (ni, nk, img.shape[0]-k.shape[0]+1, img.shape[1]-k.shape[1]+1)
    for i in range(ni):
        for j in range(nk): torch.testing.assert_close(res[i, j], conv_loop(imgs[i, 0], ks[j]), atol=1e-4, rtol=1e-4)
    if ni: torch.testing.assert_close(K.convolve(imgs, k), K.corr2d(imgs, k.flip(0, 1)))
