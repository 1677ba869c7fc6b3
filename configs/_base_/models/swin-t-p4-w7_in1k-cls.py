# ImageNet classifier with windowlab's Swin-T (mmpretrain 1.2 _base_/models/swin_transformer/tiny_224.py).
# The backbone follows the official classification code: a stage whose map fits in one window
# uses that single window unshifted (adaptive_window), and the final norm is norm3.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='WLSwinTransformer',
        arch='tiny',
        window_size=7,
        drop_path_rate=0.2,
        out_indices=(3, ),
        attn_cfg=dict(type='WindowMSA', adaptive_window=True)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        init_cfg=None,  # suppress the default init_cfg of LinearClsHead.
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        dict(type='Constant', layer='LayerNorm', val=1., bias=0.)
    ],
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)
