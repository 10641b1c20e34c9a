"""Initial estimates (soft masks, mixture phase).

The per-TF-point maths lives inline in _mask.pxd so the statistics pass (_stats.pyx) can
fuse it with its sums; the write pass for these estimators is _filter.filter_kernel.
This module only exposes the masks' constants.
"""

SLOPE = 15.0  # upstream's logit slope for softmask(logit=...)
