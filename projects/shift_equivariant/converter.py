"""Official "Reviving Shift Equivariance in Vision Transformers" checkpoints -> windowlab.

The official checkpoints (willding123/Shift-Equivariant-Vision-Transformers) are
``{'model': state_dict}`` with timm-style keys. The windowlab models are mmpretrain
``ImageClassifier`` s: backbone keys get the ``backbone.`` prefix, the classifier
``head.{weight,bias}`` becomes ``head.fc.{weight,bias}`` (``LinearClsHead``).

Pure functions on state dicts; they do not import the models.
"""
import re

from windowlab.converters.checkpoint import strip_prefix, unwrap_state_dict
from windowlab.converters.swin import convert_swin_classifier


def _classifier(state_dict, rename_backbone_key):
    out = {}
    for key, value in state_dict.items():
        if key.startswith('head.'):
            out['head.fc.' + key[len('head.'):]] = value
        else:
            out['backbone.' + rename_backbone_key(key)] = value
    return out


def convert_polyvit(state_dict):
    """Official ``PolyViT`` -> windowlab ``PolyViT`` + ``LinearClsHead``.

    The backbone keys are kept (``cls_token``, ``patch_embed.{proj,norm}``,
    ``pos_conv.proj``, ``blocks.i.*``, ``norm``); a ``pos_embed`` key would mean a plain ViT
    checkpoint, which does not belong to this model.
    """
    state_dict = unwrap_state_dict(state_dict, keys=('model',))
    if 'pos_embed' in state_dict:
        raise KeyError('this checkpoint has a pos_embed: it is a plain ViT, not a PolyViT '
                       '(PolyViT uses the circular pos_conv instead)')
    if 'pos_conv.proj.weight' not in state_dict:
        raise KeyError('not a PolyViT checkpoint: pos_conv.proj.weight is missing')
    return _classifier(state_dict, lambda k: k)


def convert_polytwins(state_dict):
    """Official ``PolyTwins`` (= timm Twins keys) -> windowlab ``PolyTwins`` + head.

    Renames the PEG ``pos_block.i.proj.0.*`` -> ``pos_convs.i.proj.*``; the rest is kept.
    """
    state_dict = unwrap_state_dict(state_dict, keys=('model',))
    if not any(k.startswith('pos_block.') for k in state_dict):
        raise KeyError('not a (Poly)Twins checkpoint: no pos_block.* keys')
    return _classifier(
        state_dict, lambda k: re.sub(r'^pos_block\.(\d+)\.proj\.0\.', r'pos_convs.\1.proj.', k))


def convert_polyswin(state_dict):
    """Official ``PolySwin`` -> windowlab ``PolySwin`` (``WLSwinTransformer`` keys) + head.

    Swin's renames apply (``layers.i`` -> ``stages.i``, ``relative_position_bias_table`` ->
    ``rel_pos.table``, final ``norm`` -> ``norm3``, index buffers dropped); the PolyPatch
    down-sampling keys ``downsample.{proj,norm}`` keep their names.
    """
    state_dict = unwrap_state_dict(state_dict, keys=('model',))
    if not any('.downsample.proj.' in k for k in state_dict):
        raise KeyError('not a PolySwin checkpoint: no layers.*.downsample.proj.* keys '
                       '(a plain Swin has downsample.reduction)')
    return convert_swin_classifier(state_dict)


CONVERTERS = dict(polyvit=convert_polyvit, polytwins=convert_polytwins, polyswin=convert_polyswin)


def backbone_state_dict(state_dict, convert, windowlab_marker=None):
    """Backbone keys from a windowlab classifier/detector/segmentor checkpoint, from windowlab
    backbone keys (``prefix='backbone.'`` already removed; recognised by ``windowlab_marker``, a
    key prefix only the windowlab layout has), or from an official file converted with
    ``convert``."""
    state_dict = unwrap_state_dict(state_dict, keys=('model',))
    if any(k.startswith('backbone.') for k in state_dict):
        return strip_prefix(state_dict, 'backbone.')
    if windowlab_marker and any(k.startswith(windowlab_marker) for k in state_dict):
        return dict(state_dict)
    return strip_prefix(convert(state_dict), 'backbone.')
