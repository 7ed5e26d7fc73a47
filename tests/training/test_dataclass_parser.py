"""`brainharmonix pretrain`'s option parser (`training.dataclass_parser`): one option per `PretrainingArguments`
field, with transformers' `HfArgumentParser` conventions (which it replaces to keep `--help` free of imports), the
YAML file under the flags, and a clear error for a type it cannot read."""

import dataclasses

import pytest
import yaml

from brainharmonix_hf.training.arguments import parse_arguments
from brainharmonix_hf.training.dataclass_parser import dataclass_parser


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], True),
        (["--t1_augmentation", "false"], False),
        (["--t1_augmentation", "No"], False),
        (["--t1_augmentation", "0"], False),
        (["--no_t1_augmentation"], False),
        (["--t1-augmentation", "false"], False),
        (["--no_t1_augmentation", "--t1_augmentation"], True),
    ],
)
def test_boolean_options_take_the_hf_spellings(flags, expected, tmp_path):
    assert parse_arguments(["structure", "--output_dir", str(tmp_path), *flags]).t1_augmentation is expected


def test_a_bare_boolean_flag_switches_it_on(tmp_path):
    assert parse_arguments(["function", "--output_dir", str(tmp_path), "--log_samples"]).log_samples is True


def test_lists_numbers_and_dashed_spellings_are_read_with_their_types(tmp_path):
    args = parse_arguments(
        ["function", "--output-dir", str(tmp_path), "--fmri_downsample_rates", "1", "2", "4", "--learning-rate", "3e-4",
         "--per_device_batch_size", "8", "--modality_dropout", "0.25"]
    )  # fmt: skip
    assert (args.output_dir, args.fmri_downsample_rates, args.learning_rate) == (str(tmp_path), [1, 2, 4], 3e-4)
    assert (args.per_device_batch_size, args.modality_dropout) == (8, 0.25)
    assert isinstance(args.per_device_batch_size, int) and isinstance(args.learning_rate, float)


def test_the_yaml_file_sets_options_and_flags_win(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "run"), "seed": 5, "learning_rate": 2e-4}))
    args = parse_arguments(["harmonizer", "--config", str(config), "--seed", "9"])
    assert (args.output_dir, args.seed, args.learning_rate) == (str(tmp_path / "run"), 9, 2e-4)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--seed", "two"], "argument --seed: invalid int value: 'two'"),
        (["--t1_augmentation", "maybe"], "expected true or false, got 'maybe'"),
        (["--no_such_option", "1"], "unrecognized arguments: --no_such_option 1"),
    ],
)
def test_unreadable_values_are_usage_errors_that_name_the_option(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_arguments(["structure", "--output_dir", str(tmp_path), *flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_field_without_a_default_is_required_and_an_unreadable_type_is_refused():
    @dataclasses.dataclass
    class Options:
        name: str
        factor: float = 1.5

    parser = dataclass_parser(Options, prog="options")
    assert vars(parser.parse_args(["--name", "a"])) == {"name": "a", "factor": 1.5}
    with pytest.raises(SystemExit):
        parser.parse_args([])

    @dataclasses.dataclass
    class Unreadable:
        table: dict = dataclasses.field(default_factory=dict)

    with pytest.raises(TypeError, match="Field 'table': no command-line form for the type"):
        dataclass_parser(Unreadable, prog="unreadable")


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [("no", "no"), ("float32", "no"), ("bf16", "bf16"), ("bfloat16", "bf16"), ("BFloat16", "bf16"), ("fp16", "fp16"),
     ("half", "fp16")],
)  # fmt: skip
def test_mixed_precision_takes_the_dtype_spellings_of_the_other_commands(spelling, expected, tmp_path):
    args = parse_arguments(["function", "--output_dir", str(tmp_path), "--mixed_precision", spelling])
    assert args.mixed_precision == expected


def test_an_unknown_mixed_precision_lists_the_spellings(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_arguments(["function", "--output_dir", str(tmp_path), "--mixed_precision", "int8"])
    assert "mixed_precision: Unknown dtype 'int8': use one of float32 / fp32 / float; bfloat16 / bf16" in (
        capsys.readouterr().err
    )
