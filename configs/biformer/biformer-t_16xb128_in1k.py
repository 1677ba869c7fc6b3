# BiFormer-T ImageNet-1k, 300 epochs, the BiFormer-S recipe with the main.py default drop path 0.1
# (the repository states no tiny-specific value). Official: 81.4 top-1 (13.1M params, 2.2 GFLOPs).
_base_ = './biformer-s_16xb128_in1k.py'
model = dict(backbone=dict(arch='tiny', drop_path_rate=0.1))
