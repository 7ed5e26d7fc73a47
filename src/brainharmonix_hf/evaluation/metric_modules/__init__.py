# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The package's metrics as `evaluate` modules, one script per metric, loaded offline with
`evaluate.load(<path of the script>)` (`brainharmonix_hf.evaluation.metrics.load_metric(name)` does it once per
process). Nothing is fetched from the Hub."""
