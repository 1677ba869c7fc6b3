# UperNet with a small dense PolySwin (window 2, roll_back=True) on toy-ade (128x128): CPU tests.
# Stage maps must be multiples of the window and of 2: inputs are multiples of 4 * 8 * 2 = 64.
_base_ = ['../swin/upernet_swin-mini-p4-w7_toy-ade.py']
model = dict(
    data_preprocessor=dict(test_cfg=dict(size_divisor=64)),
    backbone=dict(
        _delete_=True, type='PolySwin',
        arch=dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8)), window_size=2,
        drop_path_rate=0.1, out_indices=(0, 1, 2, 3), roll_back=True))
custom_hooks = [dict(type='ShiftConsistencyHook', shift_range='aps')]
