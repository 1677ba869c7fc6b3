# Semantic FPN BiFormer-B, ADE20K 512x512, 80k iterations (official sfpn.biformer_base.py).
# Official: 49.9 mIoU.
_base_ = './fpn_biformer-s_8xb4-80k_ade20k-512x512.py'
pretrained = 'checkpoints/biformer_base_in1k.pth'
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.3,
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]))
