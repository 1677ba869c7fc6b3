# PolyTwins, narrowed (stage maps 16, 8, 4, 2: windows 2, sr 4/2/2/1), on toy-in: CPU tests.
_base_ = ['./polyvit-mini-p8_toy-in.py']
model = dict(
    backbone=dict(_delete_=True, type='PolyTwins',
                  arch=dict(embed_dims=[16, 32, 64, 128], num_heads=[1, 2, 4, 8],
                            depths=[2, 2, 2, 2], window_sizes=[2, 2, 2, 2],
                            sr_ratios=[4, 2, 2, 1]),
                  drop_path_rate=0.1),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(in_channels=128))
