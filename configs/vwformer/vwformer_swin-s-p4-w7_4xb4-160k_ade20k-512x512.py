# VWFormer Swin-S (ImageNet-1k pre-trained), ADE20K 512x512, 160k iterations, official recipe.
_base_ = './vwformer_swin-t-p4-w7_4xb4-160k_ade20k-512x512.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_small_patch4_window7_224.pth'  # noqa
model = dict(backbone=dict(arch='small', init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=12))
