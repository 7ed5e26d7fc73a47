"""Every stage under the shipped Accelerate configs on real CPU processes (gloo): `ddp.yaml`, `fsdp2.yaml` (FSDP2,
parameters sharded per transformer block; `fsdp_on_cpu.py` says what is lifted on CPU) and `multinode.yaml` (2 nodes
× 1 process on localhost).

For each (config, stage): 4 optimizer steps with a global batch of 4 (2 per process, dispatched from process 0, so
masks are drawn on the global batch) give the parameters of the one-process run with a batch of 4 (tolerance
`TOLERANCE`); the checkpoint of step 2 (sharded for FSDP2) resumes in a new run of the same config to the same
parameters; and the exported `model/` folder loads with `from_pretrained` and equals the gathered parameters.

The Harmonizer's loss is a token-weighted mean over the batch, so two half batches give the gradient of the whole
batch only when every subject has the same number of counted tokens: its runs use the cache rows with both modalities
and whole fMRI windows, and no modality dropout (drawn per process).
"""

import shutil
from pathlib import Path

import pytest
import torch
from ddp_pretrain import gathered_parameters
from distributed_runs import HERE, accelerate_launch, launch_two_nodes, torchrun, torchrun_two_nodes
from pretraining_runs import run_stage, stage_flags
from safetensors.torch import load_file

from brainharmonix_hf.training.latent_cache import load_latent_cache
from brainharmonix_hf.training.stages import STAGES

# fp32 on CPU; the runs differ only in how gradients are summed (one batch vs two halves reduced over gloo). Measured
# max |2 processes - 1 process| (every config alike): structure 3.0e-8, function 1.1e-8, harmonizer 1.2e-7. Attention
# key biases are left out: softmax ignores them, so their gradient is zero up to rounding, and Adam turns that rounding
# noise into steps of up to the learning rate (measured up to 9.7e-5 apart after 4 steps at 2e-3).
TOLERANCE = {"rtol": 1e-4, "atol": 1e-6}
STEPS = ("--max_steps", "4", "--learning_rate", "2e-3", "--warmup_ratio", "0.25", "--seed", "3")
CHECKPOINTS = ("--save_steps", "2", "--save_total_limit", "0")
STAGE_OPTIONS = {"structure": (), "function": (), "harmonizer": ("--modality_dropout", "0")}
GLOBAL_BATCH_4 = ("--per_device_batch_size", "2", "--dispatch_batches", "true")
LAUNCHES = {
    "ddp": lambda arguments: accelerate_launch("ddp.yaml", "ddp_pretrain.py", arguments),
    "fsdp2": lambda arguments: accelerate_launch(
        "fsdp2.yaml", "fsdp_on_cpu.py", [str(HERE / "ddp_pretrain.py"), *arguments]
    ),
    "multinode": lambda arguments: launch_two_nodes("ddp_pretrain.py", arguments),
}


@pytest.fixture(scope="module")
def uniform_cohort(cohort, tmp_path_factory) -> Path:
    """The cohort with `latents/` narrowed to rows that hold both modalities and the most valid fMRI tokens."""
    folder = tmp_path_factory.mktemp("uniform_cohort")
    shutil.copytree(cohort, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("latents"))
    cache = load_latent_cache(cohort / "latents")
    counts = [sum(mask) for mask in cache["fmri_token_mask"]]
    keep = [i for i, (has_t1, count) in enumerate(zip(cache["has_t1"], counts, strict=True)) if has_t1]
    keep = [i for i in keep if counts[i] == max(counts[j] for j in keep)]
    cache.select(keep).save_to_disk(str(folder / "latents"))
    return folder


def stage_arguments(cohort: Path, stage: str, output_dir: Path, *flags: str) -> list[str]:
    return [stage, "--output_dir", str(output_dir), *stage_flags(cohort, stage), *STEPS, *STAGE_OPTIONS[stage], *flags]


@pytest.fixture(scope="module")
def single_process(uniform_cohort, tmp_path_factory):
    """Parameters of the one-process run of each stage with a batch of 4, computed once per stage."""
    runs = {}

    def parameters(stage: str) -> dict[str, torch.Tensor]:
        if stage not in runs:
            output_dir = tmp_path_factory.mktemp(f"single_{stage}")
            model, _ = run_stage(
                uniform_cohort, output_dir, stage, *STEPS, *STAGE_OPTIONS[stage], "--per_device_batch_size", "4"
            )
            runs[stage] = {name: value.detach().clone() for name, value in model.named_parameters()}
        return runs[stage]

    return parameters


