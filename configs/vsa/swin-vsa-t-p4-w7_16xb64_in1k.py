# Swin-VSA-T ImageNet-1k, 300 epochs: the Swin-T recipe with VSA in every block.
# Official (ViTAE-VSA README): 82.24 top-1 (weights never released).
# VSA windows are never shifted (shift_windows=False) and carry a 7x7 depth-wise CPE
# (see projects/vsa/README.md, "Design decisions").
_base_ = '../swin/swin-t-p4-w7_16xb64_in1k.py'
model = dict(
    backbone=dict(
        shift_windows=False,
        attn_cfg=dict(_delete_=True, type='VSAWindowAttention', use_cpe=True)))
