# UperNet Swin-S, ADE20K 512x512, 160k iterations (mmseg 1.2 recipe). Official: 47.6 mIoU.
_base_ = './upernet_swin-t-p4-w7_8xb2-160k_ade20k-512x512.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_small_patch4_window7_224.pth'  # noqa
model = dict(backbone=dict(arch='small', init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
