# Swin-VSA-S ImageNet-1k, 300 epochs: the Swin-S recipe with VSA in every block.
# Official (ViTAE-VSA README): 83.6 top-1 (weights never released).
_base_ = '../swin/swin-s-p4-w7_16xb64_in1k.py'
model = dict(
    backbone=dict(
        shift_windows=False,
        attn_cfg=dict(_delete_=True, type='VSAWindowAttention', use_cpe=True)))
