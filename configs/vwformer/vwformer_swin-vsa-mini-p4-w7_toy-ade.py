# VWFormer with a small Swin-VSA on toy-ade (python tools/make_toy_data.py): CPU tests.
_base_ = './vwformer_swin-mini-p4-w7_toy-ade.py'
model = dict(
    backbone=dict(
        shift_windows=False,
        attn_cfg=dict(type='VSAWindowAttention', use_cpe=True)))
