# UperNet ADE20K 160k with the shift-equivariant dense PolyTwins-SVT-S (roll_back=True);
# 448x448 crops, test images padded to a multiple of 224 (see the PolySwin config).
_base_ = ['./upernet_polyswin-t-p4-w7-rollback_8xb2-160k_ade20k-448x448.py']
pretrained = 'checkpoints/polytwins-svt-s_in1k_windowlab.pth'
model = dict(
    backbone=dict(
        _delete_=True, type='PolyTwins', arch='small', drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3), roll_back=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
