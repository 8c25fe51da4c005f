"""The active-domain API for multi-domain layers (e.g. :class:`DWSConv`).

A multi-domain model keeps a few parameters per visual domain (DWSConv: one
depthwise kernel and one norm per domain) and shares the rest. Which domain
the layers use is a property of the model, set before each forward::

    set_active_domain(model, 2)                       # all layers, checked
    idx = domain_from_data_samples(data_samples)      # from the batch's
    set_domain_from_data_samples(model, data_samples) # metainfo 'domain_idx'
    with using_domain(model, 0): ...                  # temporarily
    count_domain_parameters(model)                    # what one domain costs

A data sample names its domain in its metainfo, as ``domain_idx`` (an int)
or ``domain`` (an int, or a name looked up in ``domain_names``); reading it:
:mod:`.domain_samples`.

Trainability follows the active domain. A parameter of a domain the forward
does not use (DWSConv without the gate: the other domains' depthwise kernels
and norms; DomainBN: the other domains' BNs) can never receive a gradient,
and ``DistributedDataParallel`` with its default
``find_unused_parameters=False`` then stops on the next step with "Expected
to have finished reduction in the prior iteration". So every layer sets
``requires_grad=False`` on the parameters of the domains it leaves out when a
domain is made active (at build time too), and gives it back to those it
froze when their domain becomes active again. A parameter someone else froze
(``frozen_stages``, :func:`freeze_parameters`, ``train_domain_only``) stays
frozen. With the gate (soft sharing) every domain's depthwise conv takes part
in each forward, so none of them is frozen.

DDP records which parameters require grad when it wraps the model: choose the
domain before wrapping (one run per domain, as the shipped configs do), and
wrap again after switching (:func:`set_active_domain` on a wrapped model
leaves the wrapper reducing the old set).
"""
import contextlib
from abc import ABCMeta, abstractmethod
from typing import Any, FrozenSet, Iterator, List

from torch import nn

from mmconvplug.utils.arg_checks import check_int


class MultiDomainMixin(metaclass=ABCMeta):
    """A layer with ``num_domains`` sets of domain-specific parameters.

    Subclasses set ``self.num_domains`` and ``self._active_domain`` (0) in
    ``__init__``, keep their per-domain parts in ``nn.ModuleList`` children
    with one entry per domain, implement :meth:`params_per_domain`, and call
    :meth:`sync_domain_trainability` at the end of ``__init__``. A layer whose
    forward uses more than the active domain overrides
    :meth:`domains_in_forward`.
    """

    num_domains: int
    _active_domain: int = 0

    @property
    def active_domain(self) -> int:
        """Index of the domain whose parameters the forward uses."""
        return self._active_domain

    @active_domain.setter
    def active_domain(self, index: int) -> None:
        self._active_domain = check_domain_index(index, self.num_domains,
                                                 type(self).__name__)
        self.sync_domain_trainability()

    @abstractmethod
    def params_per_domain(self) -> int:
        """Number of parameters one more domain adds to this layer."""

    def domains_in_forward(self) -> FrozenSet[int]:
        """The domains whose parameters a forward uses (and so can train):
        the active one."""
        return frozenset((self.active_domain, ))

    def named_domain_parameters(self, domain: int) -> List[tuple]:
        """``(name, parameter)`` of ``domain``'s own parameters, names
        relative to this layer (e.g. ``'depthwise.1.weight'``): entry
        ``domain`` of every ``nn.ModuleList`` child with one entry per
        domain.

        Raises:
            IndexError: ``domain`` is out of range.
        """
        check_domain_index(domain, self.num_domains, type(self).__name__)
        found = []
        for child_name, child in self.named_children():
            if isinstance(child, nn.ModuleList) and len(
                    child) == self.num_domains:
                prefix = f'{child_name}.{domain}.'
                found.extend((prefix + name, param) for name, param in
                             child[domain].named_parameters())
        return found

    def sync_domain_trainability(self) -> None:
        """Freeze the parameters of the domains the forward leaves out and
        unfreeze those this method froze earlier whose domain is used again
        (see the module docstring). Others' freezes are kept."""
        frozen = self.__dict__.setdefault('_inactive_frozen', set())
        used = self.domains_in_forward()
        for domain in range(self.num_domains):
            for name, param in self.named_domain_parameters(domain):
                if domain in used:
                    if name in frozen:
                        param.requires_grad_(True)
                        frozen.discard(name)
                elif param.requires_grad:
                    param.requires_grad_(False)
                    frozen.add(name)

    def forget_domain_freezes(self) -> None:
        """Make the current ``requires_grad`` flags the owner's choice: a
        domain made active later does not unfreeze them."""
        self.__dict__['_inactive_frozen'] = set()


