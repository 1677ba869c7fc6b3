"""The paper packages, importable as ``windowlab.projects.<paper>``.

The repository keeps one folder per paper in its top-level ``projects/`` folder. A wheel
installs those folders here (``windowlab/projects/<paper>``, see setup.py), so the installed
name can never collide with anybody's own ``projects`` package. In a checkout (editable install,
or ``PYTHONPATH`` pointing at it) this package's search path is extended to the checkout's
``projects/`` folder instead, so the same import works without copying anything.
"""
import os
import pkgutil

_CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_CHECKOUT_PROJECTS = os.path.join(_CHECKOUT, 'projects')
if (os.path.isfile(os.path.join(_CHECKOUT, 'setup.py')) and os.path.isdir(_CHECKOUT_PROJECTS)
        and _CHECKOUT_PROJECTS not in __path__):
    __path__.append(_CHECKOUT_PROJECTS)


def names():
    """The paper packages that are present, sorted: ``['biformer', 'shift_equivariant', ...]``."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)
