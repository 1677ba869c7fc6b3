# UperNet Swin-T, ADE20K 512x512, 160k iterations, 8 GPUs x 2 images (mmseg 1.2 recipe).
# Official: 44.5 mIoU (single scale).
_base_ = [
    '../_base_/models/upernet_swin-t-p4-w7.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/schedules/swin_adamw_seg_160k.py',
    '../_base_/default_runtime_seg.py',
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth'  # noqa
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150))
train_dataloader = dict(batch_size=2)
