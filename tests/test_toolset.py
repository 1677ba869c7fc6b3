"""The OpenMMLab tool set on windowlab configs, as a user runs it: upstream inferencers with
nothing but a config and a checkpoint, tools/test.py --tta/--show-dir/--show, browse_dataset,
analyze_logs, confusion_matrix, print_config, and the error for a typo'd config key."""
import importlib.util
import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
from argparse import Namespace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict

import windowlab  # noqa: F401
from windowlab import launch
from windowlab.datasets.toy import make_toy_data

from toy import quick_training_cfg

REPO = Path(__file__).resolve().parents[1]
TOYS = {'cls': 'configs/swin/swin-mini-p4-w7_toy-in.py',
        'det': 'configs/swin/mask-rcnn_swin-mini-p4-w7_fpn_toy-coco.py',
        'seg': 'configs/swin/upernet_swin-mini-p4-w7_toy-ade.py'}
ITERS = 4


def run(*args, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def tool(path):
    """A tools/ script as a module (its ``main(argv)`` runs in this process)."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def toys(tmp_path_factory):
    """The three toy configs trained for a few iterations with tools/train.py:
    ``toys / '<task>.py'`` (config) and ``toys / 'work_<task>' / 'iter_4.pth'``."""
    tmp = tmp_path_factory.mktemp('toolset')
    make_toy_data(str(tmp / 'data'), num_train=4, num_val=2)
    for task, config in TOYS.items():
        cfg = quick_training_cfg(REPO / config, tmp / 'data', tmp / f'work_{task}', iters=ITERS,
                                 checkpoint_interval=ITERS)
        # keep the config's painting settings (quick_training_cfg drops the hook for training)
        cfg.default_hooks.visualization = Config.fromfile(REPO / config).default_hooks.get(
            'visualization', dict(type='SegVisualizationHook'))
        if task == 'det':  # a barely trained detector is unsure: keep all its detections
            cfg.model.test_cfg.rcnn.score_thr = 0.0
        cfg.dump(str(tmp / f'{task}.py'))
        result = run('tools/train.py', tmp / f'{task}.py')
        assert result.returncode == 0, result.stderr[-3000:]
    return tmp


# ---------------------------------------------------------------- configs that work anywhere

INFERENCE = {
    'cls': """
        from mmpretrain.apis import ImageClassificationInferencer as Inferencer
        inferencer = Inferencer(model=CONFIG, pretrained=CKPT, device='cpu')
        result = inferencer(IMAGE)[0]
        print('PREDICTION', result['pred_class'], len(result['pred_scores']))
    """,
    'det': """
        from mmdet.apis import DetInferencer as Inferencer
        inferencer = Inferencer(model=CONFIG, weights=CKPT, device='cpu')
        pred = inferencer(IMAGE, return_datasamples=True, no_save_vis=True)['predictions'][0]
        print('PREDICTION', tuple(pred.pred_instances.bboxes.shape[1:]), pred.pred_instances.masks.shape[1:])
    """,
    'seg': """
        from mmseg.apis import MMSegInferencer as Inferencer
        inferencer = Inferencer(model=CONFIG, weights=CKPT, device='cpu')
        pred = inferencer(IMAGE, return_datasamples=True)
        print('PREDICTION', tuple(pred.pred_sem_seg.data.shape))
    """,
}
EXPECTED_PREDICTION = {'cls': r'PREDICTION (square|disc|triangle|ring) 4',
                       'det': r'PREDICTION \(4,\) torch.Size\(\[128, 160\]\)',
                       'seg': r'PREDICTION \(1, 128, 128\)'}
IMAGES = {'cls': 'toy-in/val/disc/disc_00000.jpg', 'det': 'toy-coco/val2017/000000000001.jpg',
          'seg': 'toy-ade/images/validation/ADE_v_00000000.jpg'}


@pytest.mark.parametrize('task', sorted(INFERENCE))
def test_upstream_inferencer_runs_a_windowlab_config_without_importing_windowlab(toys, task):
    script = textwrap.dedent(f"""
        import sys
        CONFIG, CKPT = {str(toys / f'{task}.py')!r}, {str(toys / f'work_{task}/iter_{ITERS}.pth')!r}
        IMAGE = {str(toys / 'data' / IMAGES[task])!r}
        """) + textwrap.dedent(INFERENCE[task]) + textwrap.dedent("""
        assert 'windowlab' in sys.modules  # imported by the config's custom_imports
        """)
    # the script itself never imports windowlab: the config has to
    assert 'import windowlab' not in script
    result = run('-c', script)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(EXPECTED_PREDICTION[task], result.stdout), result.stdout[-2000:]


def test_base_runtimes_import_windowlab():
    for task in ('cls', 'det', 'seg'):
        cfg = Config.fromfile(REPO / f'configs/_base_/default_runtime_{task}.py')
        assert cfg.custom_imports == dict(imports=['windowlab'], allow_failed_imports=False)


# ------------------------------------------------------------------------- tools/test.py

def test_test_tool_tta_paints_every_classification_image(toys, tmp_path):
    result = run('tools/test.py', toys / 'cls.py', toys / f'work_cls/iter_{ITERS}.pth', '--tta',
                 '--work-dir', tmp_path, '--show-dir', tmp_path / 'vis', '--out', tmp_path / 'p.pkl')
    assert result.returncode == 0, result.stderr[-3000:]
    painted = sorted(p.name for p in (tmp_path / 'vis').glob('*.png'))
    val_images = sorted(p.name for p in (toys / 'data/toy-in/val').rglob('*.jpg'))
    assert painted == [f'{name}_0.png' for name in val_images]  # all 8, not 1 in 5000
    assert cv2.imread(str(tmp_path / 'vis' / painted[0])).shape[:2] == (224, 224)  # readable
    assert '8/8' in result.stdout  # the progress bar
    # the confusion matrix of the same predictions agrees with mmpretrain's accuracy
    top1 = float(re.search(r"'accuracy/top1': ([\d.]+)", result.stdout).group(1))
    cm = run('tools/analysis_tools/confusion_matrix.py', toys / 'cls.py', tmp_path / 'p.pkl',
             '--out', tmp_path / 'cm.png')
    assert cm.returncode == 0, cm.stderr[-3000:]
    matrix = np.array([[int(v) for v in row.split()] for row in
                       re.findall(r'\[+([\d ]+)\]', cm.stdout)])
    assert matrix.shape == (4, 4) and matrix.sum() == 8
    assert matrix.sum(1).tolist() == [2, 2, 2, 2]  # rows: ground truth (2 per class)
    assert np.trace(matrix) == round(top1 * 8 / 100)
    assert (tmp_path / 'cm.png').is_file()


@pytest.mark.parametrize('task,metric', [('det', 'coco/segm_mAP'), ('seg', 'mIoU')])
def test_test_tool_tta_on_dense_tasks(toys, tmp_path, task, metric):
    result = run('tools/test.py', toys / f'{task}.py', toys / f'work_{task}/iter_{ITERS}.pth',
                 '--tta', '--work-dir', tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"'{metric}'" in result.stdout  # masks merged too (mmdet's DetTTAModel refuses them)
    assert '2/2' in result.stdout


def test_tta_without_tta_settings_names_what_to_add(toys, tmp_path):
    cfg = Config.fromfile(toys / 'seg.py')
    cfg.pop('tta_pipeline')
    cfg.dump(str(tmp_path / 'no_tta.py'))
    result = run('tools/test.py', tmp_path / 'no_tta.py', toys / f'work_seg/iter_{ITERS}.pth', '--tta')
    assert result.returncode != 0
    assert f'--tta needs tta_pipeline in {tmp_path / "no_tta.py"}' in result.stderr


@pytest.mark.parametrize('task', ['cls', 'det', 'seg'])
def test_show_and_wait_time_reach_the_visualization_hook(task):
    test_tool = tool('tools/test.py')
    cfg = Config.fromfile(REPO / TOYS[task])
    test_tool.add_outputs(cfg, Namespace(out=None, show_dir=None, show=True, wait_time=0.5))
    hook = cfg.default_hooks.visualization
    assert (hook.show, hook.wait_time, hook.interval) == (True, 0.5, 1)
    assert hook.get('draw', hook.get('enable')) is True


def mmengine_model():
    from mmengine.model import BaseModel

    class Stub(BaseModel):  # a model for the wrapper to hold; merge_preds never runs it
        def forward(self, *args, **kwargs):
            raise NotImplementedError

    return Stub()


def test_instance_tta_model_flips_masks_back_and_keeps_those_of_the_kept_boxes():
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    from windowlab.models.det_tta import InstanceTTAModel

    h, w = 6, 10
    mask = torch.zeros(1, h, w, dtype=torch.bool)
    mask[0, 1:3, 0:4] = True  # object at the left edge, box (0, 1, 4, 3)
    views = []
    for flip in (False, True):
        sample = DetDataSample(metainfo=dict(ori_shape=(h, w), flip=flip, flip_direction='horizontal'))
        box = torch.tensor([[w - 4., 1., w - 0., 3.]]) if flip else torch.tensor([[0., 1., 4., 3.]])
        sample.pred_instances = InstanceData(
            bboxes=box, scores=torch.tensor([0.6 if flip else 0.9]), labels=torch.tensor([2]),
            masks=mask.flip(-1) if flip else mask)
        views.append(sample)
    model = InstanceTTAModel(module=mmengine_model(),
                             tta_cfg=ConfigDict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=10))
    merged = model.merge_preds([views])[0].pred_instances
    assert merged.bboxes.tolist() == [[0., 1., 4., 3.]]  # one object: the two views agree
    assert merged.scores.tolist() == pytest.approx([0.9])
    assert merged.labels.tolist() == [2]
    assert torch.equal(merged.masks, mask)


def test_cls_tta_model_labels_the_averaged_scores():
    from mmpretrain.structures import DataSample

    from windowlab.models.cls_tta import ClsScoreTTAModel

    views = [DataSample().set_pred_score(torch.tensor([0.5, 0.4, 0.1])).set_pred_label(0),
             DataSample().set_pred_score(torch.tensor([0.1, 0.6, 0.3])).set_pred_label(1)]
    merged = ClsScoreTTAModel(module=mmengine_model()).merge_preds([views])[0]
    assert merged.pred_score.tolist() == pytest.approx([0.3, 0.5, 0.2])
    assert merged.pred_label.tolist() == [1]  # mmpretrain's AverageClsScoreTTA keeps 0


# ------------------------------------------------------------------------- analysis tools

def text_log_values(work_dir, key):
    """``key: value`` of the training lines of mmengine's text log (an independent record)."""
    log = next(Path(work_dir).glob('*/*.log')).read_text()
    return [float(m) for m in re.findall(rf'Iter\(train\).* {key}: ([\d.]+)', log)]


def test_plot_curve_draws_the_logged_loss_and_cal_train_time_reports_it(toys, tmp_path, capsys):
    analyze = tool('tools/analysis_tools/analyze_logs.py')
    work = toys / 'work_cls'
    losses = text_log_values(work, 'loss')
    assert len(losses) == ITERS
    run_ = analyze.Run(str(work))
    assert run_.scope == 'mmpretrain'
    # the loss and the task metric (mmengine validates at the end of an iteration-based run)
    assert analyze.default_keys([run_]) == ['loss', 'accuracy/top1']
    fig = analyze.plot_curve([run_], ['loss', 'lr'])
    x, y = fig.axes[0].lines[0].get_data()
    assert list(x) == [1, 2, 3, 4]
    assert list(y) == pytest.approx(losses, abs=1e-4)
    assert fig.axes[0].get_ylabel() == 'loss' and fig.axes[1].get_ylabel() == 'lr'

    analyze.main(['plot_curve', str(work), '--out', str(tmp_path / 'curve.png')])
    assert cv2.imread(str(tmp_path / 'curve.png')) is not None
    analyze.main(['cal_train_time', str(work)])
    times = text_log_values(work, 'time')[1:]
    out = capsys.readouterr().out
    assert f'timed iterations: {ITERS - 1}' in out
    mean = float(re.search(r'mean: ([\d.]+) s/iter', out).group(1))
    assert mean == pytest.approx(sum(times) / len(times), abs=2e-4)

    with pytest.raises(SystemExit, match=r"no 'los' in the log; logged keys: .*loss"):
        analyze.main(['plot_curve', str(work), '--keys', 'los'])


def test_analyze_logs_places_validation_at_its_iteration(tmp_path):
    analyze = tool('tools/analysis_tools/analyze_logs.py')
    records = [dict(lr=0.1, loss=2.0, step=1), dict(lr=0.1, loss=1.0, step=2),
               {'accuracy/top1': 50.0, 'step': 0},  # mmengine logs the epoch for metrics
               dict(lr=0.1, loss=0.5, step=3), dict(lr=0.1, loss=0.4, step=4),
               {'accuracy/top1': 75.0, 'step': 0}]
    run_dir = tmp_path / '20260101_000000' / 'vis_data'
    run_dir.mkdir(parents=True)
    (run_dir / 'scalars.json').write_text(''.join(json.dumps(r) + '\n' for r in records))
    (run_dir / 'config.py').write_text("default_scope = 'mmpretrain'\n")
    run_ = analyze.Run(str(tmp_path))
    assert run_.series('accuracy/top1') == ([2, 4], [50.0, 75.0])
    assert run_.series('loss') == ([1, 2, 3, 4], [2.0, 1.0, 0.5, 0.4])
    assert analyze.default_keys([run_]) == ['loss', 'accuracy/top1']


@pytest.mark.parametrize('task', ['cls', 'det', 'seg'])
def test_browse_dataset_paints_readable_ground_truth(toys, tmp_path, task):
    browse = tool('tools/analysis_tools/browse_dataset.py')
    browse.main([str(toys / f'{task}.py'), '--phase', 'val', '--output-dir', str(tmp_path)])
    painted = sorted(tmp_path.glob('*.png'))
    assert len(painted) == (8 if task == 'cls' else 2)
    img = cv2.imread(str(painted[0]))
    assert min(img.shape[:2]) >= 224  # toy images (64 to 128 px) are enlarged


def coco_ground_truth(root):
    """{file name: [(x0, y0, x1, y1, label)]} of toy-coco's val json, read directly."""
    data = json.loads((root / 'toy-coco/annotations/instances_val2017.json').read_text())
    names = {im['id']: im['file_name'] for im in data['images']}
    out = {name: [] for name in names.values()}
    for a in data['annotations']:
        x, y, w, h = a['bbox']
        out[names[a['image_id']]].append((x, y, x + w, y + h, a['category_id'] - 1))
    return out


def test_detection_confusion_matrix_counts_matches_misses_and_false_alarms(toys, tmp_path):
    cm = tool('tools/analysis_tools/confusion_matrix.py')
    gt = coco_ground_truth(toys / 'data')
    (first, first_gt), (second, second_gt) = sorted(gt.items())
    expected = np.zeros((4, 4), np.int64)  # square, disc, triangle, background
    boxes, labels, scores = [], [], []
    for i, (*box, label) in enumerate(first_gt):  # every object found; the first one mislabelled
        predicted = (label + 1) % 3 if i == 0 else label
        boxes.append(box), labels.append(predicted), scores.append(0.9)
        expected[label, predicted] += 1
    boxes.append([0, 0, 3, 3]), labels.append(1), scores.append(0.8)  # a false alarm
    expected[3, 1] += 1
    boxes.append(first_gt[0][:4]), labels.append(0), scores.append(0.1)  # under --score-thr
    for *_, label in second_gt:  # nothing found on the second image
        expected[label, 3] += 1
    root = toys / 'data/toy-coco/val2017'
    results = [dict(img_path=str(root / first), pred_instances=dict(
                   bboxes=torch.tensor(boxes, dtype=torch.float32), labels=torch.tensor(labels),
                   scores=torch.tensor(scores))),
               dict(img_path=str(root / second), pred_instances=dict(
                   bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long),
                   scores=torch.zeros(0)))]
    with open(tmp_path / 'det.pkl', 'wb') as f:
        pickle.dump(results, f)
    cm.main([str(toys / 'det.py'), str(tmp_path / 'det.pkl'), '--out', str(tmp_path / 'cm.png')])
    dataset = launch.build_dataset(Config.fromfile(toys / 'det.py'), 'test')
    matrix = cm.detection_matrix(results, dataset, 3, 0.3, 0.5)
    np.testing.assert_array_equal(matrix, expected)
    assert cv2.imread(str(tmp_path / 'cm.png')) is not None