def without_key_biases(parameters: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The parameters with the key third of every fused `qkv.bias` removed (see `TOLERANCE`)."""
    kept = {}
    for name, value in parameters.items():
        if name.endswith("attention.qkv.bias"):
            query, _, value_bias = value.chunk(3)
            value = torch.cat([query, value_bias])
        kept[name] = value
    return kept


def max_deviation(expected: dict, got: dict) -> float:
    return max(float((got[name] - value).abs().max()) for name, value in expected.items())


def matrix(fast: set[tuple[str, str]]) -> list:
    """Every (config, stage); those outside `fast` are marked slow."""
    return [
        pytest.param(config, stage, marks=() if (config, stage) in fast else pytest.mark.slow, id=f"{config}-{stage}")
        for config in LAUNCHES
        for stage in STAGES
    ]


@pytest.fixture(scope="module")
def config_runs(uniform_cohort, tmp_path_factory):
    """Run folder of each (config, stage) after 4 steps with checkpoints at steps 2 and 4, launched once."""
    runs = {}

    def run(config: str, stage: str) -> Path:
        if (config, stage) not in runs:
            output_dir = tmp_path_factory.mktemp(f"{config}_{stage}")
            LAUNCHES[config](stage_arguments(uniform_cohort, stage, output_dir, *GLOBAL_BATCH_4, *CHECKPOINTS))
            runs[config, stage] = output_dir
        return runs[config, stage]

    return run


@pytest.mark.parametrize("config, stage", matrix({("fsdp2", "function"), ("multinode", "harmonizer")}))
def test_two_processes_match_one_process(config, stage, config_runs, single_process):
    ranks = gathered_parameters(config_runs(config, stage))
    for name, value in ranks[0].items():
        assert torch.equal(value, ranks[1][name]), name
    expected, got = without_key_biases(single_process(stage)), without_key_biases(ranks[0])
    assert got.keys() == expected.keys()
    print(f"{config} {stage}: max |2 processes - 1 process| = {max_deviation(expected, got):.3g}")
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, **TOLERANCE, msg=name)


@pytest.mark.parametrize("config, stage", matrix({("fsdp2", "function")}))
def test_checkpoint_resumes_to_the_same_parameters(config, stage, config_runs, uniform_cohort, tmp_path):
    run = config_runs(config, stage)
    step_2 = run / "checkpoints" / "step-00000002"
    if config == "fsdp2":
        shards = sorted(path.name for path in (step_2 / "pytorch_model_fsdp_0").glob("*.distcp"))
        assert shards == ["__0_0.distcp", "__1_0.distcp"]
    else:
        assert (step_2 / "model.safetensors").is_file()
    shutil.copytree(step_2, tmp_path / "checkpoints" / step_2.name)
    LAUNCHES[config](
        stage_arguments(uniform_cohort, stage, tmp_path, *GLOBAL_BATCH_4, "--resume_from_checkpoint", "latest")
    )
    uninterrupted, resumed = gathered_parameters(run)[0], gathered_parameters(tmp_path)[0]
    print(f"{config} {stage}: max |resumed - uninterrupted| = {max_deviation(uninterrupted, resumed):.3g}")
    for name, value in uninterrupted.items():
        torch.testing.assert_close(resumed[name], value, rtol=0, atol=1e-7, msg=name)


@pytest.mark.parametrize("config, stage", matrix({("fsdp2", "function")}))
def test_export_loads_and_equals_the_gathered_parameters(config, stage, config_runs):
    run = config_runs(config, stage)
    gathered = gathered_parameters(run)[0]
    exported = STAGES[stage].model_class.from_pretrained(run / "model")
    assert {name for name, _ in exported.named_parameters()} == gathered.keys()
    for name, parameter in exported.named_parameters():
        assert torch.equal(parameter.detach(), gathered[name]), name


@pytest.mark.slow
@pytest.mark.parametrize("rendezvous", ["static", "c10d"])
def test_torchrun_two_nodes_match_one_process(rendezvous, uniform_cohort, single_process, tmp_path):
    """The README's torchrun commands for two machines, as 2 nodes × 1 process on localhost."""
    torchrun_two_nodes(
        "ddp_pretrain.py", stage_arguments(uniform_cohort, "function", tmp_path, *GLOBAL_BATCH_4), rendezvous
    )
    expected, got = without_key_biases(single_process("function")), without_key_biases(gathered_parameters(tmp_path)[0])
    print(f"torchrun {rendezvous} 2 nodes function: max |2 processes - 1 process| = {max_deviation(expected, got):.3g}")
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, **TOLERANCE, msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(STAGES))
def test_held_out_embeddings_under_fsdp2_equal_one_process(stage, uniform_cohort, tmp_path):
    """The held-out pass with embeddings (the stage hook on the unwrapped, sharded model) gives the one-process loss
    and embeddings on every process."""
    arguments = stage_arguments(uniform_cohort, stage, tmp_path / "two", "--per_device_batch_size", "1")
    accelerate_launch("fsdp2.yaml", "fsdp_on_cpu.py", [str(HERE / "held_out_embeddings.py"), *arguments])
    torchrun("held_out_embeddings.py", [*arguments[:2], str(tmp_path / "one"), *arguments[3:]], nproc=1)
    one = load_file(tmp_path / "one" / "held_out_rank0.safetensors")
    for rank in (0, 1):
        two = load_file(tmp_path / "two" / f"held_out_rank{rank}.safetensors")
        torch.testing.assert_close(two["loss"], one["loss"], rtol=1e-6, atol=0)
        torch.testing.assert_close(two["embeddings"], one["embeddings"], rtol=1e-5, atol=1e-6)
