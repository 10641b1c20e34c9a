"""Build the downstream example against the installed norbert: python setup.py build_ext -i

This is all a downstream project needs: norbert.get_include() on Cython's include path
(like numpy.get_include() for numpy's headers); no numpy headers, no OpenMP flags (the
kernels run their threads inside norbert's own extension modules).
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

import norbert

setup(
    name="norbert-cython-consumer",
    ext_modules=cythonize(
        [Extension("consumer", ["consumer.pyx"])],
        include_path=[norbert.get_include()],
        compiler_directives={"language_level": 3},
    ),
    zip_safe=False,
)
