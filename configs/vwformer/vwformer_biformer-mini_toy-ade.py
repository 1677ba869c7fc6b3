# VWFormer with a small BiFormer on toy-ade (python tools/make_toy_data.py): CPU tests.
# Backbone as configs/biformer/upernet_biformer-mini_toy-ade.py.
_base_ = './vwformer_swin-mini-p4-w7_toy-ade.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='BiFormer',
        arch=dict(embed_dims=(32, 64, 128, 256), depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8)),
        n_win=4,  # stage maps 32, 16, 8, 4
        topks=(1, 4, 8, -1),
        auto_pad=True,
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        out_norm_cfg=dict(type='LN2d'),
        norm_eval=True))
