"""Conv variants, one per file, registered in mmengine's root ``MODELS``.

What a variant provides: :mod:`.base` (the contract); the query everything
else uses (:func:`conv_variants`, :func:`is_conv_variant`): :mod:`.query`.
A new variant is one file, imported here.
"""
from ..registry import set_conv_variant_query
from .base import (
    CONV_ATTRIBUTES,
    ConvVariantContractError,
    ConvVariantMixin,
    FoldableConvMixin,
    FoldUnsupportedError,
    FromConvUnsupportedError,
    NonFoldableConvMixin,
)
from .cond_conv import CondConv
from .do_conv import DOConv, compose_do_kernel
from .domain import (
    MultiDomainMixin,
    count_domain_parameters,
    get_active_domain,
    set_active_domain,
    using_domain,
)
from .domain_samples import (
    domain_from_data_samples,
    set_domain_from_data_samples,
)
from .dws_conv import DWSConv
from .kernel_cache import KernelCache
from .query import conv_variants, is_conv_variant, is_foldable
from .ref_conv import RefConv, refocus_kernel
from .sc_conv import SCConv

# The layers between the registries and the variants (compat/) ask the
# contract through the registry: installed wherever convs is imported.
set_conv_variant_query(is_conv_variant)

__all__ = ['CONV_ATTRIBUTES', 'FoldableConvMixin', 'is_foldable',
           'FoldUnsupportedError', 'NonFoldableConvMixin', 'CondConv',
           'SCConv',
           'DOConv', 'RefConv', 'compose_do_kernel', 'refocus_kernel',
           'KernelCache', 'ConvVariantContractError', 'ConvVariantMixin',
           'FromConvUnsupportedError', 'conv_variants', 'is_conv_variant',
           'DWSConv', 'MultiDomainMixin', 'set_active_domain',
           'get_active_domain', 'using_domain', 'domain_from_data_samples',
           'set_domain_from_data_samples', 'count_domain_parameters']
