# PolyViT-B/16 ImageNet-1k from scratch (official configs/pvit_base_w.yaml: 200 epochs, image
# mean/std 0.5, otherwise the Swin code base's recipe).
_base_ = ['./polyvit-s-p16_16xb64_in1k.py']
data_preprocessor = dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5])
model = dict(
    backbone=dict(arch='base', drop_rate=0.0),
    head=dict(in_channels=768))
train_cfg = dict(max_epochs=200)
