# Mask R-CNN with a small dense PolyTwins (windows 2, sr 4/2/2/1, roll_back=True) on toy-coco
# (128x160 images, padded to a multiple of 64): CPU tests.
_base_ = ['../swin/mask-rcnn_swin-mini-p4-w7_fpn_toy-coco.py']
model = dict(
    data_preprocessor=dict(pad_size_divisor=64),
    backbone=dict(
        _delete_=True, type='PolyTwins',
        arch=dict(embed_dims=[32, 64, 128, 256], num_heads=[1, 2, 4, 8], depths=[2, 2, 2, 2],
                  window_sizes=[2, 2, 2, 2], sr_ratios=[4, 2, 2, 1]),
        drop_path_rate=0.1, out_indices=(0, 1, 2, 3), roll_back=True))
