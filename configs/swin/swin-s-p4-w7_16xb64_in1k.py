# Swin-S ImageNet-1k, 300 epochs (official recipe). Official: 83.2 top-1.
_base_ = './swin-t-p4-w7_16xb64_in1k.py'
model = dict(backbone=dict(arch='small', drop_path_rate=0.3))
