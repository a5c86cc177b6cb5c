"""What the three capabilities share: loading items, reading tags, the model base class, the run
loop, the run report and mask targets."""