def test_segmentation_confusion_matrix_counts_pixels(toys, tmp_path):
    cm = tool('tools/analysis_tools/confusion_matrix.py')
    ann = toys / 'data/toy-ade/annotations/validation'
    expected = np.zeros((5, 5), np.int64)
    for path in sorted(ann.glob('*.png')):
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        pred = raw.copy()
        pred[:, :20] = 2  # left strip predicted 'floor' (raw label 2)
        cv2.imwrite(str(tmp_path / path.name), pred)
        for g in range(1, 6):  # raw labels 1..5 = classes 0..4; raw 0 is ignored
            for p in range(1, 6):
                expected[g - 1, p - 1] += int(((raw == g) & (pred == p)).sum())
    cm.main([str(toys / 'seg.py'), str(tmp_path), '--out', str(tmp_path / 'cm.png')])
    dataset = launch.build_dataset(Config.fromfile(toys / 'seg.py'), 'test')
    np.testing.assert_array_equal(cm.segmentation_matrix(str(tmp_path), dataset, 5), expected)
    assert expected[0, 1] > 0 and expected.trace() > 0


def test_print_config_prints_the_merged_config(capsys):
    print_config = tool('tools/misc/print_config.py')
    print_config.main([str(REPO / TOYS['seg']), '--cfg-options', 'model.decode_head.channels=48'])
    out = capsys.readouterr().out
    assert 'task: segmentation' in out
    assert "custom_imports = dict(" in out  # from configs/_base_/default_runtime_seg.py
    assert re.search(r"decode_head=dict\(\s+align_corners=False,\s+channels=48", out)


