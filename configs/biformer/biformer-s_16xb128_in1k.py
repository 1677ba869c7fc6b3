# BiFormer-S ImageNet-1k, 300 epochs: the official DeiT-style recipe (rayleizhu/BiFormer main.py
# defaults + README command `model=biformer_small drop_path=0.15 lr=5e-4`, 2 nodes x 8 GPUs x 128).
# Official: 83.8 top-1 (25.5M params, 4.5 GFLOPs).
_base_ = [
    '../_base_/datasets/imagenet_bs64_swin_224.py',  # RandAugment m9-mstd0.5, erasing 0.25, bicubic
    '../_base_/default_runtime_cls.py',
]
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='BiFormer',
        arch='small',
        n_win=7,
        topks=(1, 4, 16, -1),
        drop_path_rate=0.15,
        out_indices=(3, ),
        out_norm_cfg=dict(type='BN'),  # the classifier's final BatchNorm2d
        attn_cfg=dict(type='BiLevelRoutingAttention', impl='fast')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        init_cfg=None,  # the backbone initialises Linear layers like timm (trunc normal 0.02)
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.)],
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

# DeiT data loading: 128 images per GPU with repeated augmentation.
train_dataloader = dict(batch_size=128, sampler=dict(_delete_=True, type='RepeatAugSampler'))
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

# AdamW, lr 5e-4 per 512 images (DeiT linear scaling: 2e-3 for 2048), wd 0.05 without decay on
# norms/biases, 5 warm-up epochs from 1e-6, cosine to 1e-5, no gradient clipping.
base_lr = 5e-4 * 2048 / 512
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / base_lr, by_epoch=True, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5)
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=2048)
# timm ModelEma(decay=0.99996), updated every iteration.
custom_hooks = [dict(type='EMAHook', momentum=4e-5, priority='ABOVE_NORMAL')]
