# Swin-T ImageNet-1k, 300 epochs (official recipe; mmpretrain swin-tiny_16xb64_in1k.py). Official: 81.2 top-1.
_base_ = [
    '../_base_/models/swin-t-p4-w7_in1k-cls.py',
    '../_base_/datasets/imagenet_bs64_swin_224.py',
    '../_base_/schedules/imagenet_bs1024_adamw_swin.py',
    '../_base_/default_runtime_cls.py',
]
