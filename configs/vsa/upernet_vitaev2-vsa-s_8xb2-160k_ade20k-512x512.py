# UperNet ViTAEv2-VSA-S, ADE20K 512x512, 160k iterations: the Swin UperNet recipe (AdamW 6e-5,
# wd 0.01, poly) with the ViTAEv2-VSA-S backbone of the official detection code. The official
# segmentation code was never released; the drop path (0.1) follows the 1x detection config.
_base_ = '../swin/upernet_swin-t-p4-w7_8xb2-160k_ade20k-512x512.py'
pretrained = 'checkpoints/ViTAEv2-VSA-S.pth.tar'   # see mask-rcnn_vitaev2-vsa-s_*_1x_coco.py
model = dict(
    backbone=dict(
        _delete_=True,
        type='ViTAEv2VSA',
        arch='s',
        variant='det',
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
