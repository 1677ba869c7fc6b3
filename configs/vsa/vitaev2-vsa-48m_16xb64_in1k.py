# ViTAEv2-VSA-48M ImageNet-1k (official ViTAEv2_VSA_widePCM_48M.sh): 16 GPUs x 64 images,
# weight decay 0.055, drop path 0.25; otherwise as ViTAEv2-VSA-S. Official: 83.9 top-1.
_base_ = './vitaev2-vsa-s_8xb128_in1k.py'
model = dict(backbone=dict(arch='48m', drop_path_rate=0.25), head=dict(in_channels=768))
train_dataloader = dict(batch_size=64)
optim_wrapper = dict(optimizer=dict(weight_decay=0.055))
