# PolySwin (windowlab's Swin with anchoring components), narrowed, window 2, on toy-in: CPU tests.
_base_ = ['./polyvit-mini-p8_toy-in.py']
model = dict(
    backbone=dict(_delete_=True, type='PolySwin',
                  arch=dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8)),
                  window_size=2, drop_path_rate=0.1),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(in_channels=128))
