"Shared pytest set-up: tests never touch the network, and plots never open a window."
import os

import pytest
os.environ['MINICONV_OFFLINE'] = '1'
os.environ.setdefault('MPLBACKEND', 'Agg')


@pytest.fixture(scope='module')
def one_thread():
    "One torch thread for a module of many tiny tensors: much faster than waiting on a busy second thread; restored after"
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='module')
def browser():
    "Headless Chromium with a fresh profile, and a CDP session on its page (one per test module: no state carries over)"
    from cdp import chromium
    with chromium() as cdp: yield cdp
