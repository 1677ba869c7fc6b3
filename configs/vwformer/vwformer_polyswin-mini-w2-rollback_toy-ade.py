# VWFormer with a small dense PolySwin (window 2, roll_back=True) on toy-ade: CPU tests.
# Backbone as configs/shift_equivariant/upernet_polyswin-mini-w2-rollback_toy-ade.py; inputs
# are padded to multiples of 64 at test time.
_base_ = './vwformer_swin-mini-p4-w7_toy-ade.py'
model = dict(
    data_preprocessor=dict(test_cfg=dict(size_divisor=64)),
    backbone=dict(
        _delete_=True, type='PolySwin',
        arch=dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8)), window_size=2,
        drop_path_rate=0.1, out_indices=(0, 1, 2, 3), roll_back=True))
custom_hooks = [dict(type='ShiftConsistencyHook', shift_range='aps')]
