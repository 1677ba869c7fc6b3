# Swin-B ImageNet-1k, 300 epochs (official recipe). Official: 83.5 top-1.
_base_ = './swin-t-p4-w7_16xb64_in1k.py'
model = dict(backbone=dict(arch='base', drop_path_rate=0.5), head=dict(in_channels=1024))
