# VWFormer with a small Swin on toy-ade (python tools/make_toy_data.py): CPU demo and tests.
# The UperNet toy config with the head swapped and the VWFormer recipe (layer-wise lr decay).
_base_ = '../swin/upernet_swin-mini-p4-w7_toy-ade.py'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='VWHead',
        in_channels=[32, 64, 128, 256],
        in_index=[0, 1, 2, 3],
        channels=64,
        dropout_ratio=0.1,
        num_classes=5,
        short_cut=True,
        nheads=1,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=None)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='HierarchicalLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=4, decay_rate=0.85))
