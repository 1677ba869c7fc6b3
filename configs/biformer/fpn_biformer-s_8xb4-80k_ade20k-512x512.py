# Semantic FPN BiFormer-S, ADE20K 512x512, 80k iterations, 8 GPUs x 4 images (rayleizhu/BiFormer
# semantic_segmentation/configs/ade20k/sfpn.biformer_small.py, which follows UniFormer with lr and
# iterations adapted to 8 GPUs). Official: 48.9 mIoU.
_base_ = [
    '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime_seg.py',
]
crop_size = (512, 512)
norm_cfg = dict(type='SyncBN', requires_grad=True)
# The official ImageNet release (https://api.onedrive.com/v1.0/shares/s!AkBbczdRlZvChHDyM-x9KWRBZ832/
# root/content), saved locally; windowlab converts it on load (final BatchNorm and head dropped).
pretrained = 'checkpoints/biformer_small_in1k.pth'
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=crop_size),
    backbone=dict(
        type='BiFormer',
        arch='small',
        n_win=8,
        topks=(1, 4, 16, -1),
        auto_pad=True,
        drop_path_rate=0.15,
        out_indices=(0, 1, 2, 3),
        out_norm_cfg=dict(type='LN2d'),
        norm_cfg=norm_cfg,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(type='FPN', in_channels=[64, 128, 256, 512], out_channels=256, num_outs=4),
    decode_head=dict(
        type='FPNHead',
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=128,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
train_dataloader = dict(batch_size=4)

# Official: AdamW lr 2e-4 (1e-4 x 2 for 8 GPUs), weight decay 1e-4, 1000-iter linear warm-up from
# x0.1, cosine to ~0 (min_lr_ratio 1e-8) over 80k iterations, fp16 with loss scale 512.
max_iters = 80000
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale=512.,
    optimizer=dict(type='AdamW', lr=0.0002, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min_ratio=1e-8, by_epoch=False, begin=0,
         end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=1,
                    save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    rng_state=dict(type='RNGStateHook'),  # --resume continues the same random stream
    finite_loss=dict(type='FiniteLossHook'),  # stop on a NaN/inf loss (stop=False: train on)
    visualization=dict(type='SegVisualizationHook'))
