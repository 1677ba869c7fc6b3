# UperNet BiFormer-S, ADE20K 512x512, 160k iterations, 8 GPUs x 2 images (rayleizhu/BiFormer
# semantic_segmentation/configs/ade20k/upernet.biformer_small.py). Official: 49.8 mIoU
# (50.8 multi-scale + flip).
_base_ = [
    '../_base_/models/upernet_swin-t-p4-w7.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/schedules/swin_adamw_seg_160k.py',  # AdamW 6e-5, wd 0.01, 1500-iter warm-up, poly
    '../_base_/default_runtime_seg.py',
]
crop_size = (512, 512)
# The official ImageNet release (https://api.onedrive.com/v1.0/shares/s!AkBbczdRlZvChHDyM-x9KWRBZ832/
# root/content), saved locally; windowlab converts it on load (final BatchNorm and head dropped).
pretrained = 'checkpoints/biformer_small_in1k.pth'
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='BiFormer',
        arch='small',
        n_win=8,  # 512x512 training crops
        topks=(1, 4, 16, -1),
        auto_pad=True,  # whole-image inference at any size
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        out_norm_cfg=dict(type='LN2d'),
        norm_cfg=dict(type='SyncBN', requires_grad=True),  # the official code converts BN to SyncBN
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[64, 128, 256, 512], num_classes=150),
    auxiliary_head=dict(in_channels=256, num_classes=150))
train_dataloader = dict(batch_size=2)
# Official: fp16 with loss scale 512.
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale=512.)
