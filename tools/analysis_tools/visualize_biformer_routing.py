"""Draw where BiFormer's bi-level routing sends one query region, over an image.

    python tools/analysis_tools/visualize_biformer_routing.py CONFIG CHECKPOINT IMAGE \
        [--out routing.png] [--stage 1] [--layer -1] [--query X Y] [--img-size H W]

Works for every config whose backbone uses ``BiLevelRoutingAttention`` (classification,
detection, segmentation). The chosen layer is the ``--layer``-th BRA of stage ``--stage``
(0-2; stage 3 is global attention). The query region is the one containing image pixel
``--query X Y`` (default: the image centre). The PNG shows the ``n_win x n_win`` region grid
(thin white lines), the query region (red) and its ``topk`` routed key/value regions (green,
numbered by routing rank; a region routed to itself is drawn red and green). Official BiFormer
release files and windowlab checkpoints are both accepted (converted on the fly).
"""
import numpy as np

from windowlab.analysis import (find_stage_layer, image_to_input, load_backbone, load_image,
                                rerun_layer, visualizer_parser)

QUERY_COLOUR = (255, 40, 40)
ROUTED_COLOUR = (40, 230, 40)


def parse_args(argv=None):
    parser = visualizer_parser('Visualise BiFormer routing', 'biformer_routing.png', 1,
                               'backbone stage with BRA (0-2)', 'BRA')
    parser.add_argument('--query', type=float, nargs=2, metavar=('X', 'Y'),
                        help='image pixel inside the query region (default: image centre)')
    return parser.parse_args(argv)


def region_geometry(map_hw, n_win):
    """``(region_h, region_w)`` in map cells of a ``map_hw`` map padded to multiples of n_win."""
    return tuple(-(-side // n_win) for side in map_hw)


def query_region(xy, stride, region_hw, n_win):
    """Index (row-major) of the region containing image pixel ``xy = (x, y)``."""
    col = min(int(xy[0] // stride // region_hw[1]), n_win - 1)
    row = min(int(xy[1] // stride // region_hw[0]), n_win - 1)
    return row * n_win + col


def region_box(index, n_win, region_hw, stride):
    """Image-pixel box ``(x0, y0, x1, y1)`` (exclusive ends) of region ``index``."""
    row, col = divmod(int(index), n_win)
    rh, rw = region_hw
    return (col * rw * stride, row * rh * stride, (col + 1) * rw * stride, (row + 1) * rh * stride)


def find_bra_layer(model, stage, layer):
    from windowlab.projects.biformer import BiLevelRoutingAttention
    return find_stage_layer(
        model, BiLevelRoutingAttention, stage, layer, 'BRA',
        f'stage {stage} of this model has no BiLevelRoutingAttention (BiFormer routes in '
        'stages 0-2; stage 3 is global attention)')


def capture_routing(backbone, module, image):
    """Run ``backbone`` on ``image``; return ``module``'s region indices ``[N, P, topk]`` and
    its input map size ``(H, W)``."""
    return rerun_layer(backbone, module, image, lambda mod, args: (
        mod.forward(args[0], return_routing=True)[1], tuple(args[0].shape[1:3])))


def draw(img, query_box, routed_boxes, grid_boxes, path):
    """Region grid, query region and numbered routed regions over ``img``; saved as PNG."""
    from PIL import Image, ImageDraw
    canvas = Image.fromarray(np.ascontiguousarray(img)).convert('RGB')
    pen = ImageDraw.Draw(canvas)
    for box in grid_boxes:
        pen.rectangle([box[0], box[1], box[2] - 1, box[3] - 1], outline=(255, 255, 255))
    for rank, box in enumerate(routed_boxes, 1):
        pen.rectangle([box[0] + 1, box[1] + 1, box[2] - 2, box[3] - 2], outline=ROUTED_COLOUR,
                      width=2)
        pen.text((box[0] + 4, box[1] + 3), str(rank), fill=ROUTED_COLOUR)
    pen.rectangle([query_box[0] + 3, query_box[1] + 3, query_box[2] - 4, query_box[3] - 4],
                  outline=QUERY_COLOUR, width=2)
    canvas.save(path)
    return canvas


def main(argv=None):
    args = parse_args(argv)
    backbone, mean, std = load_backbone(args.config, args.checkpoint)
    name, module = find_bra_layer(backbone, args.stage, args.layer)
    img = load_image(args.image, args.img_size)
    region_idx, map_hw = capture_routing(backbone, module, image_to_input(img, mean, std))
    stride = 2 ** (args.stage + 2)
    region_hw = region_geometry(map_hw, module.n_win)
    xy = args.query if args.query is not None else (img.shape[1] / 2, img.shape[0] / 2)
    query = query_region(xy, stride, region_hw, module.n_win)
    routed = region_idx[0, query].tolist()
    n = module.n_win
    draw(img, region_box(query, n, region_hw, stride),
         [region_box(r, n, region_hw, stride) for r in routed],
         [region_box(r, n, region_hw, stride) for r in range(n * n)], args.out)
    print(f'{name}: map {map_hw[0]}x{map_hw[1]}, {n}x{n} regions of {region_hw[0]}x{region_hw[1]} '
          f'cells; query region {query} routes to {routed}; drawn to {args.out}')
    return query, routed


if __name__ == '__main__':
    main()
