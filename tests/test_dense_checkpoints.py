"""Issue 10 item 6: every official dense model listed in fixtures/keys/dense/ converts with one
converter command and loads strictly into the matching windowlab config, then runs.

Random tensors of the listed shapes stand in for the released files; the converted file is
loaded the way ``tools/test.py`` loads it (strict), and one forward runs at a small size.
"""
import runpy

import pytest
import torch
from conftest import REPO, random_state_dict
from mmengine.config import Config

from windowlab import launch
from windowlab.converters import load_checkpoint_file, load_state_dict_strict, unwrap_state_dict

CONVERTERS = REPO / 'tools' / 'model_converters'

# listing -> (converter script, extra converter arguments, windowlab config)
DENSE = {
    'swinod_mask_rcnn_swin_t_3x_coco.json':
        ('swin2windowlab.py', [], 'swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'),
    'swinod_cascade_mask_rcnn_swin_t_3x_coco.json':
        ('swin2windowlab.py', [],
         'swin/cascade-mask-rcnn_swin-t-p4-w7_fpn_giou-4conv1f_ms-crop-3x_coco.py'),
    'swinseg_upernet_swin_t_160k_ade20k.json':
        ('swin2windowlab.py', [], 'swin/upernet_swin-t-p4-w7_8xb2-160k_ade20k-512x512.py'),
    'biformer_mask_rcnn_biformer_s_1x_coco.json':
        ('biformer2windowlab.py', [], 'biformer/mask-rcnn_biformer-s_fpn_1x_coco.py'),
    'biformer_retinanet_biformer_s_1x_coco.json':
        ('biformer2windowlab.py', [], 'biformer/retinanet_biformer-s_fpn_1x_coco.py'),
    'biformer_sfpn_biformer_s_80k_ade20k.json':
        ('biformer2windowlab.py', [], 'biformer/fpn_biformer-s_8xb4-80k_ade20k-512x512.py'),
    'biformer_upernet_biformer_s_160k_ade20k.json':
        ('biformer2windowlab.py', [], 'biformer/upernet_biformer-s_8xb2-160k_ade20k-512x512.py'),
    'vsa_mask_rcnn_vitaev2_vsa_s_1x_coco.json':
        ('vitaev2_vsa2windowlab.py', [], 'vsa/mask-rcnn_vitaev2-vsa-s_fpn_ms-crop-1x_coco.py'),
    'vsa_mask_rcnn_vitaev2_vsa_s_3x_coco.json':
        ('vitaev2_vsa2windowlab.py', [], 'vsa/mask-rcnn_vitaev2-vsa-s_fpn_ms-crop-3x_coco.py'),
    'vsa_cascade_mask_rcnn_vitaev2_vsa_s_3x_coco.json':
        ('vitaev2_vsa2windowlab.py', [],
         'vsa/cascade-mask-rcnn_vitaev2-vsa-s_fpn_giou-4conv1f_ms-crop-3x_coco.py'),
    'vw_vwformer_swin_b_w12_640_160k_ade20k.json':
        ('vwformer2windowlab.py', [],
         'vwformer/vwformer_swin-b-p4-w12_4xb4-160k_ade20k-640x640.py'),
}


def _forward(model, scope, size=128):
    """One inference forward of a whole detector/segmentor on a ``size`` x ``size`` image."""
    model.eval()
    image = torch.rand(1, 3, size, size) * 255
    meta = dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
                scale_factor=(1.0, 1.0), batch_input_shape=(size, size))
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample
        sample = DetDataSample(metainfo=meta)
    else:
        from mmseg.structures import SegDataSample
        sample = SegDataSample(metainfo=meta)
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=[image[0]], data_samples=[sample]), False)
        return model(**data, mode='predict')


@pytest.mark.parametrize('listing_name', sorted(DENSE))
def test_official_dense_file_converts_and_loads_strictly(listing_name, key_listing, tmp_path):
    script, extra, config = DENSE[listing_name]
    listing = key_listing(f'dense/{listing_name}')
    official = random_state_dict(listing['keys'])
    src, dst = tmp_path / 'official.pth', tmp_path / 'windowlab.pth'
    torch.save({'state_dict': official, 'meta': {}}, src)
    runpy.run_path(str(CONVERTERS / script))['main']([str(src), str(dst), *extra])

    cfg = Config.fromfile(REPO / 'configs' / config)
    model = launch.build_model(cfg)
    converted = unwrap_state_dict(load_checkpoint_file(dst))
    load_state_dict_strict(model, converted, source=listing_name)  # as tools/test.py
    # Every tensor of the official file arrived somewhere (nothing silently dropped) ...
    kept = sum(v.numel() for k, v in official.items() if not k.endswith('relative_position_index'))
    assert sum(v.numel() for v in model.state_dict().values()) == kept
    # ... and neck/head tensors whose names mmdet 3 / mmseg 1 share are passed through untouched.
    own = model.state_dict()
    passed = [k for k in official if not k.startswith('backbone.') and k in own]
    assert passed
    for key in passed:
        assert torch.equal(own[key], official[key].to(own[key].dtype)), key
    results = _forward(model, cfg.default_scope)
    assert len(results) == 1
