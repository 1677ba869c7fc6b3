"""Norm and activation layers from OpenMMLab config dicts, in plain torch.

The backbones and heads take mmcv's config dicts (``norm_cfg=dict(type='SyncBN',
requires_grad=True)``, ``act_cfg=dict(type='ReLU')``); these builders make the same torch modules
as mmcv and name them as mmcv does (:func:`build_norm_layer` returns ``('bn', layer)``,
:class:`ConvNormAct` holds ``conv``, ``bn``/``gn``/... and ``activate`` like mmcv's
``ConvModule``), so state-dict keys do not depend on whether mmcv is installed. Types outside the
tables below are built by mmcv when it is installed; otherwise the error names the type.
"""
from importlib import import_module

from mmengine.model.weight_init import constant_init, kaiming_init
from mmengine.utils.dl_utils.parrots_wrapper import SyncBatchNorm  # torch's, as mmcv's SyncBN
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of ``[N, C, H, W]`` maps (mmpretrain/mmdet's ``LN2d``)."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


# type -> (class, mmcv's abbreviation: the module's name in a ConvModule)
NORM_LAYERS = {
    'BN': (nn.BatchNorm2d, 'bn'), 'BN1d': (nn.BatchNorm1d, 'bn'), 'BN2d': (nn.BatchNorm2d, 'bn'),
    'BN3d': (nn.BatchNorm3d, 'bn'), 'SyncBN': (SyncBatchNorm, 'bn'),
    'GN': (nn.GroupNorm, 'gn'), 'LN': (nn.LayerNorm, 'ln'), 'LN2d': (LayerNorm2d, 'ln'),
    'IN': (nn.InstanceNorm2d, 'in'),
}
ACTIVATIONS = {cls.__name__: cls for cls in (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU,
                                             nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh)}
# Activations that a ConvNormAct makes in-place unless the config says otherwise (as mmcv).
INPLACE_ACTIVATIONS = ('ReLU', 'ReLU6', 'LeakyReLU', 'ELU', 'SiLU')


def _mmcv_builder(name, layer_type, known):
    """mmcv's ``mmcv.cnn.<name>`` for a type windowlab does not build itself."""
    try:
        return getattr(import_module('mmcv.cnn'), name)
    except ModuleNotFoundError as e:
        if not (e.name or '').startswith('mmcv'):
            raise
        raise KeyError(f'{layer_type!r} is not one of the types windowlab builds itself '
                       f'({", ".join(known)}) and mmcv, which would build it, is not '
                       'installed') from None


def build_norm_layer(cfg, num_features, postfix=''):
    """``(name, layer)`` for a norm config, as ``mmcv.cnn.build_norm_layer``.

    Args:
        cfg (dict): ``type`` (a key of :data:`NORM_LAYERS`, else built by mmcv), optionally
            ``requires_grad`` (default True) and the layer's own arguments (``eps``,
            ``num_groups`` for ``GN``, ...).
        num_features (int): channels ``C``.
        postfix (int | str): appended to the name (``'bn1'``).

    Returns:
        tuple[str, nn.Module]: mmcv's abbreviation + postfix, and the layer.
    """
    cfg = dict(cfg)
    layer_type = cfg.pop('type')
    if layer_type not in NORM_LAYERS:
        return _mmcv_builder('build_norm_layer', layer_type, NORM_LAYERS)(
            dict(cfg, type=layer_type), num_features, postfix)
    layer_cls, abbr = NORM_LAYERS[layer_type]
    requires_grad = cfg.pop('requires_grad', True)
    if layer_type == 'GN':
        layer = layer_cls(num_channels=num_features, **cfg)
    else:
        layer = layer_cls(num_features, **cfg)
    for param in layer.parameters():
        param.requires_grad = requires_grad
    return abbr + str(postfix), layer


def build_activation_layer(cfg):
    """An activation from a config (``dict(type='GELU')``), as
    ``mmcv.cnn.build_activation_layer``; types outside :data:`ACTIVATIONS` via mmcv."""
    cfg = dict(cfg)
    layer_type = cfg.pop('type')
    if layer_type not in ACTIVATIONS:
        return _mmcv_builder('build_activation_layer', layer_type, ACTIVATIONS)(
            dict(cfg, type=layer_type))
    return ACTIVATIONS[layer_type](**cfg)


class ConvNormAct(nn.Module):
    """``Conv2d -> norm -> activation`` with the module names and init of mmcv's ``ConvModule``.

    The conv has a bias only without a norm. Modules: ``conv``, the norm under its mmcv name
    (``bn``, ``gn``, ...; also reachable as :attr:`norm`) and ``activate``. Weights start as in
    mmcv: Kaiming-normal conv (fan-out), unit norm weights, zero biases.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): conv kernel side (stride 1, no padding).
        norm_cfg (dict, optional): norm config (:func:`build_norm_layer`); None: no norm.
        act_cfg (dict, optional): activation config (:func:`build_activation_layer`); None: no
            activation. ReLU-like activations are in-place unless it sets ``inplace``.

    Shapes:
        ``[B, in_channels, H, W] -> [B, out_channels, H - k + 1, W - k + 1]``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, norm_cfg=None,
                 act_cfg=dict(type='ReLU')):
        super().__init__()
        self.with_norm = norm_cfg is not None
        self.with_activation = act_cfg is not None
        self.act_cfg = act_cfg
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, bias=not self.with_norm)
        self.norm_name = None
        if self.with_norm:
            self.norm_name, norm = build_norm_layer(norm_cfg, out_channels)
            self.add_module(self.norm_name, norm)
        if self.with_activation:
            act_cfg = dict(act_cfg)
            if act_cfg['type'] in INPLACE_ACTIVATIONS:
                act_cfg.setdefault('inplace', True)
            self.activate = build_activation_layer(act_cfg)
        self.init_weights()

    @property
    def norm(self):
        return getattr(self, self.norm_name) if self.norm_name else None

    def init_weights(self):
        leaky = self.with_activation and self.act_cfg['type'] == 'LeakyReLU'
        kaiming_init(self.conv, a=self.act_cfg.get('negative_slope', 0.01) if leaky else 0,
                     nonlinearity='leaky_relu' if leaky else 'relu')
        if self.with_norm:
            constant_init(self.norm, 1, bias=0)

    def norm_act(self, x):
        """What follows the conv: norm, then activation."""
        if self.with_norm:
            x = self.norm(x)
        return self.activate(x) if self.with_activation else x

    def forward(self, x):
        return self.norm_act(self.conv(x))
