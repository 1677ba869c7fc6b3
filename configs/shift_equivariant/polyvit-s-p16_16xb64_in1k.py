# PolyViT-S/16 ImageNet-1k (official configs/pvit_small_w.yaml: the Swin code base's recipe with
# 400 epochs and dropout 0.1). The official run started from timm's ViT-S augreg weights; its
# pos_embed does not exist here and the patch-embedding norm is new, so this trains from scratch.
_base_ = [
    '../_base_/datasets/imagenet_bs64_swin_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_swin.py',
    '../_base_/default_runtime_cls.py',
]
model = dict(
    type='ImageClassifier',
    backbone=dict(type='PolyViT', arch='small', patch_size=16, drop_rate=0.1,
                  drop_path_rate=0.1),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=384,
        init_cfg=None,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        dict(type='Constant', layer='LayerNorm', val=1., bias=0.)
    ],
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'.cls_token': dict(decay_mult=0.0)}))
train_cfg = dict(max_epochs=400)
custom_hooks = [dict(type='ShiftConsistencyHook', shift_range='paper')]
