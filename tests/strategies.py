"Hypothesis strategies shared by the property tests of conv2d, pooling and transposed convolutions."
from hypothesis import strategies as st

def pair(lo, hi): # Smallest and largest value of each half
    "A strategy for `(a, b)` pairs of ints in [lo, hi], e.g. a kernel size per axis"
    return st.tuples(st.integers(lo, hi), st.integers(lo, hi))

def as_arg(t): # A pair from `pair`
    "An equal pair as one int, so that both forms of an int-or-pair argument get tested"
    return t[0] if t[0] == t[1] else t
