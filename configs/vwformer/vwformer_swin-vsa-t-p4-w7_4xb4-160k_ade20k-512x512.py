# VWFormer on Swin-VSA-T (projects/vsa), ADE20K 512x512, 160k iterations, official VWFormer
# recipe. Backbone settings as configs/vsa/upernet_swin-vsa-t-p4-w7_8xb2-160k_ade20k-512x512.py.
_base_ = './vwformer_swin-t-p4-w7_4xb4-160k_ade20k-512x512.py'
pretrained = 'work_dirs/swin-vsa-t-p4-w7_16xb64_in1k/epoch_300.pth'   # train the classifier first
model = dict(
    backbone=dict(
        shift_windows=False,
        attn_cfg=dict(type='VSAWindowAttention', use_cpe=True),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
