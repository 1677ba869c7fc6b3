# VWFormer Swin-T, ADE20K 512x512, 160k iterations, 4 GPUs x 4 images.
# UperNet Swin-T with the decode head swapped for VWHead (no auxiliary head, as the official
# configs) and the official VWFormer recipe: AdamW lr 1e-4, wd 0.05, layer-wise lr decay 0.85,
# 1500-iteration linear warm-up, then poly decay to 0.
# The official code releases Swin-B/L only; Swin-T/S use the same recipe.
_base_ = '../swin/upernet_swin-t-p4-w7_8xb2-160k_ade20k-512x512.py'

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='VWHead',
        in_channels=[96, 192, 384, 768],
        in_index=[0, 1, 2, 3],
        channels=512,
        dropout_ratio=0.1,
        num_classes=150,
        short_cut=True,
        nheads=1,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=None)

# num_layers = 3 + ceil(depths[2] / 2): 6 for Swin-T, 12 for Swin-S/B (see
# projects/vwformer/layer_decay.py).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='HierarchicalLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=6, decay_rate=0.85))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False)
]
train_dataloader = dict(batch_size=4)
