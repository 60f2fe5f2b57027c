"""scikit-learn's estimator conventions without importing scikit-learn at start-up.

Every model of :mod:`speakerid.models` keeps its hyper-parameters in ``__init__`` (stored unchanged under the
same names) and its learned state in attributes ending in ``_``. :class:`BaseEstimator` gives them
``get_params``/``set_params`` and a readable ``repr`` from that convention, the same contract as
:class:`sklearn.base.BaseEstimator` (so :func:`sklearn.base.clone` works on them), without the 1-2 s it takes to
import scikit-learn: ``speakerid verify`` never needs it.
"""

from __future__ import annotations

import inspect

from speakerid.exceptions import ParameterError


class BaseEstimator:
    """Base class of the package's estimators: parameters from the ``__init__`` signature.

    Examples
    --------
    >>> class Model(BaseEstimator):
    ...     def __init__(self, n_components=4, relevance_factor=16.0):
    ...         self.n_components = n_components
    ...         self.relevance_factor = relevance_factor
    >>> Model(n_components=8)
    Model(n_components=8)
    >>> Model().set_params(relevance_factor=10.0).get_params()
    {'n_components': 4, 'relevance_factor': 10.0}
    """

    @classmethod
    def _get_param_names(cls) -> list[str]:
        init = cls.__init__
        if init is object.__init__:
            return []
        params = inspect.signature(init).parameters.values()
        for p in params:
            if p.kind == p.VAR_POSITIONAL:
                raise TypeError(f"{cls.__name__}.__init__ takes *args: estimators name every parameter")
        return sorted(p.name for p in params if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict:
        """The hyper-parameters as ``{name: value}``; with ``deep``, also ``name__sub`` of nested estimators."""
        out = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params):
        """Set hyper-parameters by name (``name__sub`` reaches nested estimators); returns ``self``.

        Raises
        ------
        ParameterError
            For a name that is not a parameter of this estimator.
        """
        valid = self._get_param_names()
        nested: dict[str, dict] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ParameterError(f"{type(self).__name__} has no parameter {name!r}; valid: {', '.join(valid)}")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = []
        for name in self._get_param_names():
            value = getattr(self, name, None)
            default = defaults.get(name, inspect.Parameter.empty)
            try:
                same = value is default or bool(value == default)
            except Exception:  # arrays and other values without a plain truth value
                same = False
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"
