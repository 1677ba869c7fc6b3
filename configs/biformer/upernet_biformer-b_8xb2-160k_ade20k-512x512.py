# UperNet BiFormer-B, ADE20K 512x512, 160k iterations (official upernet.biformer_base.py).
# Official: 51.0 mIoU (51.7 multi-scale + flip).
_base_ = './upernet_biformer-s_8xb2-160k_ade20k-512x512.py'
pretrained = 'checkpoints/biformer_base_in1k.pth'
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.4,
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
