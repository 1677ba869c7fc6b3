# ViTAEv2-VSA-S ImageNet-1k, 300 epochs, the official recipe
# (Image-Classification/vitaev2_vsa/training_scripts/ViTAEv2_VSA_S.sh + main.py defaults):
# 8 GPUs x 128 images, AdamW lr 5e-4 x 1024 / 512, weight decay 0.05 (none on biases and
# norms), 10 warm-up epochs from 1e-6, cosine to 1e-5, drop path 0.1, label smoothing 0.1,
# Mixup 0.8 / CutMix 1.0, RandAugment m9-mstd0.5, random erasing 0.25, model EMA 0.99996,
# no gradient clipping; evaluation at crop ratio 0.9 (resize 248, crop 224).
# Official: 82.7 top-1 (released weights, ViTAEv2-S+VSA).
_base_ = [
    '../_base_/datasets/imagenet_bs64_swin_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_swin.py',
    '../_base_/default_runtime_cls.py',
]
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ViTAEv2VSA', arch='s', variant='cls', drop_path_rate=0.1,
                  out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        init_cfg=None,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        dict(type='Constant', layer='LayerNorm', val=1., bias=0.)
    ],
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=248, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
# tools/test.py --tta: the test view and its mirror image, scores averaged by the runtime's
# tta_model
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=248, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='TestTimeAug',
         transforms=[[dict(type='RandomFlip', prob=0., direction='horizontal'),
                      dict(type='RandomFlip', prob=1., direction='horizontal')],
                     [dict(type='PackInputs')]])
]
train_dataloader = dict(batch_size=128)
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True,
    optimizer=dict(type='AdamW', lr=5e-4 * 1024 / 512, weight_decay=0.05, eps=1e-8,
                   betas=(0.9, 0.999)),
    paramwise_cfg=dict(flat_decay_mult=0.0))   # timm: no decay on 1-D parameters
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=10, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=10)
]
custom_hooks = [dict(type='EMAHook', momentum=4e-5, priority='ABOVE_NORMAL')]
