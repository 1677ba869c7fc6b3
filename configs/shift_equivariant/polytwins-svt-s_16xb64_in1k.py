# PolyTwins-SVT-S ImageNet-1k (official build.py default card twins_svt_small; the Swin code base's
# recipe: 300 epochs, AdamW lr 5e-4 per 512 images, wd 0.05, 20 warm-up epochs, drop path 0.1).
_base_ = ['./polyvit-s-p16_16xb64_in1k.py']
model = dict(
    backbone=dict(_delete_=True, type='PolyTwins', arch='small', drop_path_rate=0.1),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(in_channels=512))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'.cls_token': dict(decay_mult=0.0)}))
train_cfg = dict(max_epochs=300)
