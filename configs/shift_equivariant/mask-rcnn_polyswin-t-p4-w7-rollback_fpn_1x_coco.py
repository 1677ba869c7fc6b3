# Mask R-CNN 1x COCO with the shift-equivariant dense PolySwin-T (roll_back=True): every FPN input
# level l satisfies F_l(roll(x, s)) = roll(F_l(x), s / r_l) for circular shifts s that are
# multiples of its stride r_l. The anchors need every stage map to be a multiple of the window
# (7) and of the PolyPatch stride (2), so images are padded to a multiple of 32 * 7 = 224.
_base_ = ['../swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py']
# An ImageNet PolySwin-T (official release converted with tools/model_converters/poly2windowlab.py).
pretrained = 'checkpoints/polyswin-t-p4-w7_in1k_windowlab.pth'
model = dict(
    data_preprocessor=dict(pad_size_divisor=224),
    backbone=dict(
        _delete_=True, type='PolySwin', arch='tiny', window_size=7, drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3), roll_back=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
