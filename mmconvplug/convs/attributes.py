"""The ``nn.Conv2d`` geometry a conv variant stores (what ConvModule reads)."""
from typing import Tuple, Union

from torch.nn.modules.utils import _pair

from mmconvplug.utils.arg_checks import check_positive_int

IntOrPair = Union[int, Tuple[int, int]]

#: Attributes that ``ConvModule`` and mmdet/mmseg layers read off a conv.
CONV_ATTRIBUTES = ('in_channels', 'out_channels', 'kernel_size', 'stride',
                   'padding', 'dilation', 'groups', 'transposed',
                   'output_padding')

#: ``nn.Conv2d``'s leading constructor arguments, in order.
CONV_ARGUMENTS = ('in_channels', 'out_channels', 'kernel_size', 'stride',
                  'padding', 'dilation', 'groups', 'bias')


class ConvAttributesMixin:
    """Stores the ``nn.Conv2d`` geometry under the names ConvModule reads."""

    def _set_conv_attributes(self,
                             in_channels: int,
                             out_channels: int,
                             kernel_size: IntOrPair,
                             stride: IntOrPair = 1,
                             padding: IntOrPair = 0,
                             dilation: IntOrPair = 1,
                             groups: int = 1) -> None:
        owner = type(self).__name__
        for name, value in (('in_channels', in_channels),
                            ('out_channels', out_channels),
                            ('groups', groups)):
            check_positive_int(value, name, owner)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f'{owner}: groups={groups} must divide both '
                f'in_channels={in_channels} and out_channels={out_channels}.')
        if isinstance(padding, str):
            raise ValueError(
                f'{owner}: string padding {padding!r} is not '
                'supported; pass the padding as int or (int, int).')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.transposed = False
        self.output_padding = (0, 0)

    def extra_repr(self) -> str:
        s = (f'{self.in_channels}, {self.out_channels}, '
             f'kernel_size={self.kernel_size}, stride={self.stride}')
        if self.padding != (0, 0):
            s += f', padding={self.padding}'
        if self.dilation != (1, 1):
            s += f', dilation={self.dilation}'
        if self.groups != 1:
            s += f', groups={self.groups}'
        return s
