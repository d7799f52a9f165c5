"""Op families: forward and derivative side by side, one file per family."""
from . import (  # noqa: F401  (importing a family attaches its Tensor methods)
    activation,
    conv,
    creation,
    elementwise,
    index,
    inplace,
    linalg,
    loss,
    math_extra,
    norm,
    pool_adaptive,
    reduce,
    shape,
    sparse,
    special,
)

FAMILIES = (elementwise, reduce, shape, index, linalg, conv, pool_adaptive, norm, loss,
            activation, math_extra, special, sparse)
