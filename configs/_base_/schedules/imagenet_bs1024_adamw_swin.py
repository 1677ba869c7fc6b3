# Swin ImageNet recipe (mmpretrain 1.2 imagenet_bs1024_adamw_swin.py; official: 300 epochs,
# AdamW lr 1e-3 for batch 1024, wd 0.05, 20 warm-up epochs, cosine), grad clip 5.0.
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=5e-4 * 1024 / 512, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={'.rel_pos.table': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=5.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=20)
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# Scales the lr with --auto-scale-lr: 16 GPUs x 64 images.
auto_scale_lr = dict(base_batch_size=1024)
