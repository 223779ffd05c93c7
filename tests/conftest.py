"Shared pytest set-up: tests never touch the network, and plots never open a window."
import os
os.environ['MINICONV_OFFLINE'] = '1'
os.environ.setdefault('MPLBACKEND', 'Agg')
