"""The active domain of a batch, read from its data samples' metainfo.

A data sample names its domain as ``domain_idx`` (an int) or ``domain`` (an
int, or a name looked up in ``domain_names``); a batch comes from one domain
(:mod:`mmconvplug.convs.domain`).
"""
from typing import Any, Optional, Sequence

from torch import nn

from mmconvplug.utils.arg_checks import check_int

from .domain import check_domain_index, set_active_domain

#: Metainfo keys read by :func:`domain_from_data_samples`, in this order.
DOMAIN_METAINFO_KEYS = ('domain_idx', 'domain')


def _metainfo(sample: Any) -> dict:
    if isinstance(sample, dict):
        return sample
    metainfo = getattr(sample, 'metainfo', None)
    if isinstance(metainfo, dict):
        return metainfo
    raise ValueError(
        f'domain_from_data_samples: cannot read metainfo from a '
        f'{type(sample).__name__}; pass mmengine data samples (with '
        '.metainfo) or metainfo dicts.')


def _domain_of(metainfo: dict,
               domain_names: Optional[Sequence[str]]) -> Optional[int]:
    for key in DOMAIN_METAINFO_KEYS:
        if key not in metainfo:
            continue
        value = metainfo[key]
        if isinstance(value, str):
            if domain_names is None:
                raise ValueError(
                    f'domain_from_data_samples: metainfo {key}={value!r} is '
                    'a name; pass domain_names=[...] (the domains in index '
                    'order) to map names to indices, or store domain_idx.')
            if value not in domain_names:
                raise ValueError(
                    f'domain_from_data_samples: domain {value!r} is not in '
                    f'domain_names={list(domain_names)}.')
            return list(domain_names).index(value)
        return check_int(value, f'metainfo {key}', 'domain_from_data_samples',
                         hint='an int index or a domain name')
    return None


def domain_from_data_samples(
        data_samples: Optional[Sequence[Any]],
        domain_names: Optional[Sequence[str]] = None,
        num_domains: Optional[int] = None) -> Optional[int]:
    """The domain index of a batch, read from its samples' metainfo.

    Reads ``domain_idx`` (else ``domain``) of every sample. Returns ``None``
    when no sample names a domain (or there are no samples).

    Args:
        data_samples: mmdet/mmseg data samples or metainfo dicts.
        domain_names: names in index order, for a ``domain`` given by name.
        num_domains: if given, the index is checked against it.

    Raises:
        ValueError: some samples name a domain and others do not, or the
            batch mixes domains (a batch must come from one domain, since
            the active domain is set for the whole model; sample batches per
            domain), or a value cannot be read as a domain.
        IndexError: the index is outside ``[0, num_domains)``.
    """
    if not data_samples:
        return None
    found = [_domain_of(_metainfo(s), domain_names) for s in data_samples]
    named = {d for d in found if d is not None}
    if not named:
        return None
    if len(named) != 1 or None in found:
        shown = ['missing' if d is None else d for d in found]
        raise ValueError(
            f'domain_from_data_samples: one batch must come from one domain, '
            f'got per-sample domains {shown}; build batches from a single '
            'domain (e.g. one dataloader or sampler per domain) and store '
            'domain_idx in every sample\'s metainfo.')
    index = named.pop()
    if num_domains is not None:
        check_domain_index(index, num_domains, 'domain_from_data_samples')
    return index


def set_domain_from_data_samples(
        model: nn.Module,
        data_samples: Optional[Sequence[Any]],
        domain_names: Optional[Sequence[str]] = None) -> Optional[int]:
    """Set ``model``'s active domain from a batch; return it (None: kept)."""
    index = domain_from_data_samples(data_samples, domain_names)
    if index is not None:
        set_active_domain(model, index)
    return index
