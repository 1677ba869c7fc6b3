# PolySwin-T ImageNet-1k: the official recipe (the Swin code base's defaults: 300 epochs, AdamW
# lr 5e-4 per 512 images, wd 0.05, 20 warm-up epochs, cosine, clip 5, RandAugment, Mixup 0.8,
# CutMix 1.0, label smoothing 0.1, random erasing 0.25) with the 'swin_poly' model
# (drop path 0.1, the config.py default). Paper: 100% shift consistency.
_base_ = [
    '../_base_/models/swin-t-p4-w7_in1k-cls.py',
    '../_base_/datasets/imagenet_bs64_swin_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_swin.py',
    '../_base_/default_runtime_cls.py',
]
model = dict(
    backbone=dict(_delete_=True, type='PolySwin', arch='tiny', window_size=7, drop_path_rate=0.1,
                  out_indices=(3, )))
custom_hooks = [dict(type='ShiftConsistencyHook', shift_range='paper')]