def check_domain_index(index: Any, num_domains: int, owner: str) -> int:
    """Return ``index`` as an int in ``[0, num_domains)`` or raise.

    Raises:
        ValueError: ``index`` is not an int.
        IndexError: ``index`` is outside ``[0, num_domains)``.
    """
    index = check_int(index, 'the domain index', owner)
    if not 0 <= index < num_domains:
        raise IndexError(
            f'{owner}: domain index {index} is out of range; this model has '
            f'num_domains={num_domains}, so use 0..{num_domains - 1} (build '
            'the layers with a larger num_domains to add a domain).')
    return index


def multi_domain_layers(model: nn.Module) -> List[MultiDomainMixin]:
    """Every multi-domain layer of ``model`` (``model`` itself included)."""
    return [m for m in model.modules() if isinstance(m, MultiDomainMixin)]


def _layers_or_raise(model: nn.Module) -> List[MultiDomainMixin]:
    layers = multi_domain_layers(model)
    if not layers:
        raise ValueError(
            f'{type(model).__name__} has no multi-domain layer (such as '
            'DWSConv); build it with conv_cfg=dict(type="DWSConv", '
            'num_domains=N) to use the domain API.')
    return layers


def set_active_domain(model: nn.Module, index: int) -> int:
    """Make every multi-domain layer of ``model`` use domain ``index``.

    The index is checked against every layer first, so an invalid index
    leaves the model unchanged. The parameters of the domains left out are
    frozen and those of ``index`` that were frozen for that reason are
    trainable again (module docstring). Returns the number of layers
    switched.

    Raises:
        ValueError: ``model`` has no multi-domain layer, or ``index`` is not
            an int.
        IndexError: ``index`` is out of range for some layer.
    """
    layers = _layers_or_raise(model)
    for layer in layers:
        check_domain_index(index, layer.num_domains, type(layer).__name__)
    for layer in layers:
        layer.active_domain = index
    return len(layers)


def get_active_domain(model: nn.Module) -> int:
    """The domain every multi-domain layer of ``model`` uses.

    Raises:
        ValueError: no multi-domain layer, or layers disagree (some were set
            one by one); call :func:`set_active_domain` to align them.
    """
    active = {layer.active_domain for layer in _layers_or_raise(model)}
    if len(active) != 1:
        raise ValueError(
            f'The multi-domain layers of {type(model).__name__} use '
            f'different domains {sorted(active)}; call '
            'set_active_domain(model, index) to give them one.')
    return active.pop()


@contextlib.contextmanager
def using_domain(model: nn.Module, index: int) -> Iterator[nn.Module]:
    """Context manager: use domain ``index`` inside, restore on exit."""
    layers = _layers_or_raise(model)
    previous = [layer.active_domain for layer in layers]
    set_active_domain(model, index)
    try:
        yield model
    finally:
        for layer, old in zip(layers, previous):
            layer.active_domain = old


def freeze_parameters(module: nn.Module) -> None:
    """``requires_grad=False`` on every parameter of ``module``, kept when a
    domain is made active later (``frozen_stages``, a frozen task)."""
    for param in module.parameters():
        param.requires_grad_(False)
    for layer in multi_domain_layers(module):
        layer.forget_domain_freezes()


def sync_domain_trainability(model: nn.Module) -> int:
    """Re-apply the active domains' trainability to every multi-domain layer
    of ``model`` after something set ``requires_grad`` wholesale (mmcv's
    ``build_norm_layer`` does, for a ``DomainBN`` built from ``norm_cfg``).
    Returns the number of layers."""
    layers = multi_domain_layers(model)
    for layer in layers:
        layer.sync_domain_trainability()
    return len(layers)


def count_domain_parameters(model: nn.Module) -> int:
    """Parameters one more domain adds to ``model`` (all its layers).

    The sum of ``params_per_domain()`` over its multi-domain layers: what it
    costs to extend the model to a new domain while sharing the rest.
    """
    return sum(layer.params_per_domain()
               for layer in _layers_or_raise(model))
