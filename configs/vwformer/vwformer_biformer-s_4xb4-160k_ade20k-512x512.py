# VWFormer on BiFormer-S (projects/biformer), ADE20K 512x512, 160k iterations, official
# VWFormer recipe. Backbone settings as
# configs/biformer/upernet_biformer-s_8xb2-160k_ade20k-512x512.py.
_base_ = './vwformer_swin-t-p4-w7_4xb4-160k_ade20k-512x512.py'
pretrained = 'checkpoints/biformer_small_in1k.pth'  # see the UperNet config
model = dict(
    backbone=dict(
        _delete_=True,
        type='BiFormer',
        arch='small',
        n_win=8,  # 512x512 training crops
        topks=(1, 4, 16, -1),
        auto_pad=True,  # whole-image inference at any size
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        out_norm_cfg=dict(type='LN2d'),
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[64, 128, 256, 512]))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=12))  # depths (4, 4, 18, 4)
