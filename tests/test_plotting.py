"The plotting helpers as the API docs show them (no forwarded matplotlib keywords, no `NoneType`), and 2x figures with alt text."
import base64

import matplotlib.pyplot as plt
import pytest
import torch
from nbdev.showdoc import show_doc

from miniconv import plotting as P

MPL_KEYWORDS = ['cmap', 'vmin', 'interpolation', 'resample', 'sharex', 'squeeze', 'gridspec_kw', 'subplot_kw', 'width_ratios']

def _signature_md(f):
    "The signature block of `f` as nbdev's show_doc renders it for the site"
    md = show_doc(f)._repr_markdown_()
    start = md.index(f'def {f.__name__}(')
    return md[start:md.index('\n)', start)]

@pytest.mark.parametrize('name', ['show_image', 'subplots', 'get_grid', 'show_images', 'show_kernel', 'show_kernels', 'set_alt', 'alt_text'])
def test_api_docs_list_only_our_parameters(name):
    sig = _signature_md(getattr(P, name))
    listed = [k for k in MPL_KEYWORDS if f'\n    {k}:' in sig or f' {k}:' in sig or f' {k}=' in sig]
    assert not listed, listed
    assert 'NoneType' not in sig

def test_delegated_parameters_keep_their_notes():
    "fc.delegates lists get_grid's and subplots' own keywords on show_images, each with its note"
    sig = _signature_md(P.show_images)
    for line in ['title:str | None=None, # Title over the whole figure', "imsize:float=3, # Size of each image, in inches"]:
        assert line in sig

def test_forwarded_keywords_still_reach_matplotlib():
    fig, axs = P.get_grid(3, imsize=1, sharey=True, title='t')
    assert axs[0].get_shared_y_axes().joined(axs[0], axs[2]) and fig.get_suptitle() == 't'
    axs = P.show_images([torch.rand(4, 4)]*2, title='two', imsize=1, layout='constrained')
    assert axs[0].figure.get_suptitle() == 'two' and axs[0].figure.get_layout_engine() is not None
    ax = P.show_image(torch.rand(4, 4), cmap='viridis', vmin=0, vmax=2)
    assert ax.get_images()[0].get_cmap().name == 'viridis' and ax.get_images()[0].norm.vmax == 2
    plt.close('all')

def test_suptitle_is_not_taken_twice():
    "get_grid names it `title`; passing `suptitle` as well is refused by Python, not silently doubled"
    with pytest.raises(TypeError): P.get_grid(2, suptitle='x')
    plt.close('all')

def test_retina_png_is_2x_with_alt():
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1])
    P.set_alt(ax, 'A line.')
    data, md = P.retina_png(fig)
    png = base64.b64decode(data)
    w, h = int.from_bytes(png[16:20], 'big'), int.from_bytes(png[20:24], 'big')
    assert (w//2, h//2) == (md['width'], md['height']) and md['alt'] == 'A line.'
    plt.close('all')

def test_kernels_on_a_scale_centred_on_zero():
    axs = P.show_kernels([torch.tensor([[-1., 0, 3]]), torch.tensor([[0.5, -0.5]])], imsize=1)
    for ax in axs:
        im = ax.get_images()[0]
        assert (im.get_cmap().name, im.norm.vmin, im.norm.vmax) == ('RdBu_r', -3, 3)
    assert [t.get_text() for t in axs[0].texts] == ['-1', '0', '3']
    assert [t.get_text() for t in P.show_kernel(-torch.zeros(1, 2)).texts] == ['0', '0']   # no '-0'
    P.show_kernels([torch.ones(2, 2, requires_grad=True)], imsize=1)                      # a learned weight draws as it is
    plt.close('all')
