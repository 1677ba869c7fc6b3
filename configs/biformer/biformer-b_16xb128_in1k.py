# BiFormer-B ImageNet-1k, 300 epochs, the BiFormer-S recipe. Official: 84.3 top-1 (56.8M params,
# 9.8 GFLOPs). The repository states no drop path for B; 0.4 is an assumption (the largest value
# its downstream configs use for B).
_base_ = './biformer-s_16xb128_in1k.py'
model = dict(backbone=dict(arch='base', drop_path_rate=0.4), head=dict(in_channels=768))
