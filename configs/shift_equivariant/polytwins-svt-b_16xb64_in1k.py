# PolyTwins-SVT-B ImageNet-1k (official configs/ptwins_svts_base.yaml: drop path 0.3, wd 0.1,
# 5 warm-up epochs from lr 1e-6, base lr 5e-4 per 512 images, min lr 1e-5, 300 epochs; the
# rates below are these values scaled to this config's batch of 1024).
_base_ = ['./polytwins-svt-s_16xb64_in1k.py']
model = dict(backbone=dict(arch='base', drop_path_rate=0.3), head=dict(in_channels=768))
optim_wrapper = dict(optimizer=dict(weight_decay=0.1))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 5e-4, by_epoch=True, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=2e-5, by_epoch=True, begin=5)
]
