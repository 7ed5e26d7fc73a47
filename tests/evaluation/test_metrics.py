"""Whole-set metrics against values worked out by hand."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from transformers import EvalPrediction

from brainharmonix_hf.evaluation.metrics import build_compute_metrics, classification_metrics, regression_metrics


def test_binary_classification_metrics_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 1])
    # Class-1 margins [-2, -1, 1, -0.5, 2, 3]: predictions [0, 0, 1, 0, 1, 1].
    logits = np.stack([np.zeros(6), np.array([-2.0, -1.0, 1.0, -0.5, 2.0, 3.0])], axis=1)
    metrics = classification_metrics(logits, labels)
    # Correct: 0, 1, 4, 5 -> 4/6. Recall class 0 = 2/3, class 1 = 2/3 -> balanced 2/3.
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["balanced_accuracy"] == pytest.approx(2 / 3)
    # Class 1: TP 2, FP 1, FN 1 -> precision 2/3, recall 2/3, F1 2/3.
    assert metrics["f1"] == pytest.approx(2 / 3)
    # Positive margins {-0.5, 2, 3} vs negative {-2, -1, 1}: pairs ranked right 1·2 + 3 + 3 = 8 of 9.
    assert metrics["auroc"] == pytest.approx(8 / 9)


def test_multiclass_macro_f1_and_auroc_by_hand():
    labels = np.array([0, 1, 2, 2])
    logits = np.eye(3)[[0, 1, 1, 2]] * 5.0
    metrics = classification_metrics(logits, labels)
    assert metrics["accuracy"] == pytest.approx(3 / 4)
    # F1 per class: 1, 2·(1/2·1)/(1/2+1) = 2/3, 2·(1·1/2)/(1+1/2) = 2/3 -> macro 7/9.
    assert metrics["f1"] == pytest.approx(7 / 9)
    assert metrics["balanced_accuracy"] == pytest.approx((1 + 1 + 0.5) / 3)
    # One-vs-rest AUROC on softmax probabilities, h = high and l = low: class 0: positive h vs negatives l, l, l -> 1;
    # class 1: positive h vs negatives l, h (sample 2), l -> 2.5/3; class 2: positives l (sample 2), h vs negatives
    # l, l -> (1 + 2)/4 -> macro (1 + 5/6 + 3/4)/3.
    assert metrics["auroc"] == pytest.approx((1 + 5 / 6 + 3 / 4) / 3)
    assert math.isnan(classification_metrics(logits[:1], labels[:1])["auroc"])


def test_regression_metrics_by_hand():
    predictions = np.array([1.0, 2.0, 4.0])
    targets = np.array([1.0, 3.0, 3.0])
    metrics = regression_metrics(predictions[:, None], targets)
    assert metrics["mse"] == pytest.approx((0 + 1 + 1) / 3)
    assert metrics["mae"] == pytest.approx(2 / 3)
    # Centred: p = [-4/3, -1/3, 5/3], t = [-4/3, 2/3, 2/3]; sum pt = 16/9 - 2/9 + 10/9 = 24/9;
    # |p|^2 = 42/9, |t|^2 = 24/9 -> r = (24/9) / sqrt(42/9 · 24/9) = sqrt(24/42).
    assert metrics["pearson_r"] == pytest.approx(math.sqrt(24 / 42))
    assert math.isnan(regression_metrics(np.ones(3), targets)["pearson_r"])


def test_compute_metrics_for_trainer_uses_the_whole_set():
    # Two halves that alone have F1 1.0 and 0.0; the whole set's F1 is neither their mean nor either of them.
    logits = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = np.array([1, 0, 0, 0])
    metrics = build_compute_metrics()(EvalPrediction(predictions=(logits,), label_ids=labels))
    assert metrics["f1"] == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))
    regression = EvalPrediction(predictions=np.array([[1.0], [1.0]]), label_ids=np.array([0.0, 2.0]))
    assert build_compute_metrics(regression=True)(regression)["mse"] == 1.0


OFFLINE_SCRIPT = """
import json
import socket

def refuse(*args, **kwargs):
    raise OSError("network access attempted")

socket.socket.connect = refuse  # any connection attempt fails loudly
import evaluate
import numpy as np
from brainharmonix_hf.evaluation.metrics import METRIC_MODULES, build_compute_metrics
from transformers import EvalPrediction

names = sorted(path.stem for path in METRIC_MODULES.glob("*.py") if path.stem != "__init__")
print(",".join(names))
for name in names:
    module = evaluate.load(str(METRIC_MODULES / f"{name}.py"), keep_in_memory=True)
    assert isinstance(module, evaluate.Metric), name
combined = evaluate.combine([str(METRIC_MODULES / f"{name}.py") for name in ("accuracy", "f1", "auroc")])
print(json.dumps(combined.compute(predictions=[[0.0, 1.0], [1.0, 0.0], [0.2, 0.1]], references=[1, 0, 1])))
prediction = EvalPrediction(predictions=np.array([[0.0, 1.0], [1.0, 0.0]]), label_ids=np.array([1, 0]))
print(json.dumps(build_compute_metrics()(prediction)))
"""


def test_metrics_load_from_the_package_offline(tmp_path):
    """Every metric is an `evaluate` module loaded from its script with the Hub switched off and sockets refused."""
    environment = os.environ | {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home")}
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT], env=environment, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "accuracy,auroc,balanced_accuracy,f1,identification_accuracy,mae,mse,pearson_r"
    # Third row predicts class 0 for a class-1 label: accuracy 2/3, F1 of class 1 = 2·(1·1/2)/(1 + 1/2) = 2/3, AUROC 1.
    combined = json.loads(lines[1])
    assert combined == pytest.approx({"accuracy": 2 / 3, "f1": 2 / 3, "auroc": 1.0})
    assert json.loads(lines[2])["balanced_accuracy"] == 1.0
    # The modules were copied into the run's own module cache, not fetched.
    assert (tmp_path / "hf_home" / "modules" / "evaluate_modules" / "metrics" / "auroc").is_dir()