# ------------------------------------------------------------------------ typo'd config keys

def test_typo_in_a_backbone_key_names_config_key_and_fix_without_the_environment_dump(toys, tmp_path):
    result = run('tools/train.py', toys / 'cls.py', '--work-dir', tmp_path,
                 '--cfg-options', 'model.backbone.windw_size=7')
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f'windowlab.launch.ConfigError: {toys / "cls.py"}: '
                              "model.backbone.windw_size: WLSwinTransformer takes no argument "
                              "'windw_size'. Did you mean window_size")  # the closest first
    output = result.stdout + result.stderr
    assert 'System environment' not in output and len(output.splitlines()) < 30


def test_typo_in_a_nested_layer_key_is_found_too():
    cfg = Config.fromfile(REPO / 'configs/vsa/upernet_swin-vsa-mini-p4-w7_toy-ade.py')
    cfg.model.backbone.attn_cfg['num_head'] = 2
    with pytest.raises(launch.ConfigError, match=r"model\.backbone\.attn_cfg\.num_head: "
                       r"VSAWindowAttention takes no argument 'num_head'\. Did you mean num_heads\?"):
        launch.check_model_keys(cfg)


def test_typo_in_a_key_passed_on_through_kwargs_is_explained_after_the_build(tmp_path):
    # UPerHead takes **kwargs and hands them to BaseDecodeHead: no static check can judge it
    cfg = Config.fromfile(REPO / TOYS['seg'])
    cfg.work_dir = str(tmp_path)
    cfg.model.decode_head['chanels'] = 64
    launch.check_model_keys(cfg)
    with pytest.raises(launch.ConfigError) as info:
        launch.build_runner(cfg)
    assert str(info.value) == (
        f"{cfg.filename}: model.decode_head.chanels: UPerHead takes no argument 'chanels' "
        "(refused by BaseDecodeHead.__init__). Did you mean channels, in_channels, out_channels?")
