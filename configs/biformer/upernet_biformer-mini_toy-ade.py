# UperNet with a small BiFormer on toy-ade (python tools/make_toy_data.py): CPU demo and tests.
_base_ = [
    '../_base_/models/upernet_swin-t-p4-w7.py',
    '../_base_/datasets/toy_ade20k.py',
    '../_base_/schedules/swin_adamw_seg_160k.py',
    '../_base_/default_runtime_seg.py',
]
crop_size = (128, 128)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='BiFormer',
        arch=dict(embed_dims=(32, 64, 128, 256), depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8)),
        n_win=4,  # stage maps 32, 16, 8, 4
        topks=(1, 4, 8, -1),
        auto_pad=True,
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        out_norm_cfg=dict(type='LN2d'),
        norm_eval=True),
    decode_head=dict(in_channels=[32, 64, 128, 256], channels=64, num_classes=5, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=128, channels=32, num_classes=5, norm_cfg=norm_cfg))

max_iters = 300
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=30, end=max_iters, by_epoch=False)
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=100, max_keep_ckpts=2))
