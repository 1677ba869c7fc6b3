# Classification with a small Swin-VSA on toy-in (python tools/make_toy_data.py): CPU tests.
_base_ = '../swin/swin-mini-p4-w7_toy-in.py'
model = dict(
    backbone=dict(
        shift_windows=False,
        attn_cfg=dict(_delete_=True, type='VSAWindowAttention', use_cpe=True)),
    # plain cross-entropy (the base's override keeps LabelSmoothLoss's arguments)
    head=dict(loss=dict(_delete_=True, type='CrossEntropyLoss')))
