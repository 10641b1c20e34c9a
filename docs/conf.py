"""Sphinx configuration of norbert's documentation.

Build (from the repository root, after installing the package with its ``docs`` extra)::

    pip install ".[docs]" && sphinx-build -W -b html docs docs/_build/html

autodoc imports the *installed* ``norbert``; the C API page includes the ``.pxd`` files
from ``src/_core``; the figures are committed PNGs made by ``benchmarks/make_figures.py``
(the build never runs a benchmark). Optional dependencies the documented modules import
(dask, soundfile, ...) are mocked when they are missing, so ``[docs]`` alone is enough.
"""

import importlib.util
import os
import re
import shlex

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

import norbert

project = "norbert"
author = "the norbert contributors"
copyright = "the norbert contributors; API and algorithms after norbert 0.2.1 (MIT)"
release = norbert.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
]

exclude_patterns = ["_build", "**.inc"]
templates_path = []
html_static_path = ["_static"]

# -- autodoc / numpydoc --------------------------------------------------------------

autodoc_default_options = {"members": False}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc sections say the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

_OPTIONAL = ["dask", "distributed", "soundfile", "tqdm", "matplotlib", "fast_bss_eval"]
autodoc_mock_imports = [m for m in _OPTIONAL if importlib.util.find_spec(m) is None]

# -- HTML ----------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"norbert {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "icon_links": [
        {
            "name": "upstream norbert 0.2.1",
            "url": "https://github.com/sigsep/norbert",
            "icon": "fa-brands fa-github",
        }
    ],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
html_show_sourcelink = False


# -- ``.. norbert-help:: refine``: the CLI's --help text, from its own parser ----------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class NorbertHelp(SphinxDirective):
    """Insert ``norbert [COMMAND] --help`` as a literal block (argparse's own text)."""

    optional_arguments = 1

    def run(self):
        import argparse

        from norbert.cli import build_parser

        parser = build_parser()
        if self.arguments:
            (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            parser = sub.choices[self.arguments[0]]
        columns = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "72"  # argparse wraps at this width: fits the page
        try:
            text = _ANSI.sub("", parser.format_help()).rstrip()
        finally:
            if columns is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = columns
        command = shlex.join(["norbert", *self.arguments, "--help"])
        block = nodes.literal_block(text, f"$ {command}\n{text}")
        block["language"] = "text"
        return [block]


# -- every public name is documented ---------------------------------------------------

PUBLIC_MODULES = ["norbert", "norbert.contrib", "norbert.cli", "norbert.dask"]


def check_public_names(app, env):
    """Warn (an error under -W) about a name in a public module's __all__ that no page
    documents, so a new function cannot ship without its reference entry."""
    import importlib

    from sphinx.ext.autodoc.mock import mock
    from sphinx.util import logging

    logger = logging.getLogger("norbert.docs")
    documented = set(env.get_domain("py").objects)
    with mock(app.config.autodoc_mock_imports):
        for module_name in PUBLIC_MODULES:
            module = importlib.import_module(module_name)
            for name in getattr(module, "__all__", []):
                obj = getattr(module, name)
                home = getattr(obj, "__module__", None) or module_name
                candidates = {f"{module_name}.{name}", f"{home}.{name}"}
                if not candidates & documented:
                    logger.warning(f"{module_name}.{name} is public but not documented")


def setup(app):
    app.add_directive("norbert-help", NorbertHelp)
    app.connect("env-check-consistency", check_public_names)
    return {"parallel_read_safe": True}
